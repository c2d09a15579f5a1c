"""Cost-dashboard aggregates checked against hand-computed figures on both backends."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from playground.presenters import analytics
from playground.principal import Principal
from playground.store import (
    HistoryFilter,
    Store,
)
from playground.store.rollups import RELATIVE_ERROR
from playground.store.stats import (
    balance_points,
    exact_timings,
    latency_by_model,
    model_summary,
    prompt_model_costs,
    tokens_by_day,
)
from tests.store_fixtures import T0, results_plan, seed_comparison, seed_result, statements_of

DAY2 = T0 + timedelta(hours=21)  # 2026-03-02 09:00 UTC


@pytest.fixture
def seeded(store: Store) -> Store:
    """Three comparisons over two days; hand-computed figures are in each test.

    c1 (day 1, prompt P1): gpt-5 completed 2 tok 1000/100 ms 500 ch bal 98;
                           haiku completed 1 tok 3000/300 ms 250 ch bal 97
    c2 (day 1 +6 h, P1):   gpt-5 completed 2 tok 2000/200 ms 300 ch bal 95; haiku failed
    c3 (day 2, P2):        gpt-5 completed 2 tok 4000/400 ms 200 ch bal 93;
                           gpt-5 cached (2 tok, 10/1 ms, bal 50); gpt-5 partial 2 tok 5000/500 ms
                           100 ch bal 91
    """
    with store.session() as s, s.begin():
        c1 = seed_comparison(s, created=T0, prompt="P1")
        seed_result(
            s,
            c1,
            "gpt-5",
            tokens_used=2,
            latency_ms=1000,
            ttft_ms=100,
            content="x" * 500,
            balance_remaining=98,
        )
        seed_result(
            s,
            c1,
            "claude-haiku-4.5",
            tokens_used=1,
            latency_ms=3000,
            ttft_ms=300,
            content="y" * 250,
            balance_remaining=97,
        )
        c2 = seed_comparison(s, created=T0 + timedelta(hours=6), prompt="P1")
        seed_result(
            s,
            c2,
            "gpt-5",
            tokens_used=2,
            latency_ms=2000,
            ttft_ms=200,
            content="x" * 300,
            balance_remaining=95,
        )
        seed_result(s, c2, "claude-haiku-4.5", status="failed")
        c3 = seed_comparison(s, created=DAY2, prompt="P2")
        seed_result(
            s,
            c3,
            "gpt-5",
            tokens_used=2,
            latency_ms=4000,
            ttft_ms=400,
            content="x" * 200,
            balance_remaining=93,
        )
        seed_result(
            s,
            c3,
            "gpt-5",
            tokens_used=2,
            latency_ms=10,
            ttft_ms=1,
            content="x" * 200,
            balance_remaining=50,
            cached=True,
        )
        seed_result(
            s,
            c3,
            "gpt-5",
            status="partial",
            tokens_used=2,
            latency_ms=5000,
            ttft_ms=500,
            content="x" * 100,
            balance_remaining=91,
        )
    return store


def test_model_summary_counts_and_sums_exclude_cached(seeded: Store) -> None:
    with seeded.session() as session:
        summary = model_summary(session).set_index("model")
    gpt, haiku = summary.loc["gpt-5"], summary.loc["claude-haiku-4.5"]
    assert (gpt["results"], gpt["cached"], gpt["api_calls"]) == (5, 1, 4)
    assert (gpt["completed"], gpt["partial"], gpt["failed"]) == (3, 1, 0)
    assert (gpt["tokens_spent"], gpt["output_chars"]) == (8, 1100)
    assert (haiku["results"], haiku["api_calls"], haiku["completed"], haiku["failed"]) == (
        2,
        2,
        1,
        1,
    )
    assert (haiku["tokens_spent"], haiku["output_chars"]) == (1, 250)

    table = analytics.model_cost_table(summary.reset_index()).set_index("model")
    assert table.loc["gpt-5", "success_rate"] == pytest.approx(0.75)
    assert table.loc["gpt-5", "error_rate"] == pytest.approx(0.25)
    assert table.loc["gpt-5", "tokens_per_call"] == pytest.approx(2.0)
    assert table.loc["gpt-5", "cost_per_1k_chars"] == pytest.approx(8000 / 1100)
    assert table.loc["claude-haiku-4.5", "success_rate"] == pytest.approx(0.5)
    assert table.loc["claude-haiku-4.5", "cost_per_1k_chars"] == pytest.approx(4.0)


def test_model_summary_respects_the_date_range(seeded: Store) -> None:
    with seeded.session() as session:
        summary = model_summary(session, HistoryFilter(since=DAY2))
    assert summary[["model", "api_calls", "tokens_spent"]].values.tolist() == [["gpt-5", 2, 4]]


def test_latency_percentiles_use_completed_non_cached_answers(seeded: Store) -> None:
    # Over all time the percentiles come from the rollups' timing bins.
    with seeded.session() as session:
        latency = latency_by_model(session).set_index("model")
    within = {"rel": RELATIVE_ERROR}
    gpt = latency.loc["gpt-5"]
    assert gpt["samples"] == 3
    assert gpt["avg_latency_ms"] == pytest.approx(7000 / 3)
    assert gpt["p50_latency_ms"] == pytest.approx(2000, **within)
    assert gpt["p95_latency_ms"] == pytest.approx(2000 + 0.9 * 2000, **within)
    assert gpt["avg_ttft_ms"] == pytest.approx(700 / 3)
    assert gpt["p50_ttft_ms"] == pytest.approx(200, **within)
    assert gpt["p95_ttft_ms"] == pytest.approx(380, **within)
    haiku = latency.loc["claude-haiku-4.5"]
    assert haiku["samples"] == 1
    assert haiku["p50_latency_ms"] == pytest.approx(3000, **within)
    assert haiku["p95_ttft_ms"] == pytest.approx(300, **within)


def test_one_day_percentiles_are_exact(seeded: Store) -> None:
    day = HistoryFilter(since=T0.replace(hour=0), until=T0.replace(hour=0) + timedelta(days=1))
    assert exact_timings(day) and not exact_timings(HistoryFilter())
    with seeded.session() as session:
        gpt = latency_by_model(session, day).set_index("model").loc["gpt-5"]
    assert (gpt["samples"], gpt["p50_latency_ms"], gpt["p95_latency_ms"]) == (2, 1500, 1950)


def test_tokens_by_day(seeded: Store) -> None:
    with seeded.session() as session:
        daily = tokens_by_day(session)
    assert daily["day"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-03-01",
        "2026-03-01",
        "2026-03-02",
    ]
    assert daily[["model", "tokens_spent", "api_calls"]].values.tolist() == [
        ["claude-haiku-4.5", 1, 2],
        ["gpt-5", 4, 2],
        ["gpt-5", 4, 2],
    ]


def test_same_prompt_different_models_table(seeded: Store) -> None:
    with seeded.session() as session:
        costs = prompt_model_costs(session)
    assert costs[
        ["prompt_preview", "model", "runs", "tokens_spent", "output_chars"]
    ].values.tolist() == [
        ["P1", "claude-haiku-4.5", 2, 1, 250],
        ["P1", "gpt-5", 2, 4, 800],
    ]
    assert costs["avg_latency_ms"].tolist() == [3000, 1500]
    table = analytics.same_prompt_table(costs)
    assert table[["prompt_preview", "claude-haiku-4.5", "gpt-5"]].values.tolist() == [
        ["P1", 0.5, 2.0]
    ]


def test_balance_over_time(seeded: Store) -> None:
    with seeded.session() as session:
        points = balance_points(session)
    assert points["balance_remaining"].tolist() == [98, 97, 95, 93, 91]
    daily = analytics.daily_balance(points)
    assert daily["day"].dt.strftime("%Y-%m-%d").tolist() == ["2026-03-01", "2026-03-02"]
    assert daily["balance_remaining"].tolist() == [95, 91]


def test_a_long_period_of_balances_gives_the_last_of_each_day(seeded: Store) -> None:
    with seeded.session() as s, s.begin():
        other = seed_comparison(s, created=DAY2 + timedelta(hours=1), prompt="P3")
        seed_result(s, other, "gpt-5", provider="other", balance_remaining=7)
        seed_result(s, other, "gpt-5", provider="other", status="failed")
    with seeded.session() as session:
        every = balance_points(session, limit=6)
        daily = balance_points(session, limit=5)
        tagged = balance_points(session, HistoryFilter(tag="none"), limit=5)
    assert every["balance_remaining"].tolist() == [98, 97, 95, 93, 91, 7]
    # Over the limit: each provider's last balance of each day, still in time order.
    assert daily[["provider", "balance_remaining"]].values.tolist() == [
        ["elumenta", 95],
        ["elumenta", 91],
        ["other", 7],
    ]
    assert daily["finished_utc"].is_monotonic_increasing
    # A filter the rollups can't answer reads every point (the chart thins them).
    assert tagged.empty


def test_the_last_balance_of_a_day_is_one_the_viewer_may_see(store: Store) -> None:
    ana, bob = (
        Principal(user_id=i, subject=name, display_name=name, role="member")
        for i, name in ((1, "ana"), (2, "bob"))
    )
    with store.session() as s, s.begin():
        for hour, owner, balance in (
            (1, "ana", 10),
            (2, "bob", 900),
            (3, "ana", 9),
            (4, "bob", 800),
        ):
            comparison = seed_comparison(
                s, created=T0 + timedelta(hours=hour), prompt=f"{owner}{hour}", owner=owner
            )
            seed_result(s, comparison, "gpt-5", balance_remaining=balance)
    with store.session() as session:
        seen = {
            who.subject: balance_points(session, HistoryFilter(viewer=who), limit=1)[
                "balance_remaining"
            ].tolist()
            for who in (ana, bob)
        }
    assert seen == {"ana": [9], "bob": [800]}


def test_recent_prompts_are_found_however_few_answers_are_read_at_a_time(
    seeded: Store,
) -> None:
    with seeded.session() as s, s.begin():
        for hours, prompt in ((1, "P3"), (2, "P4"), (3, "P5")):
            newer = seed_comparison(s, created=DAY2 + timedelta(hours=hours), prompt=prompt)
            seed_result(s, newer, "gpt-5", tokens_used=3)
            if prompt == "P4":
                seed_result(s, newer, "deepseek-v3", tokens_used=1)
    with seeded.session() as session:
        for walk in (1, 2, 500):
            one = prompt_model_costs(session, prompts=1, walk=walk)
            two = prompt_model_costs(session, prompts=2, walk=walk)
            assert sorted(set(one["prompt_preview"])) == ["P4"], walk
            # P5 and P3 (one model each) and P2 (gpt-5 only) are passed over.
            assert sorted(set(two["prompt_preview"])) == ["P1", "P4"], walk
            assert two["runs"].tolist() == [2, 2, 1, 1], walk


# SQLite only: PostgreSQL picks its plan from statistics, which a few rows don't represent.
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_costs_walks_read_the_time_order_and_the_balance_index(seeded: Store) -> None:
    with statements_of(seeded) as seen, seeded.session() as session:
        balance_points(session, limit=1)
        prompt_model_costs(session, walk=2)
    plans = [results_plan(seeded, statement, parameters) for statement, parameters in seen]
    assert all("ix_results_stats" not in plan for plan in plans), "\n\n".join(plans)
    per_day = "INDEX ix_results_balance (provider=? AND created_utc>? AND created_utc<?)"
    assert any(per_day in plan for plan in plans)
    assert any("INDEX ix_results_created" in plan for plan in plans)


def test_aggregates_of_an_empty_history_are_empty_frames(store: Store) -> None:
    with store.session() as session:
        frames = [
            model_summary(session),
            tokens_by_day(session),
            latency_by_model(session),
            prompt_model_costs(session),
            balance_points(session),
        ]
    assert all(isinstance(f, pd.DataFrame) and f.empty for f in frames)
