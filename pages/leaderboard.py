"""Leaderboard: win rates, Bradley–Terry ratings, pass rates, cost and latency, with intervals."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from playground.evaluation import app as evaluation
from playground.evaluation.leaderboard import undecided

st.title("Leaderboard")
rows = evaluation.leaderboard()
if not rows:
    st.info("No votes or batch results yet. Run a batch and vote on the Evaluate page.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "model": r.model,
            "rating": None if r.rating is None else round(r.rating.estimate),
            "rating 95%": None if r.rating is None else f"{r.rating.low:.0f}–{r.rating.high:.0f}",
            "votes": r.games,
            "win rate": None if r.win_rate is None else r.win_rate.estimate,
            "win 95%": None
            if r.win_rate is None
            else f"{r.win_rate.low:.0%}–{r.win_rate.high:.0%}",
            "pass rate": None if r.pass_rate is None else r.pass_rate.estimate,
            "pass 95%": None
            if r.pass_rate is None
            else f"{r.pass_rate.low:.0%}–{r.pass_rate.high:.0%}",
            "avg tokens": r.avg_tokens,
            "avg latency ms": r.avg_latency_ms,
        }
        for r in rows
    ]
)
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "win rate": st.column_config.NumberColumn(format="percent"),
        "pass rate": st.column_config.NumberColumn(format="percent"),
        "avg latency ms": st.column_config.NumberColumn(format="%.0f"),
    },
)
for message in undecided(rows):
    st.caption(message)

rated = pd.DataFrame(
    [
        {"model": r.model, "rating": r.rating.estimate, "low": r.rating.low, "high": r.rating.high}
        for r in rows
        if r.rating is not None
    ]
)
if not rated.empty:
    base = alt.Chart(rated).encode(y=alt.Y("model:N", sort="-x", title=None))
    chart = base.mark_rule().encode(
        x=alt.X("low:Q", title="Bradley–Terry rating (95% bootstrap)", scale=alt.Scale(zero=False)),
        x2="high:Q",
    ) + base.mark_point(filled=True, size=80).encode(x="rating:Q")
    st.altair_chart(chart, use_container_width=True)
