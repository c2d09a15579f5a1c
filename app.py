"""The frame and router: page config, the shared sidebar, and the list of pages."""

from __future__ import annotations

import streamlit as st

from playground import services

st.set_page_config(
    page_title="Elumenta Playground", page_icon=":material/compare_arrows:", layout="wide"
)
# Root-level entries of .streamlit/secrets.toml (e.g. ELUMENTA_API_KEY) become env variables.
st.secrets.load_if_toml_exists()

connection = services.connection_from_state(st.session_state)
with st.sidebar:
    st.markdown(f"**Provider:** {connection.label}")
    if connection.provider == "demo":
        st.caption("Answers are simulated offline. Enter an API key in Settings to use Elumenta.")
    elif connection.provider == "elumenta":
        st.caption(f"Key: {connection.key_hint}")
    st.markdown("**Database:**")
    st.code(services.database_label(), language=None, wrap_lines=True)

compare = st.Page(
    "pages/compare.py", title="Compare", icon=":material/compare_arrows:", default=True
)
st.navigation(
    [
        compare,
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/costs.py", title="Costs", icon=":material/payments:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
).run()
