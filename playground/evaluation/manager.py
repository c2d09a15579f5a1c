"""The process's running batches, so a page rerun or a revisit finds its job again."""

from __future__ import annotations

import threading
from collections.abc import Callable

from playground.evaluation.batch import BatchJob


class BatchManager:
    """The process's running batches by id, so a page rerun or revisit finds its job again."""

    def __init__(self) -> None:
        self._jobs: dict[int, BatchJob] = {}
        self._lock = threading.Lock()

    def start(self, job_factory: Callable[[], BatchJob], batch_id: int) -> BatchJob:
        """The running job of ``batch_id``, or a new one from ``job_factory`` (started)."""
        with self._lock:
            job = self._jobs.get(batch_id)
            if job is None or job.finished:
                job = job_factory().start()
                self._jobs[batch_id] = job
            return job

    def get(self, batch_id: int) -> BatchJob | None:
        """The job of ``batch_id`` if this process started it."""
        with self._lock:
            return self._jobs.get(batch_id)
