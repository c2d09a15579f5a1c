"""``python -m playground worker``: run batch shards from the queue until SIGTERM or SIGINT.

A worker process holds one :class:`~playground.runner.Runner`: ``--concurrency`` is the
process's limit of requests in flight, shared by every shard it runs (``--jobs`` at once).
A shard is a :class:`~playground.evaluation.batch.BatchJob` in ``worker`` execution: it
claims the batch's cells until none is left, and the last shard to finish completes the
batch (judging included).

On SIGTERM/SIGINT the worker claims nothing more, lets answers in flight finish (up to
:data:`DRAIN_S`), queues its unfinished shards again for other workers and exits 0. A
watchdog, every heartbeat interval, queues new shards for worker batches nobody works on
any more (every worker running them died: their heartbeat went stale), and closes queue
jobs left ``doing`` by dead workers.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from procrastinate import App, JobContext
from procrastinate.jobs import Status

from playground.catalog import Catalog
from playground.config import Settings
from playground.errors import ConfigError
from playground.evaluation.batch import BatchJob, Outcome
from playground.providers.base import Provider
from playground.providers.registry import build_providers
from playground.redact import mask_url
from playground.runner import Runner
from playground.store import Store, open_configured_store
from playground.store.eval_claims import revive_stalled_batches
from playground.store.recovery import writer_id
from playground.store.spending import demo_spent_reader
from playground.workers.queue import (
    QUEUE,
    SHARD_TASK,
    enqueue_shards_async,
    ensure_queue_schema,
    queue_app,
)

log = logging.getLogger(__name__)

DRAIN_S = 20.0  # within the usual 30 s a container gets between SIGTERM and SIGKILL
CONTEXT_KEY = "playground"


@dataclass(eq=False)
class Worker:
    """What a worker process's shards share: the store, the runner, the settings."""

    store: Store
    settings: Settings
    catalog: Catalog
    runner: Runner
    concurrency: int
    stopping: bool = False
    _jobs: set[BatchJob] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def run_shard(self, batch_id: int) -> Outcome | None:
        """Work on a batch until it has nothing left for this shard; how the shard ended.

        ``None`` when the worker is shutting down and did not start it.
        """
        job = BatchJob.from_settings(
            self.store,
            batch_id,
            self.catalog,
            self.settings,
            self._providers,
            max_concurrency=self.concurrency,
            execution="worker",
            runner=self.runner,
        )
        with self._lock:
            if self.stopping:
                return None
            self._jobs.add(job)
        try:
            job.start().wait()
        finally:
            with self._lock:
                self._jobs.discard(job)
        return job.outcome

    def stop(self) -> None:
        """Start no shard any more; the running ones leave their batch within DRAIN_S."""
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
            jobs = list(self._jobs)
        for job in jobs:
            job.stop(DRAIN_S)

    def revive(self) -> list[int]:
        """Worker batches nobody works on any more, taken over (see the watchdog)."""
        now = datetime.now(UTC)
        stale_before = now - timedelta(seconds=self.settings.batch_stale_after_s)
        with self.store.session() as session, session.begin():
            return revive_stalled_batches(session, stale_before=stale_before, now=now)

    def _providers(self) -> Mapping[str, Provider]:
        # The server's own key and URL: a key typed in a browser session never gets here.
        return build_providers(
            self.settings, self.catalog, demo_spent=demo_spent_reader(self.store.engine)
        )


async def batch_shard(context: JobContext, batch_id: int, shard: int) -> None:
    """The queue task: run shard ``shard`` of batch ``batch_id`` in this worker."""
    worker: Worker = context.additional_context[CONTEXT_KEY]
    outcome = await asyncio.to_thread(worker.run_shard, batch_id)
    if worker.stopping and outcome in (None, "left"):
        # Shutting down with work left: another worker (or this one, restarted) continues.
        await enqueue_shards_async(context.app, batch_id, range(shard, shard + 1))


async def watchdog(app: App, worker: Worker) -> None:
    """Every heartbeat interval: revive abandoned worker batches, close dead workers' jobs."""
    settings = worker.settings
    while True:
        await asyncio.sleep(settings.batch_heartbeat_s)
        try:
            for batch_id in await asyncio.to_thread(worker.revive):
                log.info("Batch %s had nobody working on it: queueing its shards", batch_id)
                await enqueue_shards_async(app, batch_id, range(settings.batch_shards))
            stalled = await app.job_manager.get_stalled_jobs(
                queue=QUEUE, seconds_since_heartbeat=settings.batch_stale_after_s
            )
            for job in stalled:
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
        except Exception:  # the next round retries; a worker must not die of a hiccup
            log.warning("Worker watchdog round failed", exc_info=True)


def run_worker(
    settings: Settings, catalog: Catalog, *, jobs: int, concurrency: int | None, out: TextIO
) -> int:
    """Serve the queue until SIGTERM/SIGINT; returns the exit code (0 after a clean stop).

    Raises :class:`ConfigError` unless the database is PostgreSQL.
    """
    if not settings.uses_postgresql:
        raise ConfigError(
            "python -m playground worker needs the PostgreSQL database the app uses "
            "(PLAYGROUND_DATABASE_URL=postgresql+psycopg://…); with SQLite batches run "
            "inside the app."
        )
    store = open_configured_store(settings)
    try:
        ensure_queue_schema(settings.resolved_database_url)
        concurrency = concurrency or settings.max_concurrency
        runner = Runner.from_settings(catalog, settings, max_concurrency=concurrency)
        worker = Worker(store, settings, catalog, runner, concurrency)
        try:
            asyncio.run(_serve(worker, jobs, out))
        finally:
            runner.close()
    finally:
        store.close()
    out.write("Worker stopped.\n")
    out.flush()
    return 0


async def _serve(worker: Worker, jobs: int, out: TextIO) -> None:
    settings = worker.settings
    # The listener holds one connection; fetching, heartbeats and each job's end use others.
    app = queue_app(settings.resolved_database_url, max_connections=jobs + 3)
    app.task(name=SHARD_TASK, queue=QUEUE, pass_context=True)(batch_shard)
    async with app.open_async():
        serving = asyncio.create_task(
            app.run_worker_async(
                queues=[QUEUE],
                concurrency=jobs,
                name=writer_id(),
                install_signal_handlers=False,
                additional_context={CONTEXT_KEY: worker},
                update_heartbeat_interval=settings.batch_heartbeat_s,
                stalled_worker_timeout=settings.batch_stale_after_s,
                delete_jobs="successful",
            )
        )
        watching = asyncio.create_task(watchdog(app, worker))
        loop = asyncio.get_running_loop()

        def shut_down() -> None:
            log.info("Stopping: leaving batches to other workers")
            worker.stop()
            serving.cancel()  # procrastinate then waits for the running shards to end

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, shut_down)
        out.write(
            f"Worker {writer_id()} serving queue {QUEUE!r} of "
            f"{mask_url(settings.resolved_database_url)}: {jobs} shard(s) at once, "
            f"{worker.concurrency} requests in flight.\n"
        )
        out.flush()
        try:
            await asyncio.wait([serving])
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        if not serving.cancelled():
            serving.result()  # the queue failed on its own (e.g. the database went away)
