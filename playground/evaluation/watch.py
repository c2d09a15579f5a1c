"""A batch job's watch thread: the batch's status as any process set it, and heartbeats.

Pause and cancel may come from another process (another app process, a worker, the CLI),
so a job reads its batch's status every ``poll_s`` seconds; every ``heartbeat_s`` it also
renews the heartbeat of the batch and of its cells in flight, without which other
processes take its claims over (:func:`~playground.store.eval_claims.claimable_cells`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from playground.store.db import Store
from playground.store.eval_claims import batch_control, renew_heartbeat

log = logging.getLogger(__name__)


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
