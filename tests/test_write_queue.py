"""The runner's history writer: a start goes before queued writes, and queued writes of
every user share one transaction (one commit) without losing or reordering a result's text."""

from __future__ import annotations

import re
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from playground.catalog import load_catalog
from playground.results import CompareRequest, ModelResult
from playground.runner.write_queue import WriteQueue
from playground.store import Store, StoreRecorder
from playground.store.models import Result
from tests.store_fixtures import Gate, engine_events, make_request, running_result

MODELS = ("gpt-5", "claude-haiku-4.5", "gemini-2.5-flash")


def started(recorder: StoreRecorder, comparison_id: int, result: ModelResult) -> ModelResult:
    return replace(result, result_id=recorder.record_started(comparison_id, result))


def updates(fired: list[tuple[Any, ...]]) -> list[str]:
    """Each UPDATE of a result row, in order: "start" (a pending row taken) or "row".

    On PostgreSQL a final write is an UPDATE inside a WITH clause (whose SELECT adds the row
    to the rollups): it counts as the row's update too.
    """
    return [
        "start" if "WHERE results.comparison_id" in sql else "row"
        for _conn, _cursor, sql, *_rest in fired
        if re.match(r"(WITH \w+ AS\s*\(\s*)?UPDATE RESULTS", sql.lstrip().upper())
    ]


def new_comparison(store: Store) -> tuple[StoreRecorder, CompareRequest, int]:
    """A recorder of the store and a comparison of :data:`MODELS` it stored."""
    recorder = StoreRecorder(store.engine, load_catalog().cost_of, writes=store.writes)
    request = make_request(MODELS)
    return recorder, request, recorder.start_comparison(request)


def content(store: Store, result_id: int | None) -> tuple[str, str]:
    with store.session() as session:
        row = session.get(Result, result_id)
        assert row is not None
        return row.status, row.content


def test_a_start_is_written_before_queued_flushes_and_they_share_one_commit(
    store: Store,
) -> None:
    catalog = load_catalog()
    ana = StoreRecorder(store.engine, catalog.cost_of, owner="ana", writes=store.writes)
    ben = StoreRecorder(store.engine, catalog.cost_of, owner="ben", writes=store.writes)
    request = make_request(MODELS)
    comparison_id = ana.start_comparison(request)
    first = started(ana, comparison_id, running_result(request, 0))
    second = started(ben, comparison_id, running_result(request, 1))
    queue = WriteQueue("test-writer")
    gate = Gate()
    try:
        queue.submit(gate, "hold")
        assert gate.held.wait(10)
        futures: list[Future[Any]] = []
        for words in range(1, 6):
            text = " ".join(["word"] * words)
            futures.append(queue.submit(ana, "record_progress", replace(first, content=text)))
            futures.append(queue.submit(ben, "record_progress", replace(second, content=text)))
        done = replace(second, status="completed", content="the whole answer")
        futures.append(queue.submit(ben, "record_finished", done))
        start = queue.submit(ana, "record_started", comparison_id, running_result(request, 2))
        with (
            engine_events(store, "commit") as commits,
            engine_events(store, "before_cursor_execute") as executed,
        ):
            gate.open.set()
            third_id = start.result(10)
            for future in futures:
                assert future.result(10) is None
    finally:
        gate.open.set()
        queue.close()
    # The start went first, in its own transaction; then one transaction wrote the newest
    # flush of the first answer and the final write of the second (older flushes dropped).
    assert updates(executed) == ["start", "row", "row"]
    assert len(commits) == 2
    assert content(store, first.result_id) == ("running", "word word word word word")
    assert content(store, second.result_id) == ("completed", "the whole answer")
    assert content(store, third_id)[0] == "running"


def test_one_bad_call_in_a_group_does_not_take_the_others_with_it(store: Store) -> None:
    recorder, request, comparison_id = new_comparison(store)
    first = started(recorder, comparison_id, running_result(request, 0))
    no_row = replace(running_result(request, 1), status="completed", content="never started")
    outcomes = recorder.write_together(
        [
            (recorder, "record_finished", (no_row,)),
            (recorder, "record_finished", (replace(first, status="completed", content="ok"),)),
            (recorder, "record_started", (comparison_id, running_result(request, 2))),
        ]
    )
    assert isinstance(outcomes[0], ValueError)
    assert outcomes[1] is None
    assert isinstance(outcomes[2], int)
    assert content(store, first.result_id) == ("completed", "ok")
    assert content(store, outcomes[2])[0] == "running"


def test_a_recorder_that_adds_rows_to_its_writes_is_written_call_by_call(store: Store) -> None:
    class Annotating(StoreRecorder):
        def record_finished(self, result: ModelResult) -> None:
            super().record_finished(result)

    plain = StoreRecorder(store.engine, writes=store.writes)
    assert plain.group_key is not None
    assert plain.group_key == StoreRecorder(store.engine, writes=store.writes).group_key
    assert Annotating(store.engine, writes=store.writes).group_key is None


def test_a_failing_write_settles_its_calls_and_the_writer_goes_on(store: Store) -> None:
    class Broken(StoreRecorder):
        def write_together(self, calls: Any) -> list[Any]:
            return []  # one outcome too few for every call: the writer must not hang

    broken = Broken(store.engine, writes=store.writes)
    plain = StoreRecorder(store.engine, writes=store.writes)
    request = make_request(MODELS)
    comparison_id = plain.start_comparison(request)
    queue = WriteQueue("test-writer")
    gate = Gate()
    try:
        queue.submit(gate, "hold")
        assert gate.held.wait(10)
        lost = [
            queue.submit(broken, "record_started", comparison_id, running_result(request, i))
            for i in (0, 1)
        ]
        gate.open.set()
        for future in lost:
            assert isinstance(future.exception(10), ValueError)
        assert isinstance(
            queue.submit(plain, "record_started", comparison_id, running_result(request, 2)).result(
                10
            ),
            int,
        )
    finally:
        gate.open.set()
        queue.close()


def test_final_writes_gather_into_one_commit_and_a_start_does_not_wait_for_them(
    store: Store,
) -> None:
    """Final writes queued a moment apart share a transaction; a start queued meanwhile
    (a request waits for it) is written at once, not after the gathering time."""
    recorder, request, comparison_id = new_comparison(store)
    first = started(recorder, comparison_id, running_result(request, 0))
    second = started(recorder, comparison_id, running_result(request, 1))
    queue = WriteQueue("test-writer", gather_s=30.0)
    try:
        with engine_events(store, "commit") as commits:
            one = queue.submit(recorder, "record_finished", replace(first, status="completed"))
            two = queue.submit(recorder, "record_finished", replace(second, status="completed"))
            start = queue.submit(
                recorder, "record_started", comparison_id, running_result(request, 2)
            )
            # Written long before the 30 s gathering time is out (else a TimeoutError).
            third_id = start.result(10)
            assert not one.done() and not two.done()
            queue.close()  # ends the gathering: everything queued is written
            assert one.result(0) is None and two.result(0) is None
        assert len(commits) == 2  # the start, then both final writes together
    finally:
        queue.close()
    assert content(store, first.result_id)[0] == "completed"
    assert content(store, third_id)[0] == "running"


def test_final_writes_are_written_once_the_gathering_time_is_out(store: Store) -> None:
    recorder, request, comparison_id = new_comparison(store)
    first = started(recorder, comparison_id, running_result(request, 0))
    queue = WriteQueue("test-writer", gather_s=0.05)
    try:
        done = queue.submit(recorder, "record_finished", replace(first, status="completed"))
        assert done.result(10) is None
        assert content(store, first.result_id)[0] == "completed"
    finally:
        queue.close()
