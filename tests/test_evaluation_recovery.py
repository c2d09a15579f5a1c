"""Batch crash recovery: a batch left running by a dead process becomes interrupted."""

from __future__ import annotations

import subprocess
import sys

from playground.store import Store
from playground.store.eval_models import BatchRow
from playground.store.eval_recovery import recover_interrupted_batches
from playground.store.eval_repository import batch_cells, set_batch_status, update_cells
from playground.store.recovery import writer_id
from tests.evaluation_fixtures import plan


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
