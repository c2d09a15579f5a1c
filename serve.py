"""The app's server: Streamlit (``app.py`` and its pages) plus the app's own routes.

``streamlit run serve.py`` (what ``make run`` does) finds :data:`app` and serves it with
uvicorn; the live-answer route (``GET /_run/<run_id>/events``) then runs next to Streamlit
in the same process, where the runner and its runs live, with the route that serves the
live column's code (``GET /_live/<file>``, ``ui/live_code.py``).
"""

from __future__ import annotations

import streamlit as st

from playground.services import runtime
from ui.client_disconnects import MIDDLEWARE
from ui.config_reads import read_hot_options_without_lock
from ui.live_code import code_routes
from ui.live_route import live_routes
from ui.loop_wakeups import wake_loop_once_per_burst
from ui.runner_handover import keep_finished_runs

# A long-lived server: its first runner also tunes the garbage collector for it.
runtime.settle_memory_when_serving()
# A run that ends as the next one is asked for must still reach the browser in full.
keep_finished_runs()
# A page run's messages reach the event loop in bursts, not one wake-up each.
wake_loop_once_per_burst()
# The options read on every message do not wait for Streamlit's config lock.
read_hot_options_without_lock()
_base_url_path = str(st.get_option("server.baseUrlPath") or "")
app = st.App(
    "app.py",
    routes=live_routes(_base_url_path) + code_routes(_base_url_path),
    # A tab closed while the page was being sent is one log line, not a traceback.
    middleware=MIDDLEWARE,
)
