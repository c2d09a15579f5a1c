"""Queue workers as real processes, each test on a throwaway PostgreSQL database.

Workers are ``python -m playground worker`` children: the batch they run is planned and
queued by the test; SIGTERM stops one cleanly, SIGKILL simulates a crash. Every test gets
its own database (not just a schema: the queue's LISTEN/NOTIFY channels are per
database), created and dropped around it.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from playground.config import Settings
from playground.store import Store, open_store
from playground.store.eval_models import BatchRow
from tests.fake_elumenta import FakeElumenta
from tests.fake_elumenta.process import (
    ROOT,
    ChildProcess,
    FakeServerProcess,
    playground_environment,
    stop_process,
)
from tests.store_fixtures import postgres_base_url

HEARTBEAT_S = 0.3
STALE_AFTER_S = 3.0  # ten heartbeats: a loaded test machine must not look dead


@contextmanager
def throwaway_database(base_url: str, prefix: str = "test_workers") -> Iterator[str]:
    """The URL of a new, empty database on ``base_url``'s server, dropped (with its
    connections) on exit."""
    base = make_url(base_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def worker_database_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test."""
    with throwaway_database(postgres_base_url()) as url:
        yield url


@pytest.fixture
def worker_store(worker_database_url: str) -> Iterator[Store]:
    """The throwaway database, migrated."""
    store = open_store(worker_database_url)
    try:
        yield store
    finally:
        store.close()


def worker_settings(database_url: str, **fields: object) -> Settings:
    """The app's settings for worker execution on ``database_url`` (short heartbeats)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        batch_execution="worker",
        batch_heartbeat_s=HEARTBEAT_S,
        batch_stale_after_s=STALE_AFTER_S,
        **fields,
    )


class WorkerProcess(ChildProcess):
    """``python -m playground worker`` against a database and the fake; a context manager."""

    def __init__(
        self,
        database_url: str,
        fake: FakeElumenta | FakeServerProcess,
        data_dir: Path,
        *,
        concurrency: int = 2,
        jobs: int = 1,
        log_path: Path | None = None,
    ) -> None:
        self._args = ["--concurrency", str(concurrency), "--jobs", str(jobs)]
        self._env = {
            **playground_environment(),
            "PLAYGROUND_DATABASE_URL": database_url,
            "PLAYGROUND_DATA_DIR": str(data_dir),
            "PLAYGROUND_BATCH_EXECUTION": "worker",
            "PLAYGROUND_BATCH_HEARTBEAT_S": str(HEARTBEAT_S),
            "PLAYGROUND_BATCH_STALE_AFTER_S": str(STALE_AFTER_S),
            "PLAYGROUND_MAX_RETRIES": "0",
            "ELUMENTA_BASE_URL": fake.base_url,
            "ELUMENTA_API_KEY": fake.api_key,
        }
        self._log_path = log_path
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()

    @property
    def pid(self) -> int:
        """The worker's process id (part of every claim it makes: ``host:pid:token/shard``)."""
        assert self._process is not None
        return self._process.pid

    def start(self, timeout_s: float = 60.0) -> Self:
        """Start the worker and wait until it serves the queue."""
        log = self._log_path.open("w") if self._log_path else subprocess.DEVNULL
        command = [sys.executable, "-m", "playground", "-v", "worker", *self._args]
        try:
            self._process = subprocess.Popen(
                command, cwd=ROOT, env=self._env, stdout=subprocess.PIPE, stderr=log, text=True
            )
        finally:
            if self._log_path:
                log.close()  # type: ignore[union-attr]
        threading.Thread(target=self._read, args=(self._process,), daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if "serving queue" in self._lines.get(timeout=0.1):
                    return self
            except queue.Empty:
                if self._process.poll() is not None:
                    code = self._process.returncode
                    said = (
                        self._log_path.read_text(errors="replace")[-3000:] if self._log_path else ""
                    )
                    raise RuntimeError(f"the worker exited with {code}:\n{said}") from None
        raise RuntimeError(f"the worker did not start within {timeout_s:g} s")

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, as a deployment stops it; returns the exit code."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-work, as in a crash."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(10)

    def output(self) -> list[str]:
        """The lines the worker printed so far."""
        lines = []
        while not self._lines.empty():
            lines.append(self._lines.get_nowait())
        return lines

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._lines.put(line)

    def stop(self) -> None:
        """Stop the worker politely, unless it has exited already."""
        if self._process is not None and self._process.poll() is None:
            stop_process(self._process)


def pid_of(name: str | None) -> int:
    """The process id in a writer's or a claim's name (``host:pid:token[/shard]``)."""
    assert name is not None
    return int(name.split(":")[1])


@contextmanager
def started_together(*processes: ChildProcess) -> Iterator[None]:
    """Start ``processes`` at once (each spends seconds importing); stop them at once on exit
    (each may take seconds to wind down)."""
    with ThreadPoolExecutor(len(processes)) as pool:
        starts = [pool.submit(process.start) for process in processes]
        try:
            wait(starts)
            for started in starts:
                started.result()  # the first failure, if any
            yield
        finally:
            list(pool.map(lambda process: process.stop(), processes))


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s:g} s")
        time.sleep(0.05)


def heartbeats_renewed(store: Store, batch_id: int, times: int = 2) -> None:
    """Wait until the batch's heartbeat has been renewed ``times`` more times: its job is
    alive and went round its watch loop that often in the state it is in now (e.g. paused),
    a positive sign that it had its chances to act there, not just a sleep."""

    def heartbeat() -> object:
        with store.session() as session, session.begin():
            return session.scalar(sa.select(BatchRow.heartbeat_utc).where(BatchRow.id == batch_id))

    seen = [heartbeat()]

    def renewed() -> bool:
        if (latest := heartbeat()) != seen[-1]:
            seen.append(latest)
        return len(seen) > times

    wait_until(renewed)


def shards_ended(store: Store, batch_id: int) -> None:
    """Wait until no queued shard of the batch is waiting or running on a worker: nothing
    works on it any more (until it is queued again)."""
    query = sa.text(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'playground.batch_shard' "
        "AND (args->>'batch_id')::int = :batch_id AND status IN ('todo', 'doing')"
    )

    def ended() -> bool:
        with store.session() as session, session.begin():
            return session.scalar(query, {"batch_id": batch_id}) == 0

    wait_until(ended)
