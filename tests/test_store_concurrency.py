"""Concurrent writers (threads sharing an engine and separate processes) lose no rows."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context

import sqlalchemy as sa

from playground.store import Store, StoreRecorder, open_store
from playground.store.models import Comparison, Result
from tests.store_fixtures import Outcome, make_request, record_run
from tests.test_store_rollups import assert_in_step, finished_calls

THREADS = 8
PROCESSES = 4
RUNS_PER_WRITER = 4  # 12 writers x 4 runs x 10 transactions: enough overlap, ~10 s
MODELS = ("gpt-5", "claude-haiku-4.5", "deepseek-v3")


def _write_runs(recorder: StoreRecorder, writer: str) -> int:
    for run in range(RUNS_PER_WRITER):
        outcomes = [Outcome(content=f"{writer} run {run} model {m} " * 5) for m in MODELS]
        record_run(recorder, make_request(MODELS, f"{writer} prompt {run}"), outcomes)
    return RUNS_PER_WRITER


def _process_writer(url: str, writer: str) -> int:
    store = open_store(url)
    try:
        return _write_runs(StoreRecorder(store.engine), writer)
    finally:
        store.close()


def test_threads_and_processes_write_at_once_without_losing_rows(
    store: Store, store_url: str
) -> None:
    with (
        ThreadPoolExecutor(THREADS) as threads,
        ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as processes,
    ):
        process_jobs = [
            processes.submit(_process_writer, store_url, f"process-{i}") for i in range(PROCESSES)
        ]
        thread_jobs = [
            threads.submit(_write_runs, StoreRecorder(store.engine), f"thread-{i}")
            for i in range(THREADS)
        ]
        written = sum(job.result() for job in [*thread_jobs, *process_jobs])

    writers = THREADS + PROCESSES
    assert written == writers * RUNS_PER_WRITER
    with store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Comparison)) == written
        rows = session.execute(sa.select(Result.status, Result.content, Result.model)).all()
    assert len(rows) == written * len(MODELS)
    assert {status for status, _, _ in rows} == {"completed"}
    for _, content, model in rows:
        assert content.endswith(f"model {model} ")
    # Every final write added its figures once, whichever writer it raced with.
    assert finished_calls(store) == written * len(MODELS)
    assert_in_step(store)
