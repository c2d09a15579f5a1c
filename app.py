"""The frame and router: page config, the shared sidebar, and the list of pages."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.services import runtime
from playground.unsaved import banner_text, unsaved
from ui.auth import require_principal, session_connection, sidebar_account, stop_with
from ui.drafts import keep_drafts
from ui.page_icon import FAVICON_URL

# A data: URL built once per process (see ui/page_icon.py).
st.set_page_config(page_title="Elumenta Playground", page_icon=FAVICON_URL, layout="wide")
# Root-level entries of .streamlit/secrets.toml (e.g. ELUMENTA_API_KEY) become env variables.
st.secrets.load_if_toml_exists()

try:
    # A bad setting, catalog or database URL, or a database a newer release migrated (a
    # rollback), is one clear message, not a traceback per page.
    runtime.check_configuration()
except PlaygroundError as exc:
    problem = user_message(exc)
    stop_with(lambda: st.error(problem, icon=":material/error:"), title="Configuration error")

principal = require_principal()
keep_drafts(principal)
connection = session_connection()
with st.sidebar:
    if principal is not None:
        sidebar_account(principal)
    st.markdown(f"**Provider:** {connection.label}")
    if connection.provider == "demo":
        st.caption("Answers are simulated offline. Enter an API key in Settings to use Elumenta.")
    elif connection.provider == "elumenta":
        st.caption(f"Key: {connection.key_hint}")
    if principal is None:
        st.markdown("**Database:**")
        st.code(runtime.database_label(), language=None, wrap_lines=True)

# History writes waiting out a database outage: said on every page, gone once written.
unsaved_banner = banner_text(unsaved())
if unsaved_banner is not None:
    st.warning(unsaved_banner, icon=":material/cloud_off:")

compare = st.Page(
    "pages/compare.py", title="Compare", icon=":material/compare_arrows:", default=True
)
admin = [st.Page("pages/admin.py", title="Admin", icon=":material/admin_panel_settings:")]
st.navigation(
    [
        compare,
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/costs.py", title="Costs", icon=":material/payments:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
        *(admin if principal is not None and principal.is_admin else []),
    ]
).run()
