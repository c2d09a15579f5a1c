"""Evaluate: templates, datasets, batch runs with live progress, results matrix, blind votes.

Each tab is drawn by its own module in ``ui/`` (``ui/evaluate_*.py``); this page picks the
open one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import streamlit as st

from playground.presenters.history import BATCH_PARAM
from playground.services.example import add_offline_example
from ui.auth import current_principal, session_connection
from ui.evaluate_common import BATCH_KEY, RESULTS_BATCH_KEY, VIEWER_HELP
from ui.evaluate_dataset import draw_dataset
from ui.evaluate_results import draw_results
from ui.evaluate_run import draw_run, fill_in_example
from ui.evaluate_templates import draw_templates
from ui.evaluate_vote import draw_vote

TAB_KEY = "evaluate.tab"
EXAMPLE_KEY = "evaluate.example"  # the offline example this session added, or None

principal = current_principal()
can_create = principal is None or principal.can_run
st.title("Evaluate")
connection = session_connection()
opened_batch = st.query_params.get(BATCH_PARAM)
if opened_batch is not None:
    # A batch opened from History: its results, once; the pickers are free again after.
    del st.query_params[BATCH_PARAM]
    if opened_batch.isdigit():
        st.session_state[TAB_KEY] = "Results"
        st.session_state[RESULTS_BATCH_KEY] = int(opened_batch)
if not can_create:
    st.info(VIEWER_HELP)
if EXAMPLE_KEY not in st.session_state:  # once per session: one query, not one per rerun
    st.session_state[EXAMPLE_KEY] = add_offline_example(viewer=principal)
    if st.session_state[EXAMPLE_KEY] is not None:
        fill_in_example(st.session_state[EXAMPLE_KEY])
example = st.session_state[EXAMPLE_KEY]
if example is not None and not st.session_state.get(BATCH_KEY):
    st.info(
        f"To try Evaluate without a key, an example was added: template "
        f"**{example.version_label}** and dataset **{example.dataset_label}**. The **Run "
        "batch** tab is filled in with it: press **Start batch**, then open **Results** "
        'and **Blind vote**. The README\'s "Trying it without a key" says what each '
        "simulated model does.",
        icon=":material/lightbulb:",
    )
TABS: dict[str, Callable[[], None]] = {
    "Templates": partial(draw_templates, principal=principal, can_create=can_create),
    "Dataset": partial(draw_dataset, principal=principal, can_create=can_create),
    "Run batch": partial(
        draw_run, principal=principal, can_create=can_create, connection=connection
    ),
    "Results": partial(draw_results, principal=principal, connection=connection),
    "Blind vote": partial(draw_vote, principal=principal),
}
# on_change="rerun": only the open tab's code runs (and queries the store) on each rerun;
# the hidden tabs' widgets keep their values through persist_state="page".
for tab, draw in zip(
    st.tabs(list(TABS), key=TAB_KEY, on_change="rerun"), TABS.values(), strict=True
):
    if tab.open:
        with tab:
            draw()
