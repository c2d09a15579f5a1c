"""Where a batch runs: in this process, or on queue workers (``PLAYGROUND_BATCH_EXECUTION``).

:func:`start_batch` starts (or resumes) a planned batch; :func:`find_batch` finds it again
after a page rerun. Both return a :class:`BatchHandle`: this process's running
:class:`~playground.evaluation.batch.BatchJob` (``in_process``, the default and the only
choice with SQLite), or a :class:`QueuedBatch` that reads and steers a batch the workers
run through the database, so any app process behind a proxy shows its progress and can
pause, resume or cancel it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from playground.config import Settings
from playground.errors import ConfigError, InvalidRequestError
from playground.evaluation.batch import BatchJob
from playground.evaluation.manager import BatchManager
from playground.evaluation.recording import BatchProgress, paused_message, stored_progress
from playground.store.db import Store
from playground.store.eval_repository import get_batch, set_batch_status, transition_batch

# A batch in these states runs (or waits to be resumed by its Pause/Resume controls).
LIVE_STATUSES = ("pending", "running", "paused", "judging")
WAIT_POLL_S = 0.2


class BatchHandle(Protocol):
    """A started batch as the Evaluate page drives it, wherever it runs."""

    @property
    def batch_id(self) -> int:
        """The stored batch's id."""
        ...

    @property
    def finished(self) -> bool:
        """Whether it stopped running (completed, cancelled, budget reached, interrupted)."""
        ...

    def progress(self) -> BatchProgress:
        """Counts, spend, ETA and status as of now."""
        ...

    def pause(self) -> None:
        """Send no new requests; answers in flight still finish."""
        ...

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        ...

    def cancel(self) -> None:
        """Stop; answers in flight are cancelled (the batch stays resumable)."""
        ...

    def wait(self, timeout: float | None = None) -> BatchProgress:
        """Block until it stops running (or ``timeout`` seconds); the progress then."""
        ...


class QueuedBatch:
    """A batch run by queue workers, watched and steered through the database."""

    def __init__(self, store: Store, settings: Settings, batch_id: int) -> None:
        self._store = store
        self._settings = settings
        self._batch_id = batch_id

    @property
    def batch_id(self) -> int:
        """The stored batch's id."""
        return self._batch_id

    @property
    def finished(self) -> bool:
        """Whether the workers stopped working on it (a paused batch is not finished)."""
        with self._store.session() as session, session.begin():
            batch = get_batch(session, self._batch_id)
            return batch is None or batch.status not in LIVE_STATUSES

    def progress(self) -> BatchProgress:
        """The batch's figures as the workers stored them, and why it stopped if they said."""
        now = datetime.now(UTC)
        stale_before = now - timedelta(seconds=self._settings.batch_stale_after_s)
        with self._store.session() as session, session.begin():
            progress = stored_progress(session, self._batch_id, now=now, stale_before=stale_before)
            batch = get_batch(session, self._batch_id)
        if progress is None or batch is None:
            raise InvalidRequestError(f"No batch #{self._batch_id}.")
        if batch.status_message:
            message = batch.status_message
            if batch.status == "paused":
                message = paused_message(message, progress.finishing)
            return replace(progress, message=message)
        return progress

    def wait(self, timeout: float | None = None) -> BatchProgress:
        """Poll until the workers stop working on it (or ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished and (deadline is None or time.monotonic() < deadline):
            time.sleep(WAIT_POLL_S)
        return self.progress()

    def pause(self) -> None:
        """Workers claim nothing more and leave it once their answers in flight are in."""
        with self._store.session() as session, session.begin():
            transition_batch(session, self._batch_id, "paused", only_from=("running",))

    def resume(self) -> None:
        """Queue it again for the workers (if it is paused)."""
        with self._store.session() as session, session.begin():
            resumed = transition_batch(session, self._batch_id, "running", only_from=("paused",))
        if resumed:
            queue_batch(self._store, self._settings, self._batch_id)

    def cancel(self) -> None:
        """Workers cancel its answers in flight and leave it."""
        with self._store.session() as session, session.begin():
            transition_batch(
                session, self._batch_id, "cancelled", only_from=("pending", "running", "paused")
            )


def start_batch(
    store: Store,
    settings: Settings,
    batch_id: int,
    *,
    manager: BatchManager,
    local_job: Callable[[], BatchJob],
) -> BatchHandle:
    """Start or resume a stored batch where the settings say; returns at once.

    ``in_process``: ``local_job()`` runs it in this process (through ``manager``, so a
    rerun finds it); ``worker``: it is queued for the workers. Raises :class:`ConfigError`
    when the queue cannot be reached (the batch is then ``interrupted``, ready to resume).
    """
    if settings.batch_execution == "in_process":
        return manager.start(local_job, store, batch_id)
    return queue_batch(store, settings, batch_id)


def queue_batch(store: Store, settings: Settings, batch_id: int) -> QueuedBatch:
    """Hand a batch to the workers: ``running`` as a worker batch, its shards queued."""
    # Imported here: procrastinate takes about a second to import; in-process apps skip it.
    from playground.workers.queue import enqueue_shards

    with store.session() as session, session.begin():
        set_batch_status(session, batch_id, "running", execution="worker")
    try:
        enqueue_shards(settings.resolved_database_url, batch_id, settings.batch_shards)
    except ConfigError:
        with store.session() as session, session.begin():
            transition_batch(session, batch_id, "interrupted", only_from=("running",))
        raise
    return QueuedBatch(store, settings, batch_id)


def find_batch(
    store: Store, settings: Settings, batch_id: int, manager: BatchManager
) -> BatchHandle | None:
    """The batch's handle: this process's running job, or the workers' batch, or this
    process's finished job; ``None`` when neither runs (or ran) it."""
    job = manager.get(store, batch_id)
    if job is not None and not job.finished:
        return job
    with store.session() as session, session.begin():
        batch = get_batch(session, batch_id)
        execution = None if batch is None else batch.execution
    return QueuedBatch(store, settings, batch_id) if execution == "worker" else job
