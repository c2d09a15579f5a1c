"""Pure helpers behind the Costs page: the report's tables and its Altair charts.

The figures come from :mod:`playground.store.stats` (aggregated in SQL) and
:mod:`playground.presenters.analytics` (rates and unit costs); this module only labels, joins and
draws them. Nothing here does I/O or knows Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import altair as alt
import pandas as pd

from playground.presenters.analytics import daily_balance, model_cost_table, same_prompt_table
from playground.presenters.history import DateRange, date_bounds
from playground.principal import Principal
from playground.results import STATUS_STYLES
from playground.services.history import CostReport
from playground.store import HistoryFilter
from playground.store.models import FINISHED_STATUSES
from playground.store.rollups import RELATIVE_ERROR
from playground.store.stats import BALANCE_POINTS, EXACT_TIMING_DAYS, exact_timings

DEFAULT_DAYS = 30
MAX_BALANCE_POINTS = BALANCE_POINTS
"""Above this many reported balances the chart shows the last one of each day instead."""
CHART_HEIGHT = 280
STATUS_COLOURS: dict[str, str] = {
    status: STATUS_STYLES[status].colour for status in FINISHED_STATUSES
}
MODEL_TABLE_COLUMNS: dict[str, str] = {
    "label": "Model",
    "provider": "Provider",
    "api_calls": "Calls",
    "cached": "Cached",
    "tokens_spent": "Billing tokens",
    "tokens_per_call": "Tokens per call",
    "avg_latency_ms": "Avg latency (ms)",
    "p50_latency_ms": "p50 latency (ms)",
    "p95_latency_ms": "p95 latency (ms)",
    "avg_ttft_ms": "Avg TTFT (ms)",
    "p50_ttft_ms": "p50 TTFT (ms)",
    "p95_ttft_ms": "p95 TTFT (ms)",
    "success_rate": "Success rate",
    "stopped": "Stopped by you",
    "cost_per_1k_chars": "Tokens per 1k chars",
}


@dataclass(frozen=True)
class Totals:
    """The headline figures of a period."""

    tokens_spent: int
    api_calls: int
    cached: int
    success_rate: float | None
    """Completed / finished API calls the user did not stop; ``None`` when there are none."""
    stopped: int = 0
    """API calls the user stopped (counted in no rate)."""


def default_period(today: date, days: int = DEFAULT_DAYS) -> tuple[date, date]:
    """The last ``days`` days up to and including ``today``."""
    return today - timedelta(days=days - 1), today


def period_filter(dates: DateRange, viewer: Principal | None = None) -> HistoryFilter:
    """Results created on the chosen UTC days; raises ``InvalidRequestError`` if reversed.

    ``viewer`` (hosted mode) limits them to the comparisons that user may see.
    """
    since, until = date_bounds(dates)
    return HistoryFilter(since=since, until=until, viewer=viewer)


def timing_precision(flt: HistoryFilter) -> str:
    """What the p50/p95 figures for ``flt`` are: exact, or read from the usage rollups."""
    if exact_timings(flt):
        return "p50 and p95 are exact for this period."
    return (
        f"p50 and p95 come from the daily usage rollups, within {RELATIVE_ERROR:.0%}; "
        f"pick {EXACT_TIMING_DAYS} day for exact figures. Counts and tokens are always exact."
    )


def totals(report: CostReport) -> Totals:
    """Tokens spent, API calls, cached answers and the success rate over every model."""
    summary = report.summary
    stopped = int(summary["cancelled"].sum())
    ended = int(summary[list(FINISHED_STATUSES)].to_numpy().sum()) - stopped
    completed = int(summary["completed"].sum())
    return Totals(
        tokens_spent=int(summary["tokens_spent"].sum()),
        api_calls=int(summary["api_calls"].sum()),
        cached=int(summary["cached"].sum()),
        success_rate=completed / ended if ended else None,
        stopped=stopped,
    )


def with_labels(frame: pd.DataFrame, report: CostReport, names: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with a ``label`` column naming each row's model the same way in every table
    and chart: the model's name, plus the provider when the report has several providers
    (``GPT-5 · demo``), so two providers' models never merge."""
    several = report.summary["provider"].nunique() > 1
    labelled = frame.copy()
    labelled["label"] = [
        f"{names.get(model, model)} · {provider}" if several else names.get(model, model)
        for provider, model in zip(labelled["provider"], labelled["model"], strict=True)
    ]
    return labelled


def model_colour(report: CostReport, names: Mapping[str, str], **kwargs: Any) -> alt.Color:
    """The colour channel for models: one fixed colour per model across all charts."""
    domain = sorted(set(with_labels(report.summary, report, names)["label"]))
    return alt.Color("label:N", scale=alt.Scale(domain=domain), **kwargs)


def model_table(report: CostReport, names: Mapping[str, str]) -> pd.DataFrame:
    """Per model: calls, tokens, latency and TTFT (avg, p50, p95), success rate and cost per
    1,000 output characters, headed by :data:`MODEL_TABLE_COLUMNS`, most tokens first."""
    costs = model_cost_table(report.summary)
    latency = report.latency.drop(columns=["samples", "avg_chars_per_s"])
    table = with_labels(costs.merge(latency, on=["provider", "model"], how="left"), report, names)
    table = table.sort_values(["tokens_spent", "label"], ascending=[False, True])
    return table[list(MODEL_TABLE_COLUMNS)].rename(columns=MODEL_TABLE_COLUMNS)


def same_prompt(report: CostReport, names: Mapping[str, str]) -> pd.DataFrame:
    """Billing tokens per run of each prompt on each model: one row per prompt."""
    if report.prompt_costs.empty:
        return pd.DataFrame(columns=["Prompt"])
    table = same_prompt_table(report.prompt_costs).drop(columns=["prompt_hash"])
    return table.rename(columns={"prompt_preview": "Prompt", **names})


def tokens_chart(report: CostReport, names: Mapping[str, str]) -> alt.Chart:
    """Billing tokens spent per UTC day, stacked by model."""
    data = with_labels(report.daily, report, names)
    chart: alt.Chart = (
        alt.Chart(data, title="Billing tokens per day")
        .mark_bar()
        .encode(
            # Ordinal days: one bar per day that had runs, labelled like "Mar 01".
            x=alt.X(
                "yearmonthdate(day):O",
                title="Day (UTC)",
                axis=alt.Axis(format="%b %d", labelAngle=0),
            ),
            y=alt.Y("sum(tokens_spent):Q", title="Billing tokens"),
            color=model_colour(report, names, title="Model"),
            tooltip=[
                alt.Tooltip("yearmonthdate(day):T", title="Day"),
                alt.Tooltip("label:N", title="Model"),
                alt.Tooltip("sum(tokens_spent):Q", title="Billing tokens"),
                alt.Tooltip("sum(api_calls):Q", title="Calls"),
            ],
        )
        .properties(height=CHART_HEIGHT)
    )
    return chart


def timing_chart(report: CostReport, names: Mapping[str, str], measure: str) -> alt.LayerChart:
    """p50 (bar) and p95 (tick) of ``measure`` (``latency_ms`` or ``ttft_ms``) per model."""
    title = {"latency_ms": "Latency", "ttft_ms": "Time to first token"}[measure]
    data = with_labels(report.latency, report, names)
    y = alt.Y("label:N", title=None, sort="x")
    tooltip = [
        alt.Tooltip("label:N", title="Model"),
        alt.Tooltip(f"p50_{measure}:Q", title="p50 (ms)", format=",.0f"),
        alt.Tooltip(f"p95_{measure}:Q", title="p95 (ms)", format=",.0f"),
        alt.Tooltip("samples:Q", title="Answers"),
    ]
    base = alt.Chart(data)
    p50 = base.mark_bar(opacity=0.8).encode(
        x=alt.X(f"p50_{measure}:Q", title="ms"), y=y, color=model_colour(report, names, legend=None)
    )
    p95 = base.mark_tick(thickness=3, size=18, color="#111827").encode(
        x=f"p95_{measure}:Q", y=y, tooltip=tooltip
    )
    return alt.LayerChart(
        layer=[p50.encode(tooltip=tooltip), p95],
        title=f"{title}: p50 (bar) and p95 (tick), ms",
        height=CHART_HEIGHT,
    )


def cost_latency_chart(report: CostReport, names: Mapping[str, str]) -> alt.Chart:
    """One point per model: average latency against billing tokens per call."""
    costs = model_cost_table(report.summary)
    joined = costs.merge(report.latency, on=["provider", "model"], how="inner")
    data = with_labels(joined, report, names).dropna(subset=["avg_latency_ms", "tokens_per_call"])
    chart: alt.Chart = (
        alt.Chart(data, title="Cost against latency")
        .mark_circle(opacity=0.85)
        .encode(
            # Padding keeps big points off the edges when every model costs the same;
            # domainMin (applied after it) keeps either axis from going below 0.
            x=alt.X(
                "avg_latency_ms:Q",
                title="Average latency (ms)",
                scale=alt.Scale(padding=20, domainMin=0),
            ),
            y=alt.Y(
                "tokens_per_call:Q",
                title="Billing tokens per call",
                scale=alt.Scale(padding=20, domainMin=0),
            ),
            color=model_colour(report, names, title="Model"),
            size=alt.Size("api_calls:Q", scale=alt.Scale(range=[80, 600]), legend=None),
            tooltip=[
                alt.Tooltip("label:N", title="Model"),
                alt.Tooltip("avg_latency_ms:Q", title="Avg latency (ms)", format=",.0f"),
                alt.Tooltip("tokens_per_call:Q", title="Tokens per call", format=".2f"),
                alt.Tooltip("api_calls:Q", title="Calls"),
            ],
        )
        .properties(height=CHART_HEIGHT)
    )
    return chart


def outcome_chart(report: CostReport, names: Mapping[str, str]) -> alt.Chart:
    """Each model's finished API calls split by outcome, as shares of 100 %."""
    data = with_labels(report.summary, report, names)
    long = data.melt(
        id_vars=["label"], value_vars=list(FINISHED_STATUSES), var_name="status", value_name="n"
    )
    long = long[long["n"] > 0]
    colours = alt.Scale(domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values()))
    chart: alt.Chart = (
        alt.Chart(long, title="Success and error rate")
        .mark_bar()
        .encode(
            x=alt.X(
                "sum(n):Q", stack="normalize", title="Share of calls", axis=alt.Axis(format="%")
            ),
            y=alt.Y("label:N", title=None),
            color=alt.Color("status:N", title="Outcome", scale=colours),
            order=alt.Order("status_order:Q"),
            tooltip=[
                alt.Tooltip("label:N", title="Model"),
                alt.Tooltip("status:N", title="Outcome"),
                alt.Tooltip("sum(n):Q", title="Calls"),
            ],
        )
        .transform_calculate(status_order=f"indexof({list(STATUS_COLOURS)!r}, datum.status)")
        .properties(height=CHART_HEIGHT)
    )
    return chart


def balance_series(points: pd.DataFrame) -> pd.DataFrame:
    """``time, provider, balance``: every reported balance, or the last of each day when
    there are more than :data:`MAX_BALANCE_POINTS`. Times are naive UTC, so a chart shows
    them as UTC wall-clock times whatever the browser's time zone."""
    if len(points) > MAX_BALANCE_POINTS:
        daily = daily_balance(points)
        times, providers, balances = daily["day"], daily["provider"], daily["balance_remaining"]
    else:
        times = points["finished_utc"]
        providers, balances = points["provider"], points["balance_remaining"]
    return pd.DataFrame(
        {
            "time": pd.to_datetime(times, utc=True).dt.tz_localize(None),
            "provider": providers,
            "balance": balances,
        }
    )


def balance_chart(report: CostReport) -> alt.Chart:
    """The balance each provider reported, over time (a step line per provider)."""
    chart: alt.Chart = (
        alt.Chart(balance_series(report.balance), title="Balance over time")
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("time:T", title="Time (UTC)", axis=alt.Axis(format="%b %d %H:%M")),
            y=alt.Y("balance:Q", title="Billing tokens left", scale=alt.Scale(zero=False)),
            color=alt.Color("provider:N", title="Provider"),
            tooltip=[
                alt.Tooltip("time:T", title="Time (UTC)", format="%Y-%m-%d %H:%M:%S"),
                alt.Tooltip("provider:N", title="Provider"),
                alt.Tooltip("balance:Q", title="Balance"),
            ],
        )
        .properties(height=CHART_HEIGHT)
    )
    return chart
