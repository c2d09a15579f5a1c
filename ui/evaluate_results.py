"""The Evaluate page's Results tab: a batch's pass/fail matrix, pass rates, export, ratings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import pandas as pd
import streamlit as st

from playground import services
from playground.access import Principal
from playground.errors import PlaygroundError, user_message
from playground.evaluation import app as evaluation
from playground.evaluation.report import cell_mark, failed_assertions, pass_rates
from playground.safe_text import escape_markdown, inert_images
from playground.store.eval_repository import CellState
from ui.evaluate_common import BATCH_KEY, RESULTS_BATCH_KEY, pick_id
from ui.rating import rater_field


def draw_results(*, principal: Principal | None, connection: services.Connection) -> None:
    """Results tab: a batch's pass/fail matrix, pass rates, export, and rating an answer.

    A batch that stopped before completing, and is ``principal``'s, can be resumed on
    ``connection``.
    """
    statuses = {i: (t, s) for i, t, s in evaluation.batches(viewer=principal)}
    labels = {i: f"#{i} {t} ({s})" for i, (t, s) in statuses.items()}
    batch_id = pick_id("Batch", labels, RESULTS_BATCH_KEY)
    if batch_id is None:
        return
    _draw_resume(batch_id, statuses[batch_id][1], principal=principal, connection=connection)
    # Marks and figures only: an answer's text is read when it is picked below or exported.
    batch_cells = evaluation.cells(batch_id, viewer=principal, with_content=False)
    _draw_matrix(batch_cells)
    _draw_pass_rates(batch_cells)
    _draw_export(batch_id, principal)
    rated = {c.result_id: c for c in batch_cells if c.result_id is not None}
    if rated:
        _draw_rating(rated, principal)


def _draw_resume(
    batch_id: int,
    status: str,
    *,
    principal: Principal | None,
    connection: services.Connection,
) -> None:
    """A notice if the batch was interrupted, and Resume if it stopped and is ``principal``'s.

    Resuming makes the Run batch tab's progress panel follow the batch.
    """
    job = evaluation.running_job(batch_id, viewer=principal)
    resumable = (
        status != "completed"
        and (job is None or job.finished)
        and evaluation.owns_batch(batch_id, viewer=principal)
    )
    if status == "interrupted":
        st.warning(
            "Interrupted — the process running this batch stopped. Resume continues it; "
            "answers already completed are not requested (or paid for) again."
        )
    if resumable and st.button("Resume", icon=":material/replay:"):
        try:
            st.session_state[BATCH_KEY] = evaluation.resume_batch(
                batch_id, connection, viewer=principal
            ).batch_id
        except PlaygroundError as exc:
            st.error(user_message(exc))


_MARK_COLOURS = {"PASS": "#d4f4dd", "FAIL": "#f9d6d5", "ERROR": "#f3e0b5"}
_MARK_COLUMN = st.column_config.MultiselectColumn(
    options=list(_MARK_COLOURS), color=list(_MARK_COLOURS.values())
)
"""A matrix column: each mark a label coloured by verdict; other statuses uncoloured."""


def _draw_matrix(batch_cells: Sequence[CellState]) -> None:
    """The Only failing cells box and the matrix of marks it filters, coloured by mark.

    One row per template version and dataset row, one column per model; no table when no
    cell is left.
    """
    only_failing = st.checkbox(
        "Only failing cells", key="evaluate.only_failing", persist_state="page"
    )
    marks = ((c, cell_mark(c)) for c in batch_cells)
    matrix = pd.DataFrame(
        [
            {
                "row": c.key.row_index + 1,
                "version": c.key.template_version_id,
                "model": c.key.model,
                "mark": mark,
            }
            for c, mark in marks
            if not only_failing or mark in ("FAIL", "ERROR")
        ]
    )
    if not matrix.empty:
        wide = matrix.pivot_table(
            index=["version", "row"], columns="model", values="mark", aggfunc="first"
        )
        # Coloured by the browser (a read-only multiselect column shows each mark as a
        # coloured label), not by a pandas Styler: styling 2,000 cells in Python costs
        # tens of milliseconds on every rerun of this tab.
        st.dataframe(wide, column_config=dict.fromkeys(wide.columns, _MARK_COLUMN))


def _draw_pass_rates(batch_cells: Sequence[CellState]) -> None:
    """Each model's pass rate with its 95% interval, as a table."""
    rates = pass_rates(batch_cells)
    st.dataframe(
        pd.DataFrame(
            [
                {"model": m, "pass rate": r.estimate, "95% low": r.low, "95% high": r.high}
                for m, r in rates.items()
            ]
        ),
        hide_index=True,
    )


def _draw_export(batch_id: int, principal: Principal | None) -> None:
    """Export CSV and Export JSON download buttons, side by side."""
    csv_col, json_col = st.columns(2)
    # Built when clicked, not on every rerun: the answers' text is read only then.
    export = partial(evaluation.export_batch, batch_id, viewer=principal)
    csv_col.download_button("Export CSV", partial(export, "csv"), "batch.csv")
    json_col.download_button("Export JSON", partial(export, "json"), "batch.json")


def _draw_rating(rated: Mapping[int, CellState], principal: Principal | None) -> None:
    """Pick one answer of the batch (by result id), show its text, and rate it."""
    st.subheader("Rate an answer")
    several_versions = len({c.key.template_version_id for c in rated.values()}) > 1
    labels = {
        i: (f"version {c.key.template_version_id} · " if several_versions else "")
        + f"row {c.key.row_index + 1} · {c.key.model}"
        for i, c in rated.items()
    }
    result_id = pick_id("Answer", labels, "evaluate.rate_cell")
    if result_id is None:
        return
    st.markdown(inert_images(evaluation.answer_text(result_id, viewer=principal)) or "*(empty)*")
    # A judge's reason and an answer quoted in a message are shown as written.
    for problem in failed_assertions(rated[result_id]):
        st.caption(f"✗ {escape_markdown(problem)}")
    rater = rater_field("evaluate.rater_name", principal)
    up, down, score_col = st.columns(3)
    if up.button("👍", key="evaluate.thumb_up"):
        evaluation.rate(result_id, rater, "thumbs", 1, None, viewer=principal)
    if down.button("👎", key="evaluate.thumb_down"):
        evaluation.rate(result_id, rater, "thumbs", -1, None, viewer=principal)
    score = score_col.number_input("Score 1–5", 1, 5, 3, key="evaluate.score", persist_state="page")
    if score_col.button("Save score"):
        evaluation.rate(result_id, rater, "score", score, None, viewer=principal)
    note = st.text_input("Note", key="evaluate.note", persist_state="page")
    if st.button("Save note") and note.strip():
        evaluation.rate(result_id, rater, "note", None, note, viewer=principal)
