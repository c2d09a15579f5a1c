"""Money: a batch never pays twice for an answer, whatever goes wrong after it arrived.

Against the fake server over real HTTP: a check that cannot run, a grading bug, quota
headers the batch misreads, a fault in its event handling, and pausing mid-batch.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from playground.evaluation import batch as batch_module
from playground.evaluation.assertions import AssertionSpec
from playground.evaluation.quota import reset_moment
from playground.evaluation.recording import cell_outcome
from playground.evaluation.report import cell_mark
from playground.providers.base import GenerationParams
from playground.results import ModelResult
from playground.store import Store
from playground.store.eval_models import BatchRow
from playground.store.eval_repository import CellState, batch_cells
from tests.evaluation_fixtures import job, plan
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.worker_fixtures import wait_until

ANSWER = "Paris is the capital."


def stream_requests(fake: FakeElumenta) -> Counter[tuple[str, str]]:
    """(model, prompt) → how many ``POST /generate/stream`` the fake received."""
    return Counter(
        (r.json["model"], r.json["messages"][-1]["content"])
        for r in fake.requests
        if r.path.endswith("/generate/stream")
    )


def stored_cells(store: Store, batch_id: int) -> list[CellState]:
    with store.session() as session, session.begin():
        return batch_cells(session, batch_id)


@pytest.mark.parametrize(
    ("assertion", "column", "bad_value", "reason"),
    [
        (AssertionSpec("regex", column="pattern"), "pattern", "([", "Invalid regex"),
        (AssertionSpec("max_cost", column="limit"), "limit", "cheap", "needs a number"),
    ],
    ids=["regex", "max_cost"],
)
def test_a_check_that_cannot_run_stores_the_answer_and_never_asks_again(
    store: Store,
    fake_elumenta: FakeElumenta,
    assertion: AssertionSpec,
    column: str,
    bad_value: str,
    reason: str,
) -> None:
    fake_elumenta.script("*", ModelScript(text=ANSWER))
    good = {"pattern": "capital", "limit": "5"}[column]
    batch_id = plan(
        store,
        ["gpt-5-nano", "claude-haiku-4.5"],
        rows=3,
        assertions=[assertion, AssertionSpec("contains", value="Paris")],
        columns={column: [good, bad_value, good]},
    )
    # Claims go stale fast: a cell left "running" would be claimed (and billed) again.
    running = job(
        store,
        batch_id,
        fake_elumenta.base_url,
        fake_elumenta.api_key,
        heartbeat_s=0.1,
        stale_after_s=1.0,
    )
    progress = running.start().wait(20)

    assert running.finished
    assert (progress.status, progress.completed, progress.failed) == ("completed", 6, 0)
    requests = stream_requests(fake_elumenta)
    assert sum(requests.values()) == 6 and set(requests.values()) == {1}
    cells = stored_cells(store, batch_id)
    assert {c.status for c in cells} == {"completed"}
    assert all(c.content == ANSWER for c in cells)
    broken = [c for c in cells if c.key.row_index == 1]
    for cell in broken:
        assert cell_mark(cell) == "ERROR"
        assert cell.error_message is not None and reason in cell.error_message
        errored, contains = cell.assertions
        assert errored["error"] is True and reason in errored["message"]
        assert contains["passed"] is True  # the other checks still ran
    assert {cell_mark(c) for c in cells if c.key.row_index != 1} == {"PASS"}


def test_a_schema_column_that_is_not_json_is_an_errored_check_not_an_exception() -> None:
    answer = ModelResult(
        index=0,
        provider="elumenta",
        model="gpt-5",
        params=GenerationParams(),
        request_hash="h",
        status="completed",
        content='{"a": 1}',
    )
    values = cell_outcome(
        answer,
        (AssertionSpec("json_schema", column="schema"),),
        {"schema": "{not json"},
        "question",
    )
    assert values["status"] == "completed"
    (outcome,) = values["assertions_json"]
    assert outcome["passed"] is False
    assert outcome["message"]  # says why, whichever way the schema is read


def test_a_grading_bug_still_stores_the_paid_answer_once(
    store: Store, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> dict[str, Any]:
        raise RuntimeError("grading exploded")

    monkeypatch.setattr(batch_module, "cell_outcome", broken)
    fake_elumenta.script("*", ModelScript(text=ANSWER))
    batch_id = plan(store, ["gpt-5-nano"], rows=3, assertions=[AssertionSpec("contains", "x")])
    running = job(
        store,
        batch_id,
        fake_elumenta.base_url,
        fake_elumenta.api_key,
        heartbeat_s=0.1,
        stale_after_s=1.0,
    )
    progress = running.start().wait(20)

    assert (progress.status, progress.completed) == ("completed", 3)
    assert sum(stream_requests(fake_elumenta).values()) == 3
    for cell in stored_cells(store, batch_id):
        assert (cell.status, cell.content, cell_mark(cell)) == ("completed", ANSWER, "ERROR")
        assert cell.error_message is not None and "grading exploded" in cell.error_message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2026-03-01T13:00:00Z", datetime(2026, 3, 1, 13, tzinfo=UTC)),
        ("2026-03-01T13:00:00", datetime(2026, 3, 1, 13, tzinfo=UTC)),  # no offset: UTC
        ("2026-03-01T16:00:00+03:00", datetime(2026, 3, 1, 13, tzinfo=UTC)),
        ("1772370000", datetime(2026, 3, 1, 13, tzinfo=UTC)),  # Unix seconds
        ("Sun, 01 Mar 2026 13:00:00 GMT", datetime(2026, 3, 1, 13, tzinfo=UTC)),
        ("in an hour", None),
        ("", None),
        (None, None),
    ],
)
def test_the_quota_reset_time_is_read_in_every_form(
    header: str | None, expected: datetime | None
) -> None:
    assert reset_moment(header) == expected


def test_a_reset_time_without_an_offset_lets_the_batch_complete(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.reset_hour_format = "%Y-%m-%dT%H:%M:%S"  # naive: UTC by the API's word
    fake_elumenta.quota_hour = 3  # the last answer reports the hour's quota used up
    batch_id = plan(store, ["gpt-5-nano"], rows=3, concurrency=1)
    progress = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(20)

    assert (progress.status, progress.completed, progress.failed) == ("completed", 3, 0)
    assert progress.message.startswith("Hourly quota used up: waiting")
    assert sum(stream_requests(fake_elumenta).values()) == 3


def test_an_error_handling_an_answer_stops_the_batch_visibly(
    store: Store, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> None:
        raise RuntimeError("quota bug")

    monkeypatch.setattr(batch_module, "quota_reaction", broken)
    fake_elumenta.script("*", ModelScript(text=ANSWER))
    batch_id = plan(store, ["gpt-5-nano"], rows=6, concurrency=1)
    running = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key)
    progress = running.start().wait(20)

    assert running.finished
    assert progress.status == "interrupted"
    assert progress.message.startswith("Stopped by an error: Unexpected error (RuntimeError).")
    with store.session() as session, session.begin():
        stored = session.get(BatchRow, batch_id)
        assert stored is not None
        assert (stored.status, stored.status_message) == ("interrupted", progress.message)
    # Stopped at once: the answers that arrived are kept, nothing else was asked.
    sent = sum(stream_requests(fake_elumenta).values())
    assert 1 <= sent < 6
    answered = [c for c in stored_cells(store, batch_id) if c.status == "completed"]
    assert len(answered) == sent and all(c.content == ANSWER for c in answered)


def test_pausing_sends_nothing_new_and_says_what_is_still_finishing(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(text=ANSWER, ttft_ms=800))
    batch_id = plan(store, ["gpt-5-nano"], rows=6, concurrency=1)
    running = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start()
    # Two answers in, the third request out, the fourth claimed and queued behind it.
    wait_until(lambda: (running.progress().completed, running.progress().finishing) == (2, 1))

    running.pause()
    at_pause = running.progress()
    assert at_pause.status == "paused"
    assert at_pause.message == "Paused — 1 request still finishing."
    sent_by_then = at_pause.completed + at_pause.failed + at_pause.finishing
    wait_until(lambda: running.progress().running == 0)

    settled = running.progress()
    assert settled.message == ""
    assert sum(stream_requests(fake_elumenta).values()) == sent_by_then == settled.completed
    with store.session() as session, session.begin():
        statuses = Counter(c.status for c in batch_cells(session, batch_id))
    assert statuses["completed"] == settled.completed and statuses["running"] == 0

    running.resume()
    done = running.wait(60)
    assert (done.status, done.completed) == ("completed", 6)
    requests = stream_requests(fake_elumenta)
    assert sum(requests.values()) == 6 and set(requests.values()) == {1}
