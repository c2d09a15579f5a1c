"""One run's live events as an ordered log a browser can follow, and who may follow it.

The runner publishes every change of a run (a model started, more text, its time to first
token, its final status and metrics, the whole run done) into the run's :class:`EventFeed`.
A subscriber reads from any event id on (ids count from 1), so a dropped connection resumes
where it stopped with nothing doubled or lost, and a reloaded page replays from the start.

:class:`StreamGrants` hands out the unguessable per-run tokens that open a feed: one per
browser session that may see the run, bound to the signed-in user (if any) it was given to,
compared in constant time, and valid until a short grace period after the run ended.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["status", "delta", "ttft", "finished", "done"]
GRACE_S = 120.0
"""How long after its run ended a token still opens the feed (a reload right at the end)."""
MAX_GRANTED_RUNS = 2_000
"""Runs with live tokens kept per process (a run ends within the model timeout)."""


@dataclass(frozen=True)
class FeedEvent:
    """One change of a run: ``id`` (1, 2, …), its ``kind``, the column ``index`` it is about
    (``None`` for ``done``) and its ``value``: the text of a ``delta``, the milliseconds of a
    ``ttft``, the model's :class:`~playground.results.ModelResult` of a ``status`` or
    ``finished``."""

    id: int
    kind: EventKind
    index: int | None = None
    value: Any = None


class EventFeed:
    """An append-only, thread-safe log of one run's events that wakes its subscribers.

    The runner's loop thread publishes; any thread (or another event loop) reads with
    :meth:`read` and is woken through the callable it passed to :meth:`subscribe`.
    """

    def __init__(self) -> None:
        self._events: list[FeedEvent] = []
        self._lock = threading.Lock()
        self._wakers: set[Callable[[], None]] = set()
        self.ended_at: float | None = None

    def publish(self, kind: EventKind, index: int | None = None, value: Any = None) -> None:
        """Append one event (a ``done`` event ends the feed) and wake every subscriber."""
        with self._lock:
            if self.ended_at is not None:
                return
            self._events.append(FeedEvent(len(self._events) + 1, kind, index, value))
            if kind == "done":
                self.ended_at = time.monotonic()
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def read(self, after: int = 0) -> tuple[list[FeedEvent], bool]:
        """Every event with an id above ``after``, and whether the feed has ended."""
        with self._lock:
            return self._events[max(0, after) :], self.ended_at is not None

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (from the publishing thread) after each event; returns unsubscribe."""
        with self._lock:
            self._wakers.add(wake)

        def unsubscribe() -> None:
            with self._lock:
                self._wakers.discard(wake)

        return unsubscribe

    def release(self) -> None:
        """Forget the events (the run's text is in its snapshot and history): called once
        the grace period after the run is over, when no token opens the feed any more."""
        with self._lock:
            self._events = []

    @property
    def ended(self) -> bool:
        """Whether the run's ``done`` event has been published."""
        return self.ended_at is not None


@dataclass(frozen=True)
class _Grant:
    token: str
    subject: str | None


class StreamGrants:
    """Per-run stream tokens of one process: issued to a session, checked by the route."""

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self.grace_s = grace_s
        self._grants: dict[str, list[_Grant]] = {}
        self._lock = threading.Lock()

    def issue(self, run_id: str, subject: str | None) -> str:
        """A new unguessable token that opens ``run_id``'s feed for ``subject`` (``None``
        locally). Call it only after checking that ``subject`` may see the run."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._grants) >= MAX_GRANTED_RUNS:
                # Runs are kept in the order they were first granted: the oldest go first.
                for stale in list(self._grants)[: len(self._grants) - MAX_GRANTED_RUNS + 1]:
                    del self._grants[stale]
            self._grants.setdefault(run_id, []).append(_Grant(token, subject))
        return token

    def check(
        self, run_id: str, token: str | None, subject: str | None, feed: EventFeed | None
    ) -> bool:
        """Whether ``token`` opens ``run_id``'s ``feed`` for the requester ``subject``.

        False for a missing, unknown or other run's token, another user's token, an unknown
        run, and a run that ended more than the grace period ago (its tokens are then
        dropped). Tokens are compared in constant time.
        """
        if not token or feed is None:
            return False
        with self._lock:
            if feed.ended_at is not None and time.monotonic() - feed.ended_at > self.grace_s:
                self._grants.pop(run_id, None)
                return False
            grants = list(self._grants.get(run_id, ()))
        found = False
        for grant in grants:
            # Every grant of the run is compared, so the time taken tells nothing.
            same = hmac.compare_digest(grant.token.encode(), token.encode())
            found |= same and grant.subject == subject
        return found
