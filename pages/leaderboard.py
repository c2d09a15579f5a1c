"""Leaderboard: win rates, Bradley–Terry ratings, human ratings, pass rates, cost, latency."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from playground.evaluation.leaderboard import Grouping, undecided
from playground.evaluation.stats import Interval
from playground.safe_text import escape_markdown
from playground.services import evaluate as evaluation
from ui.auth import current_principal

GROUPINGS: dict[str, Grouping] = {"by model": "model", "by prompt version": "version"}
NOT_MEASURED = "—"  # no votes, thumbs or scores yet; as History's Cost column


def _span(interval: Interval | None) -> str | None:
    return None if interval is None else f"{interval.low:.0%}–{interval.high:.0%}"


principal = current_principal()  # hosted: signed-in users only, even when app.py was skipped
st.title("Leaderboard")
if principal is not None:
    st.caption("Your work and the work shared with you in your workspaces.")
grouping = st.radio("Lines", list(GROUPINGS), horizontal=True, key="leaderboard.grouping")
check_sets = evaluation.check_sets(viewer=principal)
checks = None
if check_sets:
    # Pass rates under different checks are not comparable: one set of checks at a time.
    checks = st.selectbox(
        "Pass rates under the checks",
        list(check_sets),
        format_func=lambda c: f"{c} · batches {', '.join(f'#{i}' for i in check_sets[c])}",
        key="leaderboard.checks",
        help="Only batches that ran exactly these assertions count toward the pass rate.",
    )
rows = evaluation.leaderboard(GROUPINGS[grouping], viewer=principal, checks=checks)
if not rows:
    st.info("No votes or batch results yet. Run a batch and vote on the Evaluate page.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "model" if GROUPINGS[grouping] == "model" else "model · prompt version": r.entrant,
            "rating": None if r.rating is None else round(r.rating.estimate),
            "rating 95%": None if r.rating is None else f"{r.rating.low:.0f}–{r.rating.high:.0f}",
            "votes": r.games,
            "win rate": None if r.win_rate is None else r.win_rate.estimate,
            "win 95%": _span(r.win_rate),
            "pass rate": None if r.pass_rate is None else r.pass_rate.estimate,
            "pass 95%": _span(r.pass_rate),
            "thumbs-up rate": None
            if r.human is None or r.human.thumbs_up is None
            else r.human.thumbs_up.estimate,
            "thumbs-up 95%": None if r.human is None else _span(r.human.thumbs_up),
            "thumbs": 0 if r.human is None else r.human.thumbs,
            "mean score": None if r.human is None else r.human.mean_score,
            "scores": 0 if r.human is None else r.human.scores,
            "avg tokens": r.avg_tokens,
            "avg latency ms": r.avg_latency_ms,
        }
        for r in rows
    ]
)
st.dataframe(
    table,
    hide_index=True,
    placeholder=NOT_MEASURED,
    column_config={
        "win rate": st.column_config.NumberColumn(format="percent"),
        "pass rate": st.column_config.NumberColumn(format="percent"),
        "thumbs-up rate": st.column_config.NumberColumn(format="percent"),
        "mean score": st.column_config.NumberColumn(format="%.1f / 5"),
        "avg latency ms": st.column_config.NumberColumn(format="%.0f"),
    },
)
for message in undecided(rows):
    st.caption(escape_markdown(message))  # names a prompt version someone else may have titled

rated = pd.DataFrame(
    [
        {
            "entrant": r.entrant,
            "rating": r.rating.estimate,
            "low": r.rating.low,
            "high": r.rating.high,
        }
        for r in rows
        if r.rating is not None
    ]
)
if not rated.empty:
    base = alt.Chart(rated).encode(y=alt.Y("entrant:N", sort="-x", title=None))
    chart = base.mark_rule().encode(
        x=alt.X("low:Q", title="Bradley–Terry rating (95% bootstrap)", scale=alt.Scale(zero=False)),
        x2="high:Q",
    ) + base.mark_point(filled=True, size=80).encode(x="rating:Q")
    st.altair_chart(chart, width="stretch")
