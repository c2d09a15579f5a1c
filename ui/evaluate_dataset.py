"""The Evaluate page's Dataset tab: upload or paste a CSV / JSONL dataset, preview, save."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from playground.datasets import parse_dataset
from playground.errors import PlaygroundError, user_message
from playground.principal import Principal
from playground.safe_text import escape_markdown
from playground.services import evaluate as evaluation
from ui.evaluate_common import VIEWER_HELP
from ui.evaluate_promptfoo import draw_promptfoo


def draw_dataset(*, principal: Principal | None, can_create: bool) -> None:
    """Dataset tab: upload or paste CSV/JSONL, preview it, save it.

    ``can_create`` false (a viewer) disables Save dataset.
    """
    # The uploader has no persist_state: its file is gone after a tab switch; pasted text stays.
    upload = st.file_uploader("CSV or JSONL file", type=["csv", "jsonl", "ndjson"])
    pasted = st.text_area(
        "…or paste CSV / JSONL", key="evaluate.pasted", height=120, persist_state="session"
    )
    text = upload.getvalue() if upload else pasted  # bytes: parse_dataset names bad UTF-8
    if text.strip():
        try:
            dataset = parse_dataset(text)
            columns = escape_markdown(", ".join(dataset.columns))
            st.caption(f"{len(dataset.rows)} rows · columns: {columns}")
            st.dataframe(pd.DataFrame(dataset.preview()), hide_index=True)
            dataset_name = st.text_input(
                "Dataset name", key="evaluate.dataset_name", persist_state="session"
            )
            if st.button(
                "Save dataset",
                icon=":material/save:",
                disabled=not can_create,
                help=None if can_create else VIEWER_HELP,
            ):
                dataset_id = evaluation.store_dataset(dataset_name, dataset, viewer=principal)
                st.success(f"Saved dataset #{dataset_id}.")
        except PlaygroundError as exc:
            st.error(user_message(exc))
    draw_promptfoo(principal=principal, can_create=can_create)
