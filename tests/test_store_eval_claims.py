"""Claiming batch cells across processes, on SQLite and PostgreSQL: disjoint, stale ones
taken over, a batch finished and revived exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from playground.store import Store
from playground.store.eval_claims import (
    claim,
    claimable_cells,
    finish_batch,
    has_live_claims,
    renew_heartbeat,
    revive_stalled_batches,
)
from playground.store.eval_models import BatchRow
from playground.store.eval_repository import batch_cells, set_batch_status, update_cells
from tests.evaluation_fixtures import plan

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=60)


@pytest.fixture
def store(reused_store: Store) -> Store:
    """The session's migrated store on each backend, emptied for this test."""
    return reused_store


def _claim(store: Store, batch_id: int, claimer: str, limit: int, now: datetime = NOW) -> set[int]:
    with store.session() as session, session.begin():
        cells = claimable_cells(session, batch_id, limit, now - STALE, claimer)
        return claim(session, [c.id for c in cells], claimer, now=now, stale_before=now - STALE)


def _running(store: Store, models: list[str], rows: int, execution: str = "worker") -> int:
    batch_id = plan(store, models, rows=rows)
    with store.session() as session, session.begin():
        set_batch_status(session, batch_id, "running", execution=execution)
    return batch_id


def test_claims_are_disjoint_in_matrix_order_and_stale_ones_are_taken_over(store: Store) -> None:
    batch_id = _running(store, ["gpt-5", "claude-haiku-4.5"], rows=3)
    with store.session() as session, session.begin():
        ids = [c.id for c in batch_cells(session, batch_id)]
    first = _claim(store, batch_id, "host:1:a/x", 4)
    second = _claim(store, batch_id, "host:2:b/y", 4)
    assert first == set(ids[:4]) and second == set(ids[4:])
    assert _claim(store, batch_id, "host:3:c/z", 4) == set()

    later = NOW + timedelta(seconds=30)
    with store.session() as session, session.begin():
        renew_heartbeat(session, batch_id, "host:1:a/x", sorted(first), now=later)
        assert has_live_claims(session, batch_id, later + timedelta(seconds=1) - STALE)
    # The second claimer went silent: a minute after its claim its cells are up for grabs.
    much_later = NOW + STALE + timedelta(seconds=5)
    assert _claim(store, batch_id, "host:3:c/z", 6, much_later) == second

    with store.session() as session, session.begin():
        update_cells(session, sorted(first)[:1], status="cancelled")
    # A cell stopped before its answer arrived is to do again.
    assert _claim(store, batch_id, "host:3:c/z", 6, much_later) == set(sorted(first)[:1])


def test_a_claimer_never_takes_over_its_own_running_cells(store: Store) -> None:
    batch_id = _running(store, ["gpt-5"], rows=2)
    mine = _claim(store, batch_id, "host:1:a/x", 1)
    # Its heartbeats fell behind (a stalled machine): its request may still be in flight.
    late = NOW + STALE + timedelta(seconds=1)
    assert _claim(store, batch_id, "host:1:a/x", 2, now=late).isdisjoint(mine)
    assert _claim(store, batch_id, "host:2:b/y", 2, now=late) == mine


def test_concurrent_claimers_never_get_the_same_cell(store: Store) -> None:
    batch_id = _running(store, ["gpt-5", "claude-haiku-4.5", "deepseek-v3"], rows=10)
    won: list[set[int]] = [set() for _ in range(4)]

    def claimer(index: int) -> None:
        while taken := _claim(store, batch_id, f"host:{index}:t/{index}", 2):
            won[index] |= taken

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(len(w) for w in won) == len(set().union(*won)) == 30


def test_only_one_process_finishes_a_batch_and_only_once_nothing_is_left(store: Store) -> None:
    batch_id = _running(store, ["gpt-5"], rows=2)
    with store.session() as session, session.begin():
        ids = [c.id for c in batch_cells(session, batch_id)]
        update_cells(session, ids[:1], status="completed")
    stale_before = datetime.now(UTC) - STALE
    with store.session() as session, session.begin():
        assert not finish_batch(
            session, batch_id, "completed", all_done=True, stale_before=stale_before
        )
        # The budget stops it although a cell is left: that cell waits for a resume.
        update_cells(session, ids[1:], status="running", heartbeat_utc=datetime.now(UTC))
        assert not finish_batch(
            session, batch_id, "budget_reached", all_done=False, stale_before=stale_before
        )
        update_cells(session, ids[1:], status="completed")
    with store.session() as session, session.begin():
        assert finish_batch(
            session, batch_id, "completed", all_done=True, stale_before=stale_before
        )
    with store.session() as session, session.begin():
        assert not finish_batch(
            session, batch_id, "completed", all_done=True, stale_before=stale_before
        )
        batch = session.get(BatchRow, batch_id)
        assert batch is not None and batch.status == "completed" and batch.finished_utc


def test_worker_batches_nobody_works_on_are_revived_once(store: Store) -> None:
    abandoned = _running(store, ["gpt-5"], rows=1)
    judging = _running(store, ["gpt-5"], rows=1)
    in_process = _running(store, ["gpt-5"], rows=1, execution="in_process")
    with store.session() as session, session.begin():
        set_batch_status(session, judging, "judging")
    later = datetime.now(UTC) + STALE + timedelta(seconds=1)
    with store.session() as session, session.begin():
        revived = revive_stalled_batches(session, stale_before=later - STALE, now=later)
    assert sorted(revived) == sorted([abandoned, judging])  # in-process ones are recovered
    with store.session() as session, session.begin():
        assert revive_stalled_batches(session, stale_before=later - STALE, now=later) == []
        assert session.get(BatchRow, judging).status == "running"  # type: ignore[union-attr]
        assert session.get(BatchRow, in_process).status == "running"  # type: ignore[union-attr]
