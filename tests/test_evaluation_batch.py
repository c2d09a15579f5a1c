"""Batch runs against the fake server: counts with 429s and failures, budget, cancel, resume."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import sqlalchemy as sa

from playground.access.spending import spend_of
from playground.evaluation.assertions import AssertionSpec
from playground.store import Store
from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.eval_repository import batch_cells, set_batch_budget
from playground.store.models import Comparison, Result
from tests.evaluation_fixtures import job, plan
from tests.fake_elumenta import FakeElumenta, ModelScript


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
    running = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key)
    running.pause()
    running.start()
    time.sleep(0.4)
    assert running.progress().status == "paused"
    assert not _generate_requests(fake_elumenta)
    running.resume()
    assert running.wait(30).completed == 6


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
    # The quota is only learnt from answers, so how many start together at first depends
    # on timing; by the last requests the batch must be sending one at a time, and one
    # request takes at least the scripted 40 ms, so consecutive starts are that far apart.
    starts = sorted(r.received_at for r in fake_elumenta.requests if r.path.endswith("stream"))
    late_gaps = [b - a for a, b in itertools.pairwise(starts[-3:])]
    assert min(late_gaps) >= 0.035


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
