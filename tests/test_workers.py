"""Batches on queue workers: real worker processes, PostgreSQL, the fake Elumenta over HTTP.

Each test plans a batch in a throwaway database, queues it as the Evaluate page does in
``worker`` execution, and checks at the fake what was requested: no cell twice (unless its
worker died with the answer in flight), and the batch completed whoever ran it.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from playground.cli.main import main
from playground.config import Settings
from playground.datasets import parse_dataset
from playground.errors import InvalidRequestError
from playground.evaluation.plan import BatchSpec
from playground.principal import Principal
from playground.results import ModelTarget
from playground.services import evaluate as evaluation
from playground.services import runtime
from playground.store import Store
from playground.store.eval_models import BatchCellRow
from playground.workers.dispatch import QueuedBatch, queue_batch
from playground.workers.queue import ensure_queue_schema
from tests.evaluation_fixtures import plan
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.worker_fixtures import (
    STALE_AFTER_S,
    WorkerProcess,
    pid_of,
    shards_ended,
    started_together,
    wait_until,
    worker_settings,
)
from ui.connection import API_KEY_KEY, connection_from_state

MODELS = ["gpt-5-nano", "claude-haiku-4.5"]


@pytest.fixture
def fake(fake_elumenta: FakeElumenta) -> FakeElumenta:
    """The fake with no quota in the way and answers that take ``ttft_ms`` 80."""
    fake_elumenta.quota_hour = fake_elumenta.quota_day = None
    fake_elumenta.balance = 10**6
    fake_elumenta.script("*", ModelScript(ttft_ms=80))
    return fake_elumenta


def _requests(fake: FakeElumenta) -> Counter[tuple[str, str]]:
    return Counter(
        (r.json["model"], r.json["messages"][-1]["content"])
        for r in fake.requests
        if r.path.endswith("/generate/stream")
    )


def _question(row_index: int) -> str:
    return f"What is the capital of Country {row_index}?"


def _cells(store: Store, batch_id: int) -> list[BatchCellRow]:
    with store.session() as session, session.begin():
        query = sa.select(BatchCellRow).where(BatchCellRow.batch_id == batch_id)
        return list(session.scalars(query))


def _completed(store: Store, batch_id: int) -> int:
    return sum(c.status == "completed" for c in _cells(store, batch_id))


@pytest.mark.postgres
def test_two_workers_share_one_batch_and_run_every_cell_once(
    worker_store: Store, worker_database_url: str, fake: FakeElumenta, tmp_path: Path
) -> None:
    # Slow enough answers that one worker alone needs ~9 s: on a busy machine the other
    # took its queue job late, after the first had claimed and done every cell.
    fake.script("*", ModelScript(ttft_ms=300))
    batch_id = plan(worker_store, MODELS, rows=30)
    a = WorkerProcess(worker_database_url, fake, tmp_path, log_path=tmp_path / "a.log")
    b = WorkerProcess(worker_database_url, fake, tmp_path, log_path=tmp_path / "b.log")
    with started_together(a, b):
        handle = queue_batch(worker_store, worker_settings(worker_database_url), batch_id)
        progress = handle.wait(90)

    assert (progress.status, progress.completed, progress.failed) == ("completed", 60, 0)
    requests = _requests(fake)
    assert len(requests) == 60 and set(requests.values()) == {1}
    by_worker = Counter(pid_of(c.claimed_by) for c in _cells(worker_store, batch_id))
    assert set(by_worker) == {a.pid, b.pid}, by_worker  # both did some of this one batch


@pytest.mark.postgres
def test_a_killed_workers_cells_are_taken_over_after_the_stale_threshold(
    worker_store: Store, worker_database_url: str, fake: FakeElumenta, tmp_path: Path
) -> None:
    batch_id = plan(worker_store, MODELS, rows=24)
    doomed = WorkerProcess(worker_database_url, fake, tmp_path, log_path=tmp_path / "a.log")
    other = WorkerProcess(worker_database_url, fake, tmp_path, log_path=tmp_path / "b.log")
    with started_together(doomed, other):
        handle = queue_batch(worker_store, worker_settings(worker_database_url), batch_id)
        wait_until(lambda: _completed(worker_store, batch_id) >= 12)
        doomed.kill()
        at_kill = _cells(worker_store, batch_id)
        progress = handle.wait(90)

    assert (progress.status, progress.completed) == ("completed", 48)
    requests = _requests(fake)
    done_before = [c for c in at_kill if c.status == "completed"]
    for cell in done_before:
        assert requests[(cell.model, _question(cell.row_index))] == 1  # never paid twice
    orphans = [c for c in at_kill if c.status == "running" and pid_of(c.claimed_by) == doomed.pid]
    assert orphans, "the killed worker had nothing in flight; the test proves nothing"
    # At most the killed worker's answers in flight were asked again.
    assert len(requests) == 48 and sum(requests.values()) <= 48 + len(orphans)
    finished = {c.id: c for c in _cells(worker_store, batch_id)}
    for orphan in orphans:
        taken_over = finished[orphan.id]
        assert pid_of(taken_over.claimed_by) == other.pid
        assert orphan.heartbeat_utc is not None
        assert (taken_over.updated_utc - orphan.heartbeat_utc).total_seconds() >= STALE_AFTER_S


@pytest.mark.postgres
def test_sigterm_stops_a_worker_cleanly_and_the_next_one_is_steered_from_any_process(
    worker_store: Store, worker_database_url: str, fake: FakeElumenta, tmp_path: Path
) -> None:
    batch_id = plan(worker_store, MODELS, rows=20)
    settings = worker_settings(worker_database_url)
    first = WorkerProcess(worker_database_url, fake, tmp_path, log_path=tmp_path / "a.log")
    with first:
        queue_batch(worker_store, settings, batch_id)
        wait_until(lambda: _completed(worker_store, batch_id) >= 6)
        started = time.monotonic()
        assert first.terminate() == 0
        assert time.monotonic() - started < 15  # answers in flight end; nothing waits longer
    assert "Worker stopped." in "".join(first.output())
    handle = QueuedBatch(worker_store, settings, batch_id)  # e.g. another app process
    stopped = handle.progress()
    assert stopped.status == "running" and stopped.running == 0 and stopped.completed < 40
    asked_before_stop = _requests(fake)

    # The next worker continues the batch; pause, resume and cancel reach it from here.
    with WorkerProcess(worker_database_url, fake, tmp_path, log_path=tmp_path / "b.log"):
        wait_until(lambda: handle.progress().completed >= stopped.completed + 4)
        handle.pause()
        wait_until(lambda: handle.progress().running == 0)
        paused = len(fake.requests)
        shards_ended(worker_store, batch_id)  # the worker left the paused batch
        assert len(fake.requests) == paused
        assert (handle.progress().status, handle.finished) == ("paused", False)

        handle.resume()
        wait_until(lambda: handle.progress().completed >= 24)
        handle.cancel()
        cancelled = handle.wait(30)
        assert cancelled.status == "cancelled" and handle.finished
        assert cancelled.completed < 40

        progress = queue_batch(worker_store, settings, batch_id).wait(90)  # Resume
    assert (progress.status, progress.completed) == ("completed", 40)
    requests = _requests(fake)
    assert len(requests) == 40
    assert sum(requests.values()) <= 40 + 2 * 2  # at most the answers cancelled in flight
    # A clean stop wastes nothing: what the stopped worker asked was never asked again.
    assert {requests[cell] for cell in asked_before_stop} == {1}


def test_the_worker_command_refuses_sqlite(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    out, err = io.StringIO(), io.StringIO()
    assert main(["worker"], settings=settings, out=out, err=err) == 1
    assert "needs the PostgreSQL database" in err.getvalue()


@pytest.mark.postgres
def test_the_evaluate_page_queues_a_batch_for_the_workers_in_worker_execution(
    worker_database_url: str, app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", worker_database_url)
    monkeypatch.setenv("PLAYGROUND_BATCH_EXECUTION", "worker")
    runtime.reset()
    version = evaluation.save_template("capitals", "Be terse.", "Capital of {{ country }}?")
    dataset_id = evaluation.store_dataset("c", parse_dataset("country\nFrance\nItaly\n"))
    spec = BatchSpec(
        title="capitals",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "gpt-5-nano"),),
    )
    typed_key = connection_from_state({API_KEY_KEY: "nb_typed_in_the_page"})
    with pytest.raises(InvalidRequestError, match="worker processes"):
        evaluation.start_batch(spec, typed_key)

    handle = evaluation.start_batch(spec, runtime.connection_from())
    assert isinstance(handle, QueuedBatch)
    assert isinstance(evaluation.running_job(handle.batch_id), QueuedBatch)  # after a rerun
    # A new session (another app process, or this one restarted) follows it; nobody else's.
    followed = evaluation.live_batch()
    assert followed is not None and followed.batch_id == handle.batch_id
    stranger = Principal(user_id=2, subject="eve@example.org", display_name="eve", role="member")
    assert evaluation.live_batch(viewer=stranger) is None
    progress = handle.progress()
    assert (progress.status, progress.pending, progress.message) == ("running", 2, "")
    with runtime.get_store().session() as session, session.begin():
        queued = session.execute(
            sa.text("SELECT task_name, args, status FROM procrastinate_jobs ORDER BY id")
        ).all()
    assert [(name, args["shard"], status) for name, args, status in queued] == [
        ("playground.batch_shard", shard, "todo") for shard in range(4)
    ]
    # Queued again (e.g. Resume pressed twice): shards still waiting are not queued twice.
    queue_batch(runtime.get_store(), runtime.get_settings(), handle.batch_id)
    with runtime.get_store().session() as session, session.begin():
        assert session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs")) == 4


@pytest.mark.postgres
def test_the_queue_schema_is_created_once_when_processes_start_together(
    worker_database_url: str,
) -> None:
    with ThreadPoolExecutor(4) as pool:
        for outcome in [pool.submit(ensure_queue_schema, worker_database_url) for _ in range(4)]:
            outcome.result()  # no "already exists" from a second creator
    engine = sa.create_engine(worker_database_url)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs")) == 0
    engine.dispose()
