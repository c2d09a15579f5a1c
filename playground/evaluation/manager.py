"""The process's running batches, so a page rerun or a revisit finds its job again."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import URL

from playground.evaluation.batch import BatchJob
from playground.store.db import Store


class BatchManager:
    """The process's running batches by database and id, so a page rerun or revisit finds
    its job again.

    A batch id means something only in its database: after the app opens another one
    (new settings), a job of the old database's batch #1 is not the new one's batch #1.
    """

    def __init__(self) -> None:
        self._jobs: dict[tuple[URL, int], BatchJob] = {}
        self._lock = threading.Lock()

    def start(self, job_factory: Callable[[], BatchJob], store: Store, batch_id: int) -> BatchJob:
        """The running job of ``store``'s batch ``batch_id``, or a new one from
        ``job_factory`` (started)."""
        key = (store.engine.url, batch_id)
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.finished:
                job = job_factory().start()
                self._jobs[key] = job
            return job

    def get(self, store: Store, batch_id: int) -> BatchJob | None:
        """The job of ``store``'s batch ``batch_id`` if this process started it."""
        with self._lock:
            return self._jobs.get((store.engine.url, batch_id))
