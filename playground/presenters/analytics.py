"""Cost-dashboard arithmetic: DataFrame in, DataFrame out, no I/O.

The inputs are the frames :mod:`playground.store.stats` returns (sums, counts and
percentiles already aggregated in SQL); these functions derive rates, unit costs and
tables from them.
"""

from __future__ import annotations

import pandas as pd

from playground.store.models import FINISHED_STATUSES

ERROR_STATUSES: tuple[str, ...] = ("failed", "partial")


def cost_per_1k_chars(tokens: pd.Series, chars: pd.Series) -> pd.Series:
    """Billing tokens per 1,000 output characters; NaN where no characters were produced."""
    chars_float = chars.astype("float64")
    return tokens.astype("float64") * 1000.0 / chars_float.where(chars_float > 0)


def model_cost_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per-model figures with rates and unit costs added.

    ``summary`` has per-model counts (``api_calls`` and one column per finished status),
    ``tokens_spent`` and ``output_chars``. Adds ``finished``, ``stopped`` (cancelled by the
    user), ``success_rate`` (completed / finished calls not stopped), ``error_rate`` ((failed
    + partial) / the same), ``tokens_per_call`` (over calls not stopped) and
    ``cost_per_1k_chars``. Rates are NaN for a model with no such call.
    """
    table = summary.copy()
    finished = table[list(FINISHED_STATUSES)].sum(axis=1)
    table["finished"] = finished
    # A call the user stopped says nothing about the model: it counts in no rate or average.
    table["stopped"] = table["cancelled"]
    ended = (finished - table["cancelled"]).astype("float64")
    denominator = ended.where(ended > 0)
    table["success_rate"] = table["completed"] / denominator
    table["error_rate"] = table[list(ERROR_STATUSES)].sum(axis=1) / denominator
    calls = (table["api_calls"] - table["cancelled"]).astype("float64")
    table["tokens_per_call"] = table["tokens_spent"] / calls.where(calls > 0)
    table["cost_per_1k_chars"] = cost_per_1k_chars(table["tokens_spent"], table["output_chars"])
    return table


def same_prompt_table(
    prompt_costs: pd.DataFrame, *, value: str = "tokens_per_run", min_models: int = 2
) -> pd.DataFrame:
    """One row per prompt, one column per model, cells = ``value`` (default tokens per run).

    ``prompt_costs`` is :func:`playground.store.stats.prompt_model_costs`' frame; prompts
    run on fewer than ``min_models`` models are dropped.
    """
    frame = prompt_costs.copy()
    runs = frame["runs"].astype("float64")
    frame["tokens_per_run"] = frame["tokens_spent"] / runs.where(runs > 0)
    frame["cost_per_1k_chars"] = cost_per_1k_chars(frame["tokens_spent"], frame["output_chars"])
    model_counts = frame.groupby("prompt_hash")["model"].transform("nunique")
    frame = frame[model_counts >= min_models]
    table = frame.pivot_table(
        index=["prompt_hash", "prompt_preview"], columns="model", values=value, aggfunc="sum"
    )
    table.columns.name = None
    return table.reset_index()


def daily_balance(points: pd.DataFrame) -> pd.DataFrame:
    """The last balance each provider reported on each UTC day (``day, provider, balance``)."""
    if points.empty:
        return pd.DataFrame(columns=["day", "provider", "balance_remaining"])
    frame = points.sort_values("finished_utc", kind="stable")
    frame = frame.assign(day=frame["finished_utc"].dt.tz_convert("UTC").dt.normalize())
    last = frame.groupby(["day", "provider"]).tail(1).sort_values(["day", "provider"])
    return last[["day", "provider", "balance_remaining"]].reset_index(drop=True)
