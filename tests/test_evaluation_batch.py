"""Batch runs against the fake server: counts with 429s and failures, budget, cancel, resume,
and a hosted batch kept within its owner's budget and request rate (in process and on a worker)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from playground.access.spending import spend_of
from playground.config import Settings
from playground.errors import RateLimitInfo
from playground.evaluation import batch as batch_module
from playground.evaluation.assertions import AssertionSpec
from playground.evaluation.batch import BatchJob
from playground.evaluation.manager import BatchManager
from playground.evaluation.quota import newer_report
from playground.evaluation.recording import BatchProgress
from playground.store import Store, open_store
from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.eval_repository import batch_cells, set_batch_budget
from playground.store.models import Comparison, Result
from playground.workers.dispatch import queue_batch
from tests.evaluation_fixtures import CATALOG, elumenta_factory, job, plan
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.hosted_fixtures import set_user_limits, signed_in
from tests.store_fixtures import engine_events, seed_comparison, seed_result
from tests.worker_fixtures import (
    WorkerProcess,
    heartbeats_renewed,
    shards_ended,
    wait_until,
    worker_settings,
)


def _generate_requests(fake: FakeElumenta) -> Counter[tuple[str, str]]:
    return Counter(
        (r.json["model"], r.json["messages"][-1]["content"])
        for r in fake.requests
        if r.path.endswith("/generate/stream")
    )


def test_batch_completes_with_correct_counts_despite_429s_and_failures(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script(
        "gpt-5-nano",
        ModelScript(fail_first=[(429, "rate_limit_exceeded")] * 3, retry_after_s=0.1),
    )
    fake_elumenta.script("deepseek-v3", ModelScript(status=500))
    contains = AssertionSpec("contains", value="fake Elumenta")
    only_nano = AssertionSpec("regex", value="Answered by `gpt-5-nano`")
    batch_id = plan(
        store,
        ["gpt-5-nano", "claude-haiku-4.5", "deepseek-v3"],
        rows=8,
        assertions=[contains, only_nano],
    )
    progress = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(60)

    assert (progress.status, progress.total, progress.completed, progress.failed) == (
        "completed",
        24,
        16,
        8,
    )
    assert progress.pending == progress.running == 0
    assert progress.assertion_failures == 8  # claude's answers do not name gpt-5-nano
    assert progress.spent_tokens == 16
    requests = Counter(model for model, _ in _generate_requests(fake_elumenta).elements())
    assert requests == {"gpt-5-nano": 8 + 3, "claude-haiku-4.5": 8, "deepseek-v3": 8}
    with store.session() as session, session.begin():
        cells = batch_cells(session, batch_id)
        assert session.get(BatchRow, batch_id).status == "completed"  # type: ignore[union-attr]
        tags = session.scalars(
            sa.select(Result.model).where(
                Result.id.in_([c.result_id for c in cells if c.result_id])
            )
        ).all()
    assert len(tags) == 24
    by_model = Counter((c.key.model, c.status, c.passed) for c in cells)
    assert by_model == {
        ("gpt-5-nano", "completed", True): 8,
        ("claude-haiku-4.5", "completed", False): 8,
        ("deepseek-v3", "failed", None): 8,
    }
    failed = next(c for c in cells if c.status == "failed")
    assert failed.error_message
    nano = next(c for c in cells if c.key.model == "gpt-5-nano")
    assert [a["passed"] for a in nano.assertions] == [True, True]


def test_budget_cap_stops_submitting_and_resume_continues(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    batch_id = plan(store, ["gpt-5"], rows=5, budget_tokens=5, concurrency=1)
    progress = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(30)
    assert (progress.status, progress.completed, progress.spent_tokens) == ("budget_reached", 2, 4)
    assert "budget" in progress.message
    assert len(_generate_requests(fake_elumenta)) == 2
    with store.session() as session, session.begin():
        set_batch_budget(session, batch_id, None)
    resumed = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(30)
    assert (resumed.status, resumed.completed, resumed.spent_tokens) == ("completed", 5, 10)
    assert len(_generate_requests(fake_elumenta)) == 5


def test_cancel_then_resume_never_requests_a_completed_cell_twice(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(ttft_ms=60, delay_ms=5))
    batch_id = plan(store, ["gpt-5-nano", "claude-haiku-4.5"], rows=12, concurrency=2)
    first = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start()
    deadline = time.monotonic() + 20
    while first.progress().completed < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.cancel()
    stopped = first.wait(20)
    assert stopped.status == "cancelled"
    assert 4 <= stopped.completed < 24
    with store.session() as session, session.begin():
        done_before = {
            (c.key.model, c.key.row_index)
            for c in batch_cells(session, batch_id)
            if c.status == "completed"
        }
    resumed = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(60)
    assert (resumed.status, resumed.completed, resumed.failed) == ("completed", 24, 0)
    requests = _generate_requests(fake_elumenta)
    assert len(requests) == 24
    for model, row_index in done_before:
        assert requests[(model, f"What is the capital of Country {row_index}?")] == 1


def test_pause_stops_new_requests_until_resumed(store: Store, fake_elumenta: FakeElumenta) -> None:
    fake_elumenta.script("*", ModelScript(ttft_ms=30))
    batch_id = plan(store, ["gpt-5-nano"], rows=6, concurrency=1)
    url, key = fake_elumenta.base_url, fake_elumenta.api_key
    running = job(store, batch_id, url, key, heartbeat_s=0.1)
    running.pause()
    running.start()
    heartbeats_renewed(store, batch_id)  # alive and paused for a while
    assert running.progress().status == "paused"
    assert not _generate_requests(fake_elumenta)
    running.resume()
    assert running.wait(30).completed == 6


def test_a_poll_during_a_pause_does_not_undo_it(
    store: Store, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher may read the batch's status while Pause is still being written: it
    finds the old ``running`` there, and adopting it would let the job claim on."""
    fake_elumenta.script("*", ModelScript(ttft_ms=30))
    batch_id = plan(store, ["gpt-5-nano"], rows=6, concurrency=1)
    url, key = fake_elumenta.base_url, fake_elumenta.api_key
    running = job(store, batch_id, url, key, heartbeat_s=0.1).start()
    wait_until(lambda: running.progress().completed >= 1, 20)
    real_write = batch_module.set_batch_status

    def poll_first(*args: Any, **kwargs: Any) -> None:
        running._poll(beat=False)  # the database still says running
        real_write(*args, **kwargs)

    monkeypatch.setattr(batch_module, "set_batch_status", poll_first)
    running.pause()
    assert running.progress().status == "paused"
    monkeypatch.undo()
    heartbeats_renewed(store, batch_id)
    paused = running.progress()
    assert paused.status == "paused" and paused.completed < 6
    running.cancel()
    assert running.wait(20).status == "cancelled"


def test_a_running_job_is_found_in_its_own_database_only(
    store: Store, fake_elumenta: FakeElumenta, tmp_path: Path
) -> None:
    """Batch #1 of a database the app opened later is not the job of the first one's #1."""
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    first, second = plan(store, ["gpt-5-nano"], rows=2), plan(other, ["gpt-5-nano"], rows=2)
    assert first == second
    manager = BatchManager()
    url, key = fake_elumenta.base_url, fake_elumenta.api_key
    done = manager.start(lambda: job(store, first, url, key), store, first)
    done.wait(30)
    assert manager.get(store, first) is done
    assert manager.get(other, second) is None
    again = manager.start(lambda: job(other, second, url, key), other, second)
    assert again is not done and again.wait(30).completed == 2
    other.close()


def test_an_empty_balance_pauses_the_batch_and_resume_after_a_top_up_completes_it(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.balance = 5  # gpt-5 costs 2: two answers, then 402 for every request
    batch_id = plan(store, ["gpt-5"], rows=6, concurrency=1)
    url, key = fake_elumenta.base_url, fake_elumenta.api_key
    running = job(store, batch_id, url, key, heartbeat_s=0.1).start()
    wait_until(lambda: (running.progress().status, running.progress().running) == ("paused", 0))

    paused = running.progress()
    assert (paused.completed, paused.failed, paused.pending) == (2, 0, 4)
    assert paused.message.startswith("Paused: gpt-5 was refused for lack of balance (")
    assert "Top up the balance, then resume" in paused.message
    # Refusals in flight when the first one came back may be sent once more (402s are free).
    sent = sum(_generate_requests(fake_elumenta).values())
    assert 3 <= sent <= 6
    heartbeats_renewed(store, batch_id)
    assert sum(_generate_requests(fake_elumenta).values()) == sent  # nothing once paused
    assert fake_elumenta.balance == 1  # two answers paid
    with store.session() as session, session.begin():
        stored = session.get(BatchRow, batch_id)
        assert stored is not None and (stored.status, stored.status_message) == (
            "paused",
            paused.message,
        )

    fake_elumenta.balance = 1000
    running.resume()
    done = running.wait(30)
    assert (done.status, done.completed, done.failed, done.spent_tokens) == ("completed", 6, 0, 12)
    assert fake_elumenta.balance == 1000 - 4 * 2  # the other four paid once each
    requests = _generate_requests(fake_elumenta)
    assert requests[("gpt-5", "What is the capital of Country 0?")] == 1  # not asked again
    assert requests[("gpt-5", "What is the capital of Country 1?")] == 1
    with store.session() as session, session.begin():
        assert {c.status for c in batch_cells(session, batch_id)} == {"completed"}


def test_low_quota_slows_down_to_one_request_at_a_time(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.quota_hour = 20
    fake_elumenta.script("*", ModelScript(ttft_ms=40))
    batch_id = plan(store, ["gpt-5-nano", "claude-haiku-4.5"], rows=6, concurrency=4)
    running = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key, low_watermark=18)
    progress = running.start().wait(30)
    assert progress.completed == 12
    assert "slowing down" in progress.message
    # The quota is only learnt from answers: the first claim (8 cells) goes out before it
    # is known. The 4 cells claimed after it must go one at a time: each request reaches
    # the fake only after it finished answering the one before.
    spans = sorted(
        (r.received_at, fake_elumenta.answered_at[i])
        for i, r in enumerate(fake_elumenta.requests)
        if r.path.endswith("stream")
    )
    assert len(spans) == 12
    for (_, previous_end), (start, _) in itertools.pairwise(spans[-4:]):
        assert start > previous_end


def test_an_older_quota_report_arriving_late_does_not_undo_the_slowdown() -> None:
    hour = "2026-03-01T13:00:00Z"
    seen = RateLimitInfo(remaining_hour=16, reset_hour=hour)
    # Sent early, answered late: its count is from before the others were sent.
    assert not newer_report(seen, RateLimitInfo(remaining_hour=19, reset_hour=hour))
    assert newer_report(seen, RateLimitInfo(remaining_hour=15, reset_hour=hour))
    # A new hour: the count starts over.
    assert newer_report(seen, RateLimitInfo(remaining_hour=99, reset_hour="2026-03-01T14:00:00Z"))
    assert newer_report(None, RateLimitInfo(remaining_hour=19, reset_hour=hour))
    assert not newer_report(seen, None)
    assert not newer_report(seen, RateLimitInfo(remaining_day=5))


def test_judge_spend_counts_against_the_budget_and_no_answer_is_judged_twice(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    rubric = AssertionSpec("llm_judge", value="Names a capital.")
    # Each cell reserves its answer (gpt-5-nano: 1) plus the judge (gpt-5: 2): 7 fits two.
    batch_id = plan(
        store, ["gpt-5-nano"], rows=3, assertions=[rubric], judge="gpt-5", budget_tokens=7
    )
    first = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(30)
    assert (first.status, first.completed, first.spent_tokens, first.judge_tokens) == (
        "budget_reached",
        2,
        2,
        4,
    )
    assert first.spent_tokens + first.judge_tokens <= 7
    with store.session() as session, session.begin():
        set_batch_budget(session, batch_id, None)
    resumed = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(30)
    assert (resumed.status, resumed.completed, resumed.judge_tokens) == ("completed", 3, 6)
    judged = [r for r in fake_elumenta.requests if r.path.endswith("/generate")]
    assert len(judged) == 3 and {r.json["model"] for r in judged} == {"gpt-5"}
    with store.session() as session, session.begin():
        cells = batch_cells(session, batch_id)
    assert all(sum(bool(a.get("judge")) for a in c.assertions) == 1 for c in cells)


def _judge_requests(fake: FakeElumenta) -> int:
    return sum(r.path.endswith("/generate") for r in fake.requests)


def test_a_failing_judge_marks_that_assertion_as_an_error_and_the_batch_completes(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    judge_reply = ModelScript(judge_verdict="PASS", fail_first=[(500, "provider_error")])
    fake_elumenta.script("gpt-5", judge_reply)
    rubric = AssertionSpec("llm_judge", value="Names a capital.")
    batch_id = plan(store, ["gpt-5-nano"], rows=3, assertions=[rubric], judge="gpt-5")
    url, key = fake_elumenta.base_url, fake_elumenta.api_key
    progress = job(store, batch_id, url, key).start().wait(30)

    assert (progress.status, progress.completed, progress.failed) == ("completed", 3, 0)
    assert progress.judge_tokens == 2 * 2  # the failed judge request cost nothing
    with store.session() as session, session.begin():
        cells = batch_cells(session, batch_id)
    judged = [a for c in cells for a in c.assertions if a.get("judge")]
    assert len(judged) == 3
    (error,) = [a for a in judged if a.get("error")]
    assert error["passed"] is False
    assert error["message"].startswith("The judge could not grade this answer: ")
    assert sorted(c.passed for c in cells) == [False, True, True]
    assert all(c.content for c in cells)  # every answer stays, asked for once
    assert set(_generate_requests(fake_elumenta).values()) == {1}
    assert _judge_requests(fake_elumenta) == 3


def test_a_judge_refused_for_lack_of_balance_pauses_and_resume_grades_the_rest(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("gpt-5", ModelScript(status=402))
    rubric = AssertionSpec("llm_judge", value="Names a capital.")
    batch_id = plan(store, ["gpt-5-nano"], rows=3, assertions=[rubric], judge="gpt-5")
    url, key = fake_elumenta.base_url, fake_elumenta.api_key
    paused = job(store, batch_id, url, key).start().wait(30)

    assert (paused.status, paused.completed, paused.judge_tokens) == ("paused", 3, 0)
    assert paused.message.startswith("Paused: the judge model gpt-5 was refused: ")
    assert paused.message.endswith(
        "Top up the balance, then resume to grade the remaining answers."
    )
    with store.session() as session, session.begin():
        stored = session.get(BatchRow, batch_id)
        assert stored is not None and stored.status_message == paused.message
        assert not any(a.get("judge") for c in batch_cells(session, batch_id) for a in c.assertions)
    refused = _judge_requests(fake_elumenta)
    assert 1 <= refused <= 3

    fake_elumenta.script("gpt-5", ModelScript(judge_verdict="PASS"))
    resumed = job(store, batch_id, url, key).start().wait(30)
    assert (resumed.status, resumed.completed, resumed.judge_tokens) == ("completed", 3, 3 * 2)
    assert _judge_requests(fake_elumenta) == refused + 3
    assert set(_generate_requests(fake_elumenta).values()) == {1}  # no answer asked twice


def test_a_batchs_answers_belong_to_its_owner_and_count_toward_their_spend(
    store: Store, fake_elumenta: FakeElumenta
) -> None:
    batch_id = plan(store, ["gpt-5-nano", "gpt-5"], rows=3)
    with store.session() as session, session.begin():
        session.get(BatchRow, batch_id).owner = "ana@example.org"  # type: ignore[union-attr]
    progress = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start().wait(60)

    assert progress.status == "completed"
    with store.session() as session, session.begin():
        owners = set(
            session.scalars(
                sa.select(Comparison.owner).where(
                    Comparison.id.in_(
                        sa.select(Result.comparison_id).where(
                            Result.id.in_(sa.select(BatchCellRow.result_id))
                        )
                    )
                )
            )
        )
        assert owners == {"ana@example.org"}
        assert spend_of(session, "ana@example.org").today_tokens == 3 * (1 + 2)
        assert spend_of(session, "ben@example.org").today_tokens == 0


# --- the owner's limits while a hosted batch runs ------------------------------------

ANA = "ana@example.org"
LOCAL_SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def fake(fake_elumenta: FakeElumenta) -> FakeElumenta:
    """The fake answering at once, with no hourly quota: only the owner's limits slow a batch."""
    fake_elumenta.quota_hour = fake_elumenta.quota_day = None
    fake_elumenta.script("*", ModelScript())
    return fake_elumenta


def owned_by(store: Store, batch_id: int, email: str, **limits: int | None) -> None:
    """Make ``email`` (signed in, with these limits of their own) the batch's owner."""
    set_user_limits(store, signed_in(store, email), **limits)
    with store.session() as session, session.begin():
        session.get(BatchRow, batch_id).owner = email  # type: ignore[union-attr]


def wait_for(running: BatchJob, condition: Callable[[BatchProgress], bool]) -> BatchProgress:
    deadline = time.monotonic() + 30
    while not condition(progress := running.progress()):
        assert time.monotonic() < deadline, progress
        time.sleep(0.02)
    return progress


def limit_reads(statements: list[tuple[Any, ...]]) -> int:
    """How many of the executed statements read a user's limits (one per spend read)."""
    return sum("FROM users" in statement for _, _, statement, *_ in statements)


def test_an_owners_daily_budget_pauses_the_batch_and_resume_continues_once_raised(
    store: Store, fake: FakeElumenta
) -> None:
    fake.script("*", ModelScript(ttft_ms=20))
    batch_id = plan(store, ["gpt-5-nano", "claude-haiku-4.5"], rows=20, concurrency=4)
    owned_by(store, batch_id, ANA, daily_budget_tokens=10)
    url, key = fake.base_url, fake.api_key
    running = job(store, batch_id, url, key, settings=LOCAL_SETTINGS, heartbeat_s=0.1).start()
    try:
        paused = wait_for(running, lambda p: p.status == "paused" and p.running == 0)
        assert paused.message == (
            "Paused: ana@example.org reached the daily budget of 10 billing tokens (10 used "
            "or reserved, the next requests need 2); an admin can raise it, or resume "
            "tomorrow (it resets at midnight UTC)."
        )
        with store.session() as session, session.begin():
            batch = session.get(BatchRow, batch_id)
            assert batch is not None
            assert (batch.status, batch.status_message) == ("paused", paused.message)
            assert spend_of(session, ANA).today_tokens == paused.spent_tokens == 10
        heartbeats_renewed(store, batch_id)
        assert len(_generate_requests(fake)) == paused.completed == 10

        set_user_limits(store, signed_in(store, ANA), daily_budget_tokens=1000)
        running.resume()
        finished = running.wait(60)
    finally:
        running.cancel()
        running.wait(30)
    assert (finished.status, finished.completed, finished.message) == ("completed", 40, "")
    assert set(_generate_requests(fake).values()) == {1}
    with store.session() as session, session.begin():
        assert session.get(BatchRow, batch_id).status_message is None  # type: ignore[union-attr]


def test_the_judges_grading_counts_toward_its_owners_budget_and_pauses_at_it(
    store: Store, fake: FakeElumenta
) -> None:
    rubric = AssertionSpec("llm_judge", value="Names a capital.")
    batch_id = plan(store, ["gpt-5-nano"], rows=3, assertions=[rubric], judge="gpt-5")
    # The answers cost 3 (1 each); the judge 2 per answer: 7 leaves room to grade two.
    owned_by(store, batch_id, ANA, daily_budget_tokens=7)
    url, key = fake.base_url, fake.api_key
    paused = job(store, batch_id, url, key, settings=LOCAL_SETTINGS).start().wait(30)

    assert (paused.status, paused.completed, paused.judge_tokens) == ("paused", 3, 4)
    assert paused.message == (
        "Paused: ana@example.org reached the daily budget of 7 billing tokens (7 used or "
        "reserved, the next requests need 2); an admin can raise it, or resume tomorrow "
        "(it resets at midnight UTC)."
    )
    assert _judge_requests(fake) == 2
    with store.session() as session, session.begin():
        assert spend_of(session, ANA).today_tokens == 3 + 4
        assert session.get(BatchRow, batch_id).status_message == paused.message  # type: ignore[union-attr]

    set_user_limits(store, signed_in(store, ANA), daily_budget_tokens=100)
    resumed = job(store, batch_id, url, key, settings=LOCAL_SETTINGS).start().wait(30)
    assert (resumed.status, resumed.judge_tokens, resumed.message) == ("completed", 6, "")
    assert _judge_requests(fake) == 3
    with store.session() as session, session.begin():
        assert spend_of(session, ANA).today_tokens == 3 + 6
        cells = batch_cells(session, batch_id)
    assert all(sum(bool(a.get("judge")) for a in c.assertions) == 1 for c in cells)


def test_the_judges_spend_counts_on_the_day_it_graded_for_the_batchs_owner_only(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    earlier_this_month = max(month_start, now - timedelta(days=1))
    batch_id = plan(store, ["gpt-5-nano"], rows=4)
    other_id = plan(store, ["gpt-5-nano"], rows=1)
    with store.session() as session, session.begin():
        session.get(BatchRow, batch_id).owner = ANA  # type: ignore[union-attr]
        session.get(BatchRow, other_id).owner = "bo@example.org"  # type: ignore[union-attr]
        cells = session.scalars(
            sa.select(BatchCellRow).order_by(BatchCellRow.batch_id, BatchCellRow.row_index)
        ).all()
        graded = [now, earlier_this_month, month_start - timedelta(days=1), None, now]
        for cell, judged_utc in zip(cells, graded, strict=True):
            cell.judge_tokens, cell.judged_utc = (
                (None, None) if judged_utc is None else (5, judged_utc)
            )
    with store.session() as session, session.begin():
        ana, bo = spend_of(session, ANA), spend_of(session, "bo@example.org")
    yesterday_counts = earlier_this_month.date() == now.date()  # on the 1st it is today too
    assert (ana.today_tokens, ana.month_tokens) == (10 if yesterday_counts else 5, 10)
    assert (bo.today_tokens, bo.month_tokens) == (5, 5)
    assert ana.requests_last_minute == 0  # the judge's requests are not answers


def test_a_job_from_settings_holds_an_owner_without_own_limits_to_the_server_defaults(
    store: Store, fake: FakeElumenta
) -> None:
    batch_id = plan(store, ["gpt-5-nano"], rows=8, concurrency=2)
    with store.session() as session, session.begin():
        session.get(BatchRow, batch_id).owner = "bo@example.org"  # type: ignore[union-attr]
    settings = Settings(_env_file=None, default_daily_budget_tokens=3)  # type: ignore[call-arg]
    providers = elumenta_factory(fake.base_url, fake.api_key)
    running = BatchJob.from_settings(store, batch_id, CATALOG, settings, providers).start()
    try:
        paused = wait_for(running, lambda p: p.status == "paused" and p.running == 0)
    finally:
        running.cancel()
        running.wait(30)  # its thread must be done before the test's database is dropped
    assert paused.message.startswith(
        "Paused: bo@example.org reached the daily budget of 3 billing tokens"
    )
    assert paused.completed == len(_generate_requests(fake)) == 3


def test_an_owners_request_rate_slows_the_batch_down_and_it_still_completes(
    store: Store, fake: FakeElumenta
) -> None:
    batch_id = plan(store, ["gpt-5-nano"], rows=6, concurrency=4)
    owned_by(store, batch_id, ANA, requests_per_minute=6)
    # Four requests 57 s ago: two more fit this minute, the rest once those four age out.
    with store.session() as session, session.begin():
        earlier = datetime.now(UTC) - timedelta(seconds=57)
        frees_up_at = time.perf_counter() + 3
        for _ in range(4):
            seed_result(session, seed_comparison(session, created=earlier, owner=ANA), "gpt-5")
    url, key = fake.base_url, fake.api_key
    progress = job(store, batch_id, url, key, settings=LOCAL_SETTINGS).start().wait(60)

    assert (progress.status, progress.completed, progress.failed) == ("completed", 6, 0)
    assert progress.message.startswith(
        "Slowed down: ana@example.org may send 6 model requests per minute"
    )
    sent = sorted(r.received_at for r in fake.requests if r.path.endswith("stream"))
    assert len([at for at in sent if at < frees_up_at - 0.5]) <= 2  # never 7 in a minute
    assert sent[-1] >= frees_up_at - 0.5


def test_owner_limits_cost_a_local_batch_no_query_and_a_hosted_one_a_read_a_second(
    store: Store, fake: FakeElumenta
) -> None:
    url, key = fake.base_url, fake.api_key
    local = plan(store, ["gpt-5-nano", "claude-haiku-4.5"], rows=10, concurrency=2)
    with engine_events(store, "before_cursor_execute") as statements:
        assert job(store, local, url, key).start().wait(60).completed == 20
    assert limit_reads(statements) == 0

    hosted = plan(store, ["gpt-5-nano", "claude-haiku-4.5"], rows=20, concurrency=2)
    owned_by(store, hosted, ANA, daily_budget_tokens=10**6, requests_per_minute=10**4)
    started = time.monotonic()
    with engine_events(store, "before_cursor_execute") as statements:
        running = job(store, hosted, url, key, settings=LOCAL_SETTINGS).start()
        assert running.wait(60).completed == 40
    # Not one per claim (a claim per row: 20): at most one a second.
    assert 1 <= limit_reads(statements) <= 1 + time.monotonic() - started


@pytest.mark.postgres
def test_a_worker_run_batch_pauses_at_its_owners_budget(
    worker_store: Store, worker_database_url: str, fake: FakeElumenta, tmp_path: Path
) -> None:
    fake.script("*", ModelScript(ttft_ms=40))
    batch_id = plan(worker_store, ["gpt-5-nano", "claude-haiku-4.5"], rows=30, concurrency=4)
    owned_by(worker_store, batch_id, ANA, daily_budget_tokens=15)
    settings = worker_settings(worker_database_url)
    log = tmp_path / "worker.log"
    with WorkerProcess(worker_database_url, fake, tmp_path, concurrency=4, log_path=log):
        handle = queue_batch(worker_store, settings, batch_id)
        wait_until(lambda: handle.progress().status == "paused" and not handle.progress().running)
        asked = len(fake.requests)
        shards_ended(worker_store, batch_id)  # the worker left the paused batch
        assert len(fake.requests) == asked  # and sent nothing more before it did
        paused = handle.progress()
    assert not handle.finished  # paused: Resume continues it
    assert paused.message.startswith(
        "Paused: ana@example.org reached the daily budget of 15 billing tokens"
    )
    with worker_store.session() as session, session.begin():
        spent = spend_of(session, ANA).today_tokens
    # Within the budget plus what the requests in flight at once (concurrency 4) may cost.
    assert paused.spent_tokens == spent <= 15 + 4 * 1
    assert paused.completed == len(_generate_requests(fake)) == spent
