"""Admin (hosted mode): users, roles and limits, workspaces, spend per user and model, audit."""

from __future__ import annotations

from dataclasses import asdict, replace

import altair as alt
import pandas as pd
import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.safe_text import escape_markdown
from playground.services import hosted
from playground.services.hosted import ROLES
from ui.auth import current_principal

principal = current_principal()
if principal is None or not principal.is_admin:
    st.error("Only admins of a hosted playground can open this page.")
    st.stop()
    raise SystemExit  # st.stop() raises; this tells type checkers the page ends here

st.title("Admin")
users_tab, workspaces_tab, spend_tab, audit_tab = st.tabs(
    ["Users", "Workspaces", "Spend", "Audit log"]
)

with users_tab:
    summaries = hosted.user_summaries(principal)
    st.caption(
        "Budgets are in billing tokens per UTC day/month and requests per minute; "
        "empty means the server default. Changes are recorded in the audit log."
    )
    table = pd.DataFrame([asdict(s) for s in summaries]).set_index("user_id")
    edited = st.data_editor(
        table,
        key="admin.users",
        hide_index=True,
        disabled=["subject", "display_name", "spent_today", "spent_month", "key_hint", "last_seen"],
        column_config={
            "subject": "User",
            "display_name": "Name",
            "role": st.column_config.SelectboxColumn("Role", options=list(ROLES), required=True),
            "disabled": "Disabled",
            "daily_budget_tokens": st.column_config.NumberColumn("Daily budget", min_value=0),
            "monthly_budget_tokens": st.column_config.NumberColumn("Monthly budget", min_value=0),
            "requests_per_minute": st.column_config.NumberColumn("Requests/min", min_value=1),
            "spent_today": "Spent today",
            "spent_month": "Spent this month",
            "key_hint": "Personal key",
            "last_seen": st.column_config.DatetimeColumn("Last seen", format="YYYY-MM-DD HH:mm"),
        },
    )
    if st.button("Save user changes", type="primary", icon=":material/save:"):
        changed = 0
        for before in summaries:
            row = edited.loc[before.user_id]
            after = replace(
                before,
                role=str(row["role"]),
                disabled=bool(row["disabled"]),
                daily_budget_tokens=None
                if pd.isna(row["daily_budget_tokens"])
                else int(row["daily_budget_tokens"]),
                monthly_budget_tokens=None
                if pd.isna(row["monthly_budget_tokens"])
                else int(row["monthly_budget_tokens"]),
                requests_per_minute=None
                if pd.isna(row["requests_per_minute"])
                else int(row["requests_per_minute"]),
            )
            try:
                changes = hosted.update_user(principal, before, after)
            except PlaygroundError as exc:
                st.error(f"{escape_markdown(before.subject)}: {user_message(exc)}")
                continue
            changed += bool(changes)
        st.toast(f"Saved changes to {changed} user(s).")

with workspaces_tab:
    subjects = [s.subject for s in hosted.user_summaries(principal)]
    with st.form("admin.new_workspace", clear_on_submit=True, enter_to_submit=True):
        name = st.text_input(
            "New workspace",
            key="admin.workspace_name",
            max_chars=200,
            placeholder="e.g. Search team",
        )
        if st.form_submit_button("Create workspace", icon=":material/add:"):
            try:
                hosted.add_workspace(principal, name)
                st.toast(f"Workspace {escape_markdown(name)} created.")
            except PlaygroundError as exc:
                st.error(user_message(exc))
    for workspace_id, workspace_name, members in hosted.workspaces(principal):
        with st.expander(f"{escape_markdown(workspace_name)} · {len(members)} member(s)"):
            picked = st.multiselect(
                "Members", subjects, default=members, key=f"admin.members.{workspace_id}"
            )
            left, right = st.columns(2)
            if left.button("Save members", key=f"admin.save.{workspace_id}"):
                hosted.set_workspace_members(principal, workspace_id, picked)
                st.toast("Members saved.")
            if right.button(
                "Delete workspace", key=f"admin.delete.{workspace_id}", icon=":material/delete:"
            ):
                hosted.remove_workspace(principal, workspace_id)
                st.rerun()

with spend_tab:
    spend = pd.DataFrame(hosted.spend_by_user_and_model(principal))
    if spend.empty:
        st.info("Nobody has run anything yet.")
    else:
        chart = (
            alt.Chart(spend)
            .mark_bar()
            .encode(
                x=alt.X("sum(tokens):Q", title="Billing tokens"),
                y=alt.Y("user:N", title=None, sort="-x"),
                color=alt.Color("model:N", title="Model"),
                tooltip=["user", "model", "requests", "tokens"],
            )
        )
        st.altair_chart(chart, width="stretch")
        st.dataframe(spend, hide_index=True, width="stretch")

with audit_tab:
    actor = st.text_input("Only this user", placeholder="e-mail", key="admin.audit_actor")
    events = hosted.audit_log(principal, actor=actor.strip().lower() or None)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": e.created_at,
                    "who": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "details": e.details,
                }
                for e in events
            ]
        ),
        hide_index=True,
        width="stretch",
    )
