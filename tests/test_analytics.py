"""The pure cost-dashboard functions, on hand-made frames."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from playground.presenters import analytics


def _summary(**overrides: list[int]) -> pd.DataFrame:
    base: dict[str, list[object]] = {
        "provider": ["elumenta", "elumenta"],
        "model": ["gpt-5", "idle"],
        "api_calls": [10, 0],
        "completed": [6, 0],
        "partial": [1, 0],
        "failed": [2, 0],
        "cancelled": [1, 0],
        "interrupted": [0, 0],
        "tokens_spent": [20, 0],
        "output_chars": [4000, 0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_model_cost_table_rates_and_unit_costs() -> None:
    table = analytics.model_cost_table(_summary()).set_index("model")
    gpt = table.loc["gpt-5"]
    assert gpt["finished"] == 10
    # The call the user stopped counts in no rate or average: 6 of 9, 3 of 9, 20 / 9.
    assert gpt["stopped"] == 1
    assert gpt["success_rate"] == pytest.approx(6 / 9)
    assert gpt["error_rate"] == pytest.approx(3 / 9)
    assert gpt["tokens_per_call"] == pytest.approx(20 / 9)
    assert gpt["cost_per_1k_chars"] == pytest.approx(5.0)
    idle = table.loc["idle"]
    assert all(math.isnan(idle[c]) for c in ("success_rate", "error_rate", "cost_per_1k_chars"))


def test_cost_per_1k_chars_is_nan_without_output() -> None:
    result = analytics.cost_per_1k_chars(pd.Series([3, 4]), pd.Series([1500, 0]))
    assert result.iloc[0] == pytest.approx(2.0)
    assert math.isnan(result.iloc[1])


def test_same_prompt_table_pivots_and_drops_single_model_prompts() -> None:
    costs = pd.DataFrame(
        {
            "prompt_hash": ["h1", "h1", "h2"],
            "prompt_preview": ["Hi", "Hi", "Solo"],
            "provider": ["elumenta"] * 3,
            "model": ["gpt-5", "gpt-5-nano", "gpt-5"],
            "runs": [2, 4, 1],
            "tokens_spent": [4, 4, 2],
            "output_chars": [1000, 2000, 10],
            "avg_latency_ms": [1.0, 2.0, 3.0],
        }
    )
    table = analytics.same_prompt_table(costs)
    assert table[["prompt_preview", "gpt-5", "gpt-5-nano"]].values.tolist() == [["Hi", 2.0, 1.0]]
    per_1k = analytics.same_prompt_table(costs, value="cost_per_1k_chars", min_models=1)
    assert per_1k.set_index("prompt_preview").loc["Hi", "gpt-5-nano"] == pytest.approx(2.0)
    assert len(per_1k) == 2


def test_daily_balance_keeps_the_last_point_of_each_day() -> None:
    points = pd.DataFrame(
        {
            "finished_utc": pd.to_datetime(
                [
                    "2026-03-02T08:00:00Z",
                    "2026-03-01T10:00:00Z",
                    "2026-03-01T23:59:00Z",
                    "2026-03-01T11:00:00Z",
                ],
                utc=True,
            ),
            "provider": ["elumenta", "elumenta", "elumenta", "other"],
            "model": ["gpt-5"] * 4,
            "balance_remaining": [80, 100, 90, 7],
        }
    )
    daily = analytics.daily_balance(points)
    assert daily["day"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-03-01",
        "2026-03-01",
        "2026-03-02",
    ]
    assert daily[["provider", "balance_remaining"]].values.tolist() == [
        ["elumenta", 90],
        ["other", 7],
        ["elumenta", 80],
    ]
    assert analytics.daily_balance(points.iloc[:0]).empty
