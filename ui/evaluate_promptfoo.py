"""The Evaluate page's promptfoo upload: check a promptfooconfig.yaml, run it, show verdicts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.evaluation.promptfoo.config import loads_promptfoo
from playground.principal import Principal
from playground.services import evaluate as evaluation
from ui.auth import session_connection
from ui.evaluate_common import VIEWER_HELP

RESULT_KEY = "evaluate.promptfoo_results"


def draw_promptfoo(*, principal: Principal | None, can_create: bool) -> None:
    """Upload a promptfoo config (self-contained: no ``file://`` references), see what it
    would run or what in it cannot run (with its line), run it, download results.json."""
    with st.expander("Run a promptfoo config", icon=":material/upload_file:"):
        upload = st.file_uploader("promptfooconfig.yaml", type=["yaml", "yml"], key="evaluate.pf")
        if upload is None:
            st.caption(
                "Prompts, providers (elumenta:<model>, openai:chat:<model>) and tests with "
                "their asserts, graded as promptfoo grades them. Files it refers to with "
                "file:// need the command line: python -m playground eval <config>."
            )
            return
        try:
            with tempfile.TemporaryDirectory() as empty:  # file:// finds nothing here
                config = loads_promptfoo(upload.getvalue(), name=upload.name, base_dir=Path(empty))
        except PlaygroundError as exc:
            st.error(user_message(exc))
            return
        st.caption(
            f"{len(config.prompts)} prompt(s) × {len(config.tests)} test(s) × "
            f"{len(config.providers)} provider(s) = "
            f"{len(config.prompts) * len(config.tests) * len(config.providers)} answers."
        )
        if st.button(
            "Run config",
            icon=":material/play_arrow:",
            disabled=not can_create,
            help=None if can_create else VIEWER_HELP,
        ):
            try:
                with st.spinner("Running and grading…"):
                    document = evaluation.run_promptfoo_config(
                        config, session_connection(), viewer=principal
                    )
                st.session_state[RESULT_KEY] = (upload.name, document)
            except PlaygroundError as exc:
                st.error(user_message(exc))
        shown = st.session_state.get(RESULT_KEY)
        if shown and shown[0] == upload.name:
            document = shown[1]
            rows = [
                {
                    "Provider": r["provider"]["label"],
                    "Prompt": r["prompt"]["label"],
                    "Test": r["testCase"].get("description") or r["testIdx"] + 1,
                    "Pass": r["success"],
                    "Score": r["score"],
                    "Reason": r["error"] or (r["gradingResult"] or {}).get("reason", ""),
                }
                for r in document["results"]["results"]
            ]
            stats = document["results"]["stats"]
            st.caption(
                f"{stats['successes']} passed, {stats['failures']} failed, "
                f"{stats['errors']} errors. The batch is in Results, History and Costs."
            )
            st.dataframe(pd.DataFrame(rows), hide_index=True)
            st.download_button(
                "Download results.json",
                json.dumps(document, ensure_ascii=False, indent=2),
                "results.json",
            )
