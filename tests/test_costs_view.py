"""The Costs page's tables and charts, on the store's real aggregates of seeded rows."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from playground.errors import InvalidRequestError
from playground.presenters import costs as cv
from playground.services.history import CostReport
from playground.store import (
    HistoryFilter,
    Store,
)
from playground.store.rollups import RELATIVE_ERROR
from playground.store.stats import (
    balance_points,
    latency_by_model,
    model_summary,
    prompt_model_costs,
    tokens_by_day,
)
from tests.store_fixtures import T0, seed_comparison, seed_result

NAMES = {"gpt-5": "GPT-5", "gpt-5-nano": "GPT-5 Nano"}


def report_of(store: Store, flt: HistoryFilter | None = None) -> CostReport:
    flt = flt or HistoryFilter()
    with store.session() as session:
        return CostReport(
            summary=model_summary(session, flt),
            latency=latency_by_model(session, flt),
            daily=tokens_by_day(session, flt),
            prompt_costs=prompt_model_costs(session, flt),
            balance=balance_points(session, flt),
        )


@pytest.fixture
def report(store: Store) -> CostReport:
    """Two days of GPT-5 and GPT-5 Nano on one prompt: one failure, one cached answer."""
    with store.session() as session, session.begin():
        for day in range(2):
            comparison = seed_comparison(session, created=T0 + timedelta(days=day), prompt="Same")
            seed_result(
                session,
                comparison,
                "gpt-5",
                content="a" * 400,
                tokens_used=2,
                balance_remaining=100 - 3 * day,
                latency_ms=1000.0 + 1000 * day,
                ttft_ms=200.0 + 200 * day,
            )
            seed_result(
                session,
                comparison,
                "gpt-5-nano",
                content="b" * 1000,
                tokens_used=1,
                balance_remaining=99 - 3 * day,
                latency_ms=500.0,
                ttft_ms=100.0,
            )
        failed = seed_comparison(session, created=T0 + timedelta(days=1), prompt="Other")
        seed_result(session, failed, "gpt-5-nano", status="failed")
        seed_result(session, failed, "gpt-5-nano", cached=True, content="b", tokens_used=0)
    return report_of(store)


def test_default_period_is_the_last_thirty_days_including_today() -> None:
    assert cv.default_period(date(2026, 3, 30)) == (date(2026, 3, 1), date(2026, 3, 30))


def test_period_filter_covers_whole_days_and_rejects_a_reversed_range() -> None:
    flt = cv.period_filter((date(2026, 3, 1), date(2026, 3, 2)))
    assert (flt.since, flt.until) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
    )
    with pytest.raises(InvalidRequestError):
        cv.period_filter((date(2026, 3, 2), date(2026, 3, 1)))


def test_totals(report: CostReport) -> None:
    totals = cv.totals(report)
    assert (totals.tokens_spent, totals.api_calls, totals.cached) == (6, 5, 1)
    assert totals.success_rate == pytest.approx(4 / 5)


def test_model_table_joins_costs_and_timings(report: CostReport) -> None:
    table = cv.model_table(report, NAMES)
    assert list(table.columns) == list(cv.MODEL_TABLE_COLUMNS.values())
    assert list(table["Model"]) == ["GPT-5", "GPT-5 Nano"]  # most tokens first
    gpt5, nano = (table.iloc[i] for i in range(2))
    assert (gpt5["Calls"], gpt5["Billing tokens"], gpt5["Tokens per call"]) == (2, 4, 2.0)
    assert gpt5["Avg latency (ms)"] == pytest.approx(1500.0)
    assert gpt5["p50 latency (ms)"] == pytest.approx(1500.0, rel=RELATIVE_ERROR)
    assert gpt5["p95 latency (ms)"] == pytest.approx(1950.0, rel=RELATIVE_ERROR)
    assert gpt5["p95 TTFT (ms)"] == pytest.approx(390.0, rel=RELATIVE_ERROR)
    assert gpt5["Tokens per 1k chars"] == pytest.approx(4 / 800 * 1000)
    assert gpt5["Success rate"] == 1.0
    assert (nano["Calls"], nano["Cached"], nano["Billing tokens"]) == (3, 1, 2)
    assert nano["Success rate"] == pytest.approx(2 / 3)


def test_a_model_without_completed_answers_has_no_timings() -> None:
    summary = pd.DataFrame(
        {
            "provider": ["demo"],
            "model": ["gpt-5"],
            "results": [1],
            "cached": [0],
            "api_calls": [1],
            "completed": [0],
            "partial": [0],
            "failed": [1],
            "cancelled": [0],
            "interrupted": [0],
            "tokens_spent": [0],
            "output_chars": [0],
        }
    )
    timings = [f"{s}_{m}" for m in ("latency_ms", "ttft_ms") for s in ("avg", "p50", "p95")]
    latency = pd.DataFrame(columns=["provider", "model", "samples", *timings, "avg_chars_per_s"])
    empty = pd.DataFrame()
    report = CostReport(summary, latency, empty, empty, empty)
    row = cv.model_table(report, NAMES).iloc[0]
    assert row["Success rate"] == 0.0
    assert math.isnan(row["p50 latency (ms)"])


def test_labels_name_the_provider_only_when_the_report_has_several(
    report: CostReport,
) -> None:
    frame = pd.DataFrame({"provider": ["elumenta", "elumenta"], "model": ["gpt-5", "x"]})
    assert list(cv.with_labels(frame, report, NAMES)["label"]) == ["GPT-5", "x"]
    summary = pd.concat([report.summary, report.summary.assign(provider="demo")])
    several = replace(report, summary=summary)
    assert list(cv.with_labels(frame, several, NAMES)["label"]) == [
        "GPT-5 · elumenta",
        "x · elumenta",
    ]


def test_every_chart_gives_a_model_the_same_colour(report: CostReport) -> None:
    specs = [
        _spec(cv.tokens_chart(report, NAMES)),
        _spec(cv.cost_latency_chart(report, NAMES)),
        _spec(cv.timing_chart(report, NAMES, "ttft_ms"))["layer"][0],  # type: ignore[index]
    ]
    domains = [spec["encoding"]["color"]["scale"]["domain"] for spec in specs]
    assert domains == [["GPT-5", "GPT-5 Nano"]] * 3


def test_same_prompt_table_has_one_row_per_prompt_and_model_names(report: CostReport) -> None:
    table = cv.same_prompt(report, NAMES)
    assert list(table.columns) == ["Prompt", "GPT-5", "GPT-5 Nano"]
    assert table.iloc[0].tolist() == ["Same", 2.0, 1.0]


def test_same_prompt_table_is_empty_without_shared_prompts() -> None:
    empty = pd.DataFrame()
    assert cv.same_prompt(CostReport(empty, empty, empty, empty, empty), NAMES).empty


def _spec(chart: object) -> dict[str, object]:
    spec = chart.to_dict()  # type: ignore[attr-defined]
    assert isinstance(spec, dict)
    return spec


def _data(spec: dict[str, object]) -> list[dict[str, object]]:
    datasets = spec["datasets"]
    assert isinstance(datasets, dict)
    (rows,) = datasets.values()
    return list(rows)


def test_tokens_chart_stacks_models_per_day(report: CostReport) -> None:
    spec = _spec(cv.tokens_chart(report, NAMES))
    encoding = spec["encoding"]
    assert isinstance(encoding, dict)
    assert encoding["y"]["field"] == "tokens_spent"
    assert encoding["color"]["field"] == "label"
    rows = _data(spec)
    assert sum(int(str(r["tokens_spent"])) for r in rows) == 6
    assert {r["label"] for r in rows} == {"GPT-5", "GPT-5 Nano"}


@pytest.mark.parametrize("measure", ["latency_ms", "ttft_ms"])
def test_timing_chart_layers_p50_bars_and_p95_ticks(report: CostReport, measure: str) -> None:
    spec = _spec(cv.timing_chart(report, NAMES, measure))
    marks = [layer["mark"]["type"] for layer in spec["layer"]]  # type: ignore[attr-defined]
    assert marks == ["bar", "tick"]
    fields = [layer["encoding"]["x"]["field"] for layer in spec["layer"]]  # type: ignore[attr-defined]
    assert fields == [f"p50_{measure}", f"p95_{measure}"]


def test_cost_latency_chart_has_one_point_per_model(report: CostReport) -> None:
    rows = _data(_spec(cv.cost_latency_chart(report, NAMES)))
    points = {r["label"]: (r["avg_latency_ms"], r["tokens_per_call"]) for r in rows}
    assert points == {"GPT-5": (1500.0, 2.0), "GPT-5 Nano": (500.0, pytest.approx(2 / 3))}


def test_cost_latency_chart_axes_start_at_zero(report: CostReport) -> None:
    encoding = _spec(cv.cost_latency_chart(report, NAMES))["encoding"]
    assert isinstance(encoding, dict)
    assert encoding["x"]["scale"]["domainMin"] == 0  # padding alone gave -500 ms
    assert encoding["y"]["scale"]["domainMin"] == 0


def test_outcome_chart_counts_each_finished_status(report: CostReport) -> None:
    rows = _data(_spec(cv.outcome_chart(report, NAMES)))
    counts = {(r["label"], r["status"]): r["n"] for r in rows}
    assert counts == {
        ("GPT-5", "completed"): 2,
        ("GPT-5 Nano", "completed"): 2,
        ("GPT-5 Nano", "failed"): 1,
    }


def test_balance_chart_shows_every_reported_balance_in_utc(report: CostReport) -> None:
    series = cv.balance_series(report.balance)
    assert list(series["balance"]) == [100, 99, 97, 96]
    assert series["time"].dt.tz is None
    assert series["time"].iloc[0] == pd.Timestamp(T0 + timedelta(seconds=2)).tz_localize(None)
    rows = _data(_spec(cv.balance_chart(report)))
    assert len(rows) == 4


def test_many_balances_become_one_per_day() -> None:
    times = pd.date_range("2026-03-01", periods=cv.MAX_BALANCE_POINTS + 1, freq="min", tz="UTC")
    points = pd.DataFrame(
        {
            "finished_utc": times,
            "provider": "elumenta",
            "model": "gpt-5",
            "balance_remaining": range(len(times), 0, -1),
        }
    )
    series = cv.balance_series(points)
    assert len(series) == 2
    assert list(series["balance"]) == [len(times) - 1439, 1]


def test_the_page_says_whether_percentiles_are_exact() -> None:
    one_day = cv.period_filter((date(2026, 3, 1), date(2026, 3, 1)))
    thirty = cv.period_filter(cv.default_period(date(2026, 3, 30)))
    assert cv.timing_precision(one_day) == "p50 and p95 are exact for this period."
    assert "within 1%" in cv.timing_precision(thirty)


def test_same_prompt_rows_are_labelled_by_the_prompt_not_the_system_prompt(store: Store) -> None:
    with store.session() as session, session.begin():
        for prompt in ("Which journal mode?", "How big may a page be?"):
            comparison = seed_comparison(session, prompt=prompt)
            comparison.system_prompt = "You are a terse SQLite expert who answers in one line."
            comparison.prompt_text = f"{comparison.system_prompt}\n{prompt}"
            for model in ("gpt-5", "gpt-5-nano"):
                seed_result(session, comparison, model, tokens_used=1)
    labels = sorted(cv.same_prompt(report_of(store), NAMES)["Prompt"])
    assert labels == [
        "How big may a page be? · system: You are a terse SQLite expert…",
        "Which journal mode? · system: You are a terse SQLite expert…",
    ]


def test_calls_stopped_by_the_user_count_apart_from_the_success_rate(store: Store) -> None:
    with store.session() as session, session.begin():
        comparison = seed_comparison(session)
        seed_result(session, comparison, "gpt-5", tokens_used=2)
        seed_result(session, comparison, "gpt-5", status="failed")
        seed_result(session, comparison, "gpt-5", status="cancelled")
    report = report_of(store)
    totals = cv.totals(report)
    assert (totals.success_rate, totals.stopped) == (pytest.approx(1 / 2), 1)
    (row,) = cv.model_table(report, NAMES).to_dict("records")
    assert row["Stopped by you"] == 1
    assert row["Tokens per call"] == pytest.approx(2 / 2)  # the stopped call is no 0 in it
