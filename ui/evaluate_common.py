"""What the Evaluate page's tabs share: session-state keys, the viewer notice, the id picker."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

BATCH_KEY = "evaluate.batch_id"
"""The batch the Run batch tab's progress panel follows."""
RESULTS_BATCH_KEY = "evaluate.results_batch"
"""The Results tab's batch picker."""
VOTE_BATCH_KEY = "evaluate.vote_batch"
"""The Blind vote tab's batch picker."""
VIEWER_HELP = "Your role is viewer: you can look at shared work but not create or run it."
"""Shown atop the page, and as the help of every disabled create or run button, to viewers."""


def pick_id(label: str, labels: Mapping[int, str], key: str) -> int | None:
    """A selectbox of ids (``labels``: what each shows) that keeps its pick while hidden.

    An id kept from before that is not offered any more (another batch picked, a batch
    just started) falls back to the first option.
    """
    return st.selectbox(
        label,
        list(labels),
        key=key,
        format_func=lambda i: labels.get(i, f"#{i}"),
        persist_state="page",
    )
