"""The app's server: Streamlit (``app.py`` and its pages) plus the app's own routes.

``streamlit run serve.py`` (what ``make run`` does) finds :data:`app` and serves it with
uvicorn; the live-answer route (``GET /_run/<run_id>/events``) then runs next to Streamlit
in the same process, where the runner and its runs live.
"""

from __future__ import annotations

import streamlit as st

from playground.services import runtime
from ui.live_route import live_routes

# A long-lived server: its first runner also tunes the garbage collector for it.
runtime.settle_memory_when_serving()
app = st.App("app.py", routes=live_routes(str(st.get_option("server.baseUrlPath") or "")))
