"""The Evaluate page's Results tab: a batch's matrix with reasons, pass rates, answers, ratings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from playground.catalog import Catalog
from playground.errors import PlaygroundError, user_message
from playground.evaluation.report import (
    FAILING_MARKS,
    cell_mark,
    cell_reason,
    pass_counts,
    pass_rates,
    percent_interval,
    row_label,
)
from playground.principal import Principal
from playground.safe_text import escape_markdown, inert_images
from playground.services import evaluate as evaluation
from playground.services import runtime
from playground.services.evaluate import CellState
from ui.evaluate_common import BATCH_KEY, RESULTS_BATCH_KEY, pick_id
from ui.rating import rater_field


def draw_results(*, principal: Principal | None, connection: runtime.Connection) -> None:
    """Results tab: a batch's matrix with reasons, pass rates, export, and its answers.

    Rows are labelled by their dataset values; "Only failing cells" filters the matrix,
    the reasons and the answer viewer alike. A batch that stopped before completing, and
    is ``principal``'s, can be resumed on ``connection``.
    """
    statuses = {i: (t, s) for i, t, s in evaluation.batches(viewer=principal)}
    labels = {i: f"#{i} {t} ({s})" for i, (t, s) in statuses.items()}
    batch_id = pick_id("Batch", labels, RESULTS_BATCH_KEY)
    if batch_id is None:
        return
    _draw_resume(batch_id, statuses[batch_id][1], principal=principal, connection=connection)
    # Marks and figures only: an answer's text is read when it is picked below or exported.
    batch_cells = evaluation.cells(batch_id, viewer=principal, with_content=False)
    matrix = ResultsMatrix(
        batch_cells, evaluation.batch_inputs(batch_id, viewer=principal), runtime.get_catalog()
    )
    only_failing = st.checkbox(
        "Only failing cells", key="evaluate.only_failing", persist_state="session"
    )
    shown = [c for c in batch_cells if not only_failing or cell_mark(c) in FAILING_MARKS]
    if only_failing and not shown:
        st.success("No failing cells: every answer passed every check.")
    _draw_matrix(matrix, shown)
    _draw_reasons(matrix, shown)
    _draw_pass_rates(batch_cells, matrix)
    _draw_export(batch_id, principal)
    answers = {c.result_id: c for c in shown if c.result_id is not None}
    if answers:
        _draw_answer(answers, matrix, principal)


def _draw_resume(
    batch_id: int,
    status: str,
    *,
    principal: Principal | None,
    connection: runtime.Connection,
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
ANSWER_KEY = "evaluate.rate_cell"
"""The answer viewer's pick (a result id)."""
MATRIX_KEY = "evaluate.matrix"


class ResultsMatrix:
    """How the Results tab names a batch's rows and models, and finds a cell's answer."""

    def __init__(
        self, cells: Sequence[CellState], inputs: Sequence[Mapping[str, Any]], catalog: Catalog
    ) -> None:
        self.inputs = inputs
        self.catalog = catalog
        self.several_versions = len({c.key.template_version_id for c in cells}) > 1
        # The matrix's columns: every model of the batch, in the batch's order.
        self.models = list(dict.fromkeys(self.model(c) for c in cells))

    def values(self, cell: CellState) -> Mapping[str, Any]:
        """The dataset values of the cell's row (empty when the dataset is gone)."""
        index = cell.key.row_index
        return self.inputs[index] if index < len(self.inputs) else {}

    def row(self, cell: CellState) -> str:
        """The matrix row of a cell: its dataset row's number and values, cut short."""
        label = row_label(cell.key.row_index + 1, self.values(cell))
        if self.several_versions:
            return f"version {cell.key.template_version_id} · {label}"
        return label

    def model(self, cell: CellState) -> str:
        """The model's display name, as Compare shows it."""
        return self.catalog.name_of(cell.key.model)


def _draw_matrix(matrix: ResultsMatrix, shown: Sequence[CellState]) -> None:
    """The matrix of marks: a row per dataset row (and version), a column per model.

    Selecting a cell opens its answer below. No table when no cell is left.
    """
    if not shown:
        return
    long = pd.DataFrame(
        [{"input": matrix.row(c), "model": matrix.model(c), "mark": cell_mark(c)} for c in shown]
    )
    wide = long.pivot_table(
        index="input", columns="model", values="mark", aggfunc="first", sort=False
    )
    # The batch's model order, filtered or not; a cell filtered out is left blank.
    wide = wide.reindex(columns=[m for m in matrix.models if m in set(long["model"])])
    wide = wide.fillna("")
    by_place = {(matrix.row(c), matrix.model(c)): c.result_id for c in shown}
    # Coloured by the browser (a read-only multiselect column shows each mark as a
    # coloured label), not by a pandas Styler: styling 2,000 cells in Python costs
    # tens of milliseconds on every rerun of this tab.
    config: dict[str, Any] = dict.fromkeys(wide.columns, _MARK_COLUMN)
    config["input"] = st.column_config.TextColumn(
        "input", help="The dataset row's number and values; select a cell to read them in full."
    )
    st.dataframe(
        wide,
        column_config=config,
        key=MATRIX_KEY,
        on_select=partial(_open_selected, list(wide.index), by_place),
        selection_mode="single-cell",
    )


def _open_selected(rows: list[str], by_place: Mapping[tuple[str, str], int | None]) -> None:
    """Point the answer viewer at the matrix cell just selected (if it has an answer)."""
    for row_position, column in st.session_state[MATRIX_KEY].selection.cells:
        result_id = by_place.get((rows[row_position], str(column)))
        if result_id is not None:
            st.session_state[ANSWER_KEY] = result_id


def _draw_reasons(matrix: ResultsMatrix, shown: Sequence[CellState]) -> None:
    """Why each failed or errored cell failed: its failed checks, or the request's error."""
    failing = [c for c in shown if cell_mark(c) in FAILING_MARKS]
    if not failing:
        return
    st.markdown("**Why cells failed**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "input": matrix.row(c),
                    "model": matrix.model(c),
                    "mark": cell_mark(c),
                    "reason": cell_reason(c),
                }
                for c in failing
            ]
        ),
        hide_index=True,
        column_config={
            "mark": _MARK_COLUMN,
            "reason": st.column_config.TextColumn("reason", width="large"),
        },
    )


def _draw_pass_rates(batch_cells: Sequence[CellState], matrix: ResultsMatrix) -> None:
    """Each model's pass rate as a percentage with its 95% Wilson interval."""
    counts = pass_counts(batch_cells)
    rates = pass_rates(batch_cells)
    names = {c.key.model: matrix.model(c) for c in batch_cells}
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": names[m],
                    "pass rate (95% interval)": percent_interval(rates[m]),
                    "passed": f"{passed} of {checked}",
                }
                for m, (passed, checked) in counts.items()
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


def _draw_answer(
    answers: Mapping[int, CellState], matrix: ResultsMatrix, principal: Principal | None
) -> None:
    """Pick one answer shown in the matrix, read its input, text and reasons, rate it."""
    st.subheader("Answers")
    labels = {
        i: f"{matrix.row(c)} · {matrix.model(c)} · {cell_mark(c)}" for i, c in answers.items()
    }
    result_id = pick_id("Answer", labels, ANSWER_KEY)
    if result_id is None:
        return
    cell = answers[result_id]
    values = matrix.values(cell)
    if values:
        st.dataframe(pd.DataFrame([values]), hide_index=True)
    st.markdown(inert_images(evaluation.answer_text(result_id, viewer=principal)) or "*(empty)*")
    reason = cell_reason(cell)
    if reason:
        # A judge's reason and an answer quoted in a message are shown as written.
        st.caption(f"✗ {escape_markdown(reason)}")
    _draw_rating(result_id, principal)


def _draw_rating(result_id: int, principal: Principal | None) -> None:
    """Thumbs, a 1–5 score and a note on one answer."""
    rater = rater_field("evaluate.rater_name", principal)
    up, down, score_col = st.columns(3)
    if up.button("Good", key="evaluate.thumb_up", icon=":material/thumb_up:"):
        evaluation.rate(result_id, rater, "thumbs", 1, None, viewer=principal)
    if down.button("Bad", key="evaluate.thumb_down", icon=":material/thumb_down:"):
        evaluation.rate(result_id, rater, "thumbs", -1, None, viewer=principal)
    score = score_col.number_input("Score 1–5", 1, 5, 3, key="evaluate.score", persist_state="page")
    if score_col.button("Save score"):
        evaluation.rate(result_id, rater, "score", score, None, viewer=principal)
    note = st.text_input("Note", key="evaluate.note", persist_state="page")
    if st.button("Save note") and note.strip():
        evaluation.rate(result_id, rater, "note", None, note, viewer=principal)
