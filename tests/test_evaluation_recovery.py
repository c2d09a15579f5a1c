"""Batch crash recovery: a batch left running by a dead or silent process becomes interrupted."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from playground.evaluation.watch import Sight
from playground.store import Store
from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.eval_recovery import recover_interrupted_batches
from playground.store.eval_repository import batch_cells, set_batch_status, update_cells
from playground.store.recovery import writer_id
from tests.evaluation_fixtures import job, plan
from tests.fake_elumenta import FakeElumenta
from tests.worker_fixtures import wait_until


def _dead_writer() -> str:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    host, _, _ = writer_id().split(":")
    return f"{host}:{process.pid}:deadbeef"


def test_only_batches_of_dead_processes_are_interrupted(store: Store) -> None:
    dead, alive, unclaimed, legacy = (plan(store, ["gpt-5"], rows=2) for _ in range(4))
    with store.session() as session, session.begin():
        set_batch_status(session, dead, "running", writer=_dead_writer())
        set_batch_status(session, alive, "paused", writer=writer_id())
        set_batch_status(session, legacy, "running")  # before migration 0003: no writer
        running = batch_cells(session, dead)[0].id
        update_cells(session, [running], status="running", attempts=1)
    with store.session() as session, session.begin():
        assert sorted(recover_interrupted_batches(session)) == sorted([dead, legacy])
    with store.session() as session, session.begin():
        statuses = {i: session.get(BatchRow, i).status for i in (dead, alive, unclaimed, legacy)}  # type: ignore[union-attr]
        cells = {c.id: c.status for c in batch_cells(session, dead)}
        assert recover_interrupted_batches(session) == []  # nothing left to recover
    assert statuses == {
        dead: "interrupted",
        alive: "paused",
        unclaimed: "pending",
        legacy: "interrupted",
    }
    assert cells[running] == "pending"  # in flight at the crash: asked again on resume


def test_a_silent_in_process_batch_is_interrupted_whatever_its_host(store: Store) -> None:
    silent, fresh, on_workers = (plan(store, ["gpt-5"], rows=2) for _ in range(3))
    long_ago = datetime.now(UTC) - timedelta(minutes=2)
    with store.session() as session, session.begin():
        # Processes on another host: nobody can tell whether they live, only their heartbeat.
        set_batch_status(
            session, silent, "running", writer="elsewhere:123:abc", execution="in_process"
        )
        set_batch_status(
            session, fresh, "running", writer="elsewhere:456:def", execution="in_process"
        )
        set_batch_status(session, on_workers, "running", execution="worker")
        running = batch_cells(session, silent)[0].id
        update_cells(session, [running], status="running", claimed_by="elsewhere:123:abc/x")
        session.execute(
            sa.update(BatchRow)
            .where(BatchRow.id.in_([silent, on_workers]))
            .values(heartbeat_utc=long_ago)
        )
    with store.session() as session, session.begin():
        assert recover_interrupted_batches(session, stale_after=timedelta(seconds=60)) == [silent]
    with store.session() as session, session.begin():
        statuses = {i: session.get(BatchRow, i).status for i in (silent, fresh, on_workers)}  # type: ignore[union-attr]
        cell = session.get(BatchCellRow, running)
        assert cell is not None and (cell.status, cell.claimed_by) == ("pending", None)
    # Worker batches are not interrupted: other workers take their cells over.
    assert statuses == {silent: "interrupted", fresh: "running", on_workers: "running"}


def test_a_live_job_renews_its_heartbeat_so_it_is_never_taken_for_dead(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    batch_id = plan(store, ["gpt-5"], rows=2)
    running = job(
        store,
        batch_id,
        fake_elumenta.base_url,
        fake_elumenta.api_key,
        heartbeat_s=0.1,
        stale_after_s=0.5,
    )
    running.pause()  # alive but idle: only the heartbeat shows it
    running.start()
    stale_after = timedelta(seconds=0.5)

    def heartbeat() -> datetime | None:
        with store.session() as session, session.begin():
            batch = session.get(BatchRow, batch_id)
            assert batch is not None and batch.status == "paused"
            return batch.heartbeat_utc

    try:
        wait_until(lambda: heartbeat() is not None)
        first = heartbeat()
        assert first is not None
        stale_at = first + stale_after
        # Renewed after the first beat went stale; told apart by the beats' own times, not by
        # how long the test slept, which a loaded machine stretches past any stale window.
        wait_until(lambda: (heartbeat() or stale_at) > stale_at)
        renewed = heartbeat()
        assert renewed is not None
        now = renewed + stale_after * 0.8  # the first beat long stale, the renewed one not
        with store.session() as session, session.begin():
            assert recover_interrupted_batches(session, stale_after=stale_after, now=now) == []
            batch = session.get(BatchRow, batch_id)
            assert batch is not None and batch.status == "paused"
    finally:
        running.cancel()
        assert running.wait(10).status == "cancelled"


def test_time_the_database_did_not_answer_does_not_count_toward_a_stale_claim() -> None:
    sight = Sight(gap_s=1.0)
    assert sight.seen_since(1.0, now=100.0) is None  # nothing seen yet
    for at in (100.0, 100.5, 101.0, 101.5):
        sight.answered(at=at)
    assert sight.seen_since(1.0, now=102.0) == 101.0  # answered all along
    assert sight.seen_since(5.0, now=102.0) is None  # watched for 2 s only
    sight.answered(at=110.0)  # 8.5 s without an answer: an outage
    # Seen: 1.5 s before it, then what followed it.
    assert sight.seen_since(1.0, now=110.5) == 101.0
    assert sight.seen_since(2.0, now=110.5) == 100.0
    for at in (110.5, 111.0, 111.5, 112.0, 112.5, 113.0):
        sight.answered(at=at)
    assert sight.seen_since(5.0, now=113.0) is None  # 1.5 s + 3 s
    sight.answered(at=114.0)
    assert sight.seen_since(5.0, now=114.0) == 100.5  # 1.5 s + 4 s
    # The caller's own transaction is an answer: a long silence up to it is blind too.
    assert sight.seen_since(5.0, now=130.0) == 100.5
    assert sight.seen_since(6.0, now=130.0) is None
