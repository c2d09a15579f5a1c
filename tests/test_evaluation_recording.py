"""The batch recorder: every answer and its cell in one transaction, against the fake server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from playground.evaluation.recording import BatchRecorder, RunningCell, cell_outcome
from playground.providers.base import Message
from playground.results import CompareRequest, ModelResult, ModelTarget
from playground.runner import Runner
from playground.runner.write_queue import WriteQueue
from playground.store import Store, open_store
from playground.store.eval_repository import CellState, batch_cells
from playground.store.models import Comparison, Result
from tests.evaluation_fixtures import CATALOG, elumenta_factory, plan
from tests.fake_elumenta import FakeElumenta
from tests.fault_proxy import FaultProxy
from tests.store_fixtures import Gate, engine_events, running_result, stored_comparisons

MODELS = ["gpt-5-nano", "claude-haiku-4.5"]
REQUEST = CompareRequest(
    messages=(Message("user", "What is the capital of Peru?"),),
    targets=tuple(ModelTarget("elumenta", m) for m in MODELS),
    use_cache=True,
)


@contextmanager
def commits(store: Store) -> Iterator[list[Any]]:
    """One entry per transaction committed on ``store`` inside the block."""
    committed: list[Any] = []

    def count(connection: Any) -> None:
        committed.append(connection)

    sa.event.listen(store.engine, "commit", count)
    try:
        yield committed
    finally:
        sa.event.remove(store.engine, "commit", count)


def _cells(store: Store, batch_id: int) -> list[CellState]:
    with store.session() as session, session.begin():
        return batch_cells(session, batch_id)


def _row(store: Store, batch_id: int) -> list[RunningCell]:
    """The batch's cells, as the job hands them to the recorder."""
    return [
        RunningCell(
            c.id, c.key.template_version_id, c.key.row_index, c.key.provider, c.key.model, 0
        )
        for c in _cells(store, batch_id)
    ]


def _run(
    store: Store, fake: FakeElumenta, row: list[RunningCell], batch_id: int
) -> tuple[ModelResult, ...]:
    """Run one row (the models of ``MODELS``) of batch ``batch_id`` through a runner and
    the batch recorder."""
    recorder = BatchRecorder(
        store, CATALOG, lambda _cell, result: cell_outcome(result, (), {}, ""), batch_id=batch_id
    )
    recorder.expect(REQUEST, row)
    providers = elumenta_factory(fake.base_url, fake.api_key)()
    runner = Runner(CATALOG)
    try:
        snapshot = runner.start(REQUEST, providers, recorder=recorder).wait(30)
        for provider in providers.values():
            runner.run_coroutine(provider.aclose(), timeout=5)
    finally:
        runner.close()
    assert snapshot.record_error is None
    return snapshot.results


def test_each_answer_and_its_cell_are_written_together(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    batch_id = plan(store, MODELS, rows=1)
    row = _row(store, batch_id)

    with (
        commits(store) as fresh,
        engine_events(store, "before_cursor_execute") as executed,
    ):
        answers = _run(store, fake_elumenta, row, batch_id)

    # The comparison with its cells marked running, the cache looked up and the rows of
    # models without a cached answer stored started; then their rows finished with their
    # cells (answers that reach the writer together share a transaction). No row is
    # started on its own: the requests did not wait for the writer thread.
    assert 1 + 1 <= len(fresh) <= 1 + len(MODELS)
    assert not [
        sql
        for _c, _cur, sql, *_ in executed
        if sql.lstrip().upper().startswith("UPDATE RESULTS")
        and "WHERE results.comparison_id" in sql
    ]
    stored = _cells(store, batch_id)
    assert [(c.status, c.attempts, c.result_id, c.content) for c in stored] == [
        ("completed", 1, a.result_id, a.content) for a in answers
    ]
    assert all(a.content and not a.cached for a in answers)

    again = plan(store, MODELS, rows=1)  # the same request: answered from the cache
    row = _row(store, again)
    with commits(store) as cached:
        reused = _run(store, fake_elumenta, row, again)

    # The comparison and its cache look-ups, then each cached answer settles its cell with it.
    assert 1 + 1 <= len(cached) <= 1 + len(MODELS)
    assert [(c.status, c.content) for c in _cells(store, again)] == [
        ("completed", a.content) for a in answers
    ]
    assert all(r.cached for r in reused)
    assert len(fake_elumenta.requests) == len(MODELS)
    # Each comparison names the batch that ran it: History shows it in that batch's entry.
    assert _batches_of(store, answers) == {batch_id}
    assert _batches_of(store, reused) == {again}


def _batches_of(store: Store, answers: tuple[ModelResult, ...]) -> set[int | None]:
    """The ``batch_id`` of the comparisons ``answers`` were stored in."""
    with store.session() as session:
        return set(
            session.scalars(
                sa.select(Comparison.batch_id)
                .join(Result, Result.comparison_id == Comparison.id)
                .where(Result.id.in_([a.result_id for a in answers]))
            )
        )


def test_answers_queued_together_are_written_in_one_transaction_with_their_cells(
    store: Store,
) -> None:
    batch_id = plan(store, MODELS, rows=1)
    row = _row(store, batch_id)
    recorder = BatchRecorder(
        store, CATALOG, lambda _cell, result: cell_outcome(result, (), {}, ""), batch_id=batch_id
    )
    recorder.expect(REQUEST, row)
    comparison_id = recorder.start_comparison(REQUEST)
    queue = WriteQueue("test-writer")
    gate = Gate()
    try:
        queue.submit(gate, "hold")
        assert gate.held.wait(10)
        starts = [
            queue.submit(recorder, "record_started", comparison_id, running_result(REQUEST, i))
            for i in range(len(MODELS))
        ]
        with commits(store) as started:
            gate.open.set()
            ids = [start.result(10) for start in starts]
        answers = [
            replace(running_result(REQUEST, i, ids[i]), status="completed", content=f"Lima {i}")
            for i in range(len(MODELS))
        ]
        gate.open.clear()
        gate.held.clear()
        queue.submit(gate, "hold")
        assert gate.held.wait(10)
        finals = [queue.submit(recorder, "record_finished", answer) for answer in answers]
        with commits(store) as finished:
            gate.open.set()
            for final in finals:
                assert final.result(10) is None
    finally:
        gate.open.set()
        queue.close()
    assert (len(started), len(finished)) == (1, 1)
    assert [(c.status, c.result_id, c.content) for c in _cells(store, batch_id)] == [
        ("completed", ids[i], f"Lima {i}") for i in range(len(MODELS))
    ]


@pytest.mark.postgres
def test_a_row_started_with_its_cache_look_ups_whose_commit_answer_was_lost_is_stored_once(
    pg: tuple[FaultProxy, str],
) -> None:
    """The retry after a lost COMMIT answer finds the comparison the first attempt stored:
    one comparison, its rows started once, their ids handed back, the cells running."""
    proxy, url = pg
    store = open_store(url)
    try:
        batch_id = plan(store, MODELS, rows=1)
        row = _row(store, batch_id)
        recorder = BatchRecorder(store, CATALOG, lambda _cell, result: {}, batch_id=batch_id)
        recorder.expect(REQUEST, row)
        now = datetime.now(UTC)
        started = [replace(running_result(REQUEST, i), started_at=now) for i in range(len(MODELS))]
        proxy.lose_next_commit_answer()
        comparison_id, row_ids, hits = recorder.start_looking_up(REQUEST, started)
        assert proxy.commit_answers_lost == 1
        stored, rows = stored_comparisons(store)
        cells = _cells(store, batch_id)
    finally:
        store.close()
    assert stored == [comparison_id]
    assert rows == [(row_id, comparison_id, i, "running") for i, row_id in enumerate(row_ids)]
    assert hits == [None] * len(MODELS)
    assert [(c.status, c.attempts) for c in cells] == [("running", 1)] * len(MODELS)
