"""A batch job's watch thread: the batch's status as any process set it, and heartbeats.

Pause and cancel may come from another process (another app process, a worker, the CLI),
so a job reads its batch's status every ``poll_s`` seconds; every ``heartbeat_s`` it also
renews the heartbeat of the batch and of its cells in flight, without which other
processes take its claims over (:func:`~playground.store.eval_claims.claimable_cells`).

Each poll that the database answers is also noted in the job's :class:`Sight`: a claim
is taken over only once its owner had a whole stale interval *with the database
answering* to renew it, so an outage (when nobody can renew anything) never makes live
claims look abandoned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from playground.store.db import Store
from playground.store.eval_claims import batch_control, renew_heartbeat

log = logging.getLogger(__name__)


class Sight:
    """When a job saw the database answer: the clock that other processes' claims go stale on.

    ``answered`` notes each time the database answered; two answers more than ``gap_s``
    apart leave a blind stretch between them (an outage, a stalled connection, a starved
    thread: the owner of a claim may not have been able to renew it either). Time before
    the first answer is blind too: a job that just started has seen nothing.
    """

    MAX_BLIND = 64  # older stretches are forgotten: the time before them counts as blind

    def __init__(self, gap_s: float) -> None:
        self._gap_s = gap_s
        self._lock = threading.Lock()
        self._since: float | None = None  # the first answer (monotonic)
        self._last: float | None = None  # the latest answer
        self._blind: deque[tuple[float, float]] = deque()

    def answered(self, at: float | None = None) -> None:
        """Note that the database answered (now, or at monotonic time ``at``)."""
        at = time.monotonic() if at is None else at
        with self._lock:
            if self._since is None or self._last is None:
                self._since = self._last = at
                return
            if at - self._last > self._gap_s:
                self._blind.append((self._last, at))
                if len(self._blind) > self.MAX_BLIND:
                    _, self._since = self._blind.popleft()
            self._last = max(self._last, at)

    def seen_since(self, seen_s: float, now: float | None = None) -> float | None:
        """The latest monotonic time from which up to ``now`` (an answer: the caller is in
        a transaction) the job saw the database answer for ``seen_s`` seconds; ``None``
        when it has not seen that much yet."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._since is None or self._last is None:
                return None
            blind = list(self._blind)
            if now - self._last > self._gap_s:
                blind.append((self._last, now))
            since = self._since
        cursor, needed = now, seen_s
        for start, end in reversed(blind):
            if cursor - end >= needed:
                return cursor - needed
            needed -= max(0.0, cursor - end)
            cursor = min(cursor, start)
        return cursor - needed if cursor - since >= needed else None

    def stale_before(self, stale_after: timedelta, now: datetime) -> datetime:
        """Claims renewed before this (wall-clock) time may be taken over at ``now``: their
        owner had ``stale_after`` of database time to renew them. Before the job has seen
        that much, nothing may be taken over (the distant past)."""
        mono_now = time.monotonic()
        since = self.seen_since(stale_after.total_seconds(), mono_now)
        if since is None:
            return datetime.min.replace(tzinfo=UTC)
        return now - timedelta(seconds=mono_now - since)


class Watcher:
    """Calls ``poll`` on its own thread every ``poll_s`` seconds until :meth:`stop`; with
    ``beat`` true at most every ``heartbeat_s`` seconds (the first poll included)."""

    def __init__(
        self, batch_id: int, poll: Callable[[bool], None], *, poll_s: float, heartbeat_s: float
    ) -> None:
        self._batch_id = batch_id
        self._poll = poll
        self._poll_s = poll_s
        self._heartbeat_s = heartbeat_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"batch-{batch_id}-watch")

    def start(self) -> None:
        """Start watching in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; returns once the thread has ended."""
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        next_beat = 0.0
        while not self._stop.wait(self._poll_s):
            beat = time.monotonic() >= next_beat
            try:
                self._poll(beat)
            except (
                Exception
            ) as exc:  # a database hiccup must not end the job; the next poll retries
                log.warning(
                    "Batch %s: could not read or renew its state",
                    self._batch_id,
                    # An outage is one line a second, not a traceback a second.
                    exc_info=not isinstance(exc, sa.exc.OperationalError),
                )
                continue
            if beat:
                next_beat = time.monotonic() + self._heartbeat_s


def poll_batch(
    store: Store, batch_id: int, claimer: str, in_flight: Sequence[int], *, beat: bool
) -> str | None:
    """The batch's stored status (``None``: no such batch); with ``beat``, the heartbeat of
    the batch and of ``claimer``'s cells ``in_flight`` is renewed in the same transaction."""
    with store.session() as session, session.begin():
        control = batch_control(session, batch_id)
        if beat:
            now = datetime.now(UTC)
            renew_heartbeat(session, batch_id, claimer, in_flight, now=now)
    return None if control is None else control.status
