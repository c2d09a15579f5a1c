"""The Costs page through AppTest: empty state, the figures equal the history's, charts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from playground.presenters import costs as cv
from playground.services import runtime
from playground.store.stats import latency_by_model, model_summary
from tests.app_harness import open_page, run_compare, texts

NAMES = {"gpt-5-nano": "GPT-5 Nano", "gpt-5": "GPT-5", "claude-haiku-4.5": "Claude Haiku 4.5"}


def page_table(at_frames: list[pd.DataFrame], first_column: str) -> pd.DataFrame:
    return next(frame for frame in at_frames if frame.columns[0] == first_column)


def test_no_history_yet_is_a_friendly_message(app_env: Path) -> None:
    at = open_page("pages/costs.py")
    assert not at.exception
    assert any(t.startswith("No runs in this period yet.") for t in texts(at, "info"))
    assert not at.dataframe


def test_the_page_shows_exactly_what_the_history_database_holds(app_env: Path) -> None:
    at = run_compare(open_page(), "Pick a database", ["demo:gpt-5-nano", "demo:gpt-5"])
    run_compare(at, "Pick a database", ["demo:gpt-5-nano", "demo:claude-haiku-4.5"])
    run_compare(at, "Name a colour", ["demo:gpt-5"])
    at.switch_page("pages/costs.py").run()
    assert not at.exception

    flt = cv.period_filter(cv.default_period(datetime.now(UTC).date()))
    with runtime.get_store().session() as session:
        summary = model_summary(session, flt).set_index("model")
        latency = latency_by_model(session, flt).set_index("model")
    frames = [frame.value for frame in at.dataframe]
    shown = page_table(frames, "Model").set_index("Model")

    assert sorted(shown.index) == sorted(NAMES.values())
    for slug, name in NAMES.items():
        row = shown.loc[name]
        assert row["Calls"] == summary.loc[slug, "api_calls"]
        assert row["Billing tokens"] == summary.loc[slug, "tokens_spent"]
        assert row["Success rate"] == 1.0
        for column, figure in [
            ("Avg latency (ms)", "avg_latency_ms"),
            ("p50 latency (ms)", "p50_latency_ms"),
            ("p95 latency (ms)", "p95_latency_ms"),
            ("Avg TTFT (ms)", "avg_ttft_ms"),
            ("p95 TTFT (ms)", "p95_ttft_ms"),
        ]:
            assert row[column] == pytest.approx(latency.loc[slug, figure])
        chars = summary.loc[slug, "output_chars"]
        assert row["Tokens per 1k chars"] == pytest.approx(
            summary.loc[slug, "tokens_spent"] * 1000 / chars
        )
    assert shown.loc["GPT-5 Nano", "Calls"] == 2
    assert shown.loc["GPT-5", "Billing tokens"] == 4

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Billing tokens spent"] == str(summary["tokens_spent"].sum()) == "7"
    assert metrics["API calls"] == "5"
    assert metrics["Success rate"] == "100%"

    same_prompt = page_table(frames, "Prompt")
    assert same_prompt.to_dict("records") == [
        {"Prompt": "Pick a database", "Claude Haiku 4.5": 1.0, "GPT-5": 2.0, "GPT-5 Nano": 1.0}
    ]


def test_every_chart_is_drawn(app_env: Path) -> None:
    at = run_compare(open_page(), "Hello", ["demo:gpt-5-nano", "demo:gpt-5"])
    at.switch_page("pages/costs.py").run()
    specs = [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]
    titles = [spec["title"] for spec in specs]
    assert titles == [
        "Billing tokens per day",
        "Success and error rate",
        "Latency: p50 (bar) and p95 (tick), ms",
        "Time to first token: p50 (bar) and p95 (tick), ms",
        "Cost against latency",
        "Balance over time",
    ]


def test_a_period_without_runs_and_a_reversed_period_are_explained(app_env: Path) -> None:
    at = run_compare(open_page(), "Hello", ["demo:gpt-5-nano"])
    at.switch_page("pages/costs.py").run()
    at.date_input(key="costs.period").set_value((date(2020, 1, 1), date(2020, 1, 31))).run()
    assert any(t.startswith("No runs in this period yet.") for t in texts(at, "info"))

    at.date_input(key="costs.period").set_value((date(2026, 3, 5), date(2026, 3, 1))).run()
    assert not at.exception
    assert texts(at, "error") == ["The start date 2026-03-05 is after the end date 2026-03-01."]
