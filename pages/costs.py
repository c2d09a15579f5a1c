"""Costs: billing tokens, speed and outcomes per model over a period, read from the history."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.presenters import costs as cv
from playground.services import history as history_service
from playground.services import runtime
from ui.auth import current_principal

MS = st.column_config.NumberColumn(format="%.0f")
TWO_DECIMALS = st.column_config.NumberColumn(format="%.2f")

st.title("Costs")
principal = current_principal()
if principal is not None:
    st.caption("Your runs and the ones shared with you in your workspaces.")
today = datetime.now(UTC).date()
dates = st.date_input(
    "Period (UTC days)",
    value=cv.default_period(today),
    key="costs.period",
    persist_state="session",
    format="YYYY-MM-DD",
)
try:
    report = history_service.cost_report(cv.period_filter(dates, principal))
except PlaygroundError as exc:
    st.error(user_message(exc), icon=":material/error:")
    st.stop()
if report.empty:
    st.info(
        "No runs in this period yet. Run a comparison on the Compare page and its cost, "
        "speed and outcome show up here.",
        icon=":material/payments:",
    )
    st.page_link("pages/compare.py", label="Go to Compare", icon=":material/compare_arrows:")
    st.stop()

names = {model.slug: model.name for model in runtime.get_catalog()}
totals = cv.totals(report)
with st.container(horizontal=True):
    st.metric("Billing tokens spent", f"{totals.tokens_spent:,}", border=True)
    st.metric("API calls", f"{totals.api_calls:,}", border=True)
    rate = "—" if totals.success_rate is None else f"{totals.success_rate:.0%}"
    st.metric(
        "Success rate",
        rate,
        border=True,
        help="Completed answers among the calls that ended on their own: the ones you "
        "stopped count apart.",
    )
    st.metric("Stopped by you", f"{totals.stopped:,}", border=True)
    st.metric("Cached answers (free)", f"{totals.cached:,}", border=True)

tokens_col, outcome_col = st.columns(2)
tokens_col.altair_chart(cv.tokens_chart(report, names))
outcome_col.altair_chart(cv.outcome_chart(report, names))
if report.latency.empty:
    st.caption("No completed answers in this period: nothing to time.")
else:
    latency_col, ttft_col = st.columns(2)
    latency_col.altair_chart(cv.timing_chart(report, names, "latency_ms"))
    ttft_col.altair_chart(cv.timing_chart(report, names, "ttft_ms"))
    st.caption(cv.timing_precision(cv.period_filter(dates, principal)))
scatter_col, balance_col = st.columns(2)
if not report.latency.empty:
    scatter_col.altair_chart(cv.cost_latency_chart(report, names))
if report.balance.empty:
    balance_col.caption("No balance was reported in this period.")
else:
    balance_col.altair_chart(cv.balance_chart(report))

st.subheader("Per model")
st.caption(
    "API calls only: cached answers cost nothing and are not timed. Success rate = completed "
    "/ finished calls. Latencies in milliseconds."
)
st.dataframe(
    cv.model_table(report, names),
    hide_index=True,
    column_config={
        **{name: MS for name in cv.MODEL_TABLE_COLUMNS.values() if name.endswith("(ms)")},
        "Tokens per call": TWO_DECIMALS,
        "Tokens per 1k chars": TWO_DECIMALS,
        "Success rate": st.column_config.NumberColumn(format="percent"),
    },
)

st.subheader("Same prompt, different models")
same_prompt = cv.same_prompt(report, names)
if same_prompt.empty:
    st.caption("Run one prompt on two or more models to compare what each one costs.")
else:
    st.caption(
        "Billing tokens per run of each prompt run on several models; None where a model "
        "did not run that prompt."
    )
    st.dataframe(
        same_prompt,
        hide_index=True,
        column_config={
            "Prompt": st.column_config.TextColumn(width="large"),
            **{name: TWO_DECIMALS for name in same_prompt.columns if name != "Prompt"},
        },
    )
