"""The results matrix of a batch: rows × models, pass rates, and CSV/JSON export.

Pure functions over stored cells (:class:`~playground.store.eval_repository.CellState`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from playground.evaluation.stats import Interval, wilson_interval
from playground.safe_text import spreadsheet_safe
from playground.store.eval_repository import CellState
from playground.store.export import ExportFormat

EXPORT_COLUMNS = (
    "template_version_id",
    "row",
    "provider",
    "model",
    "status",
    "passed",
    "failed_assertions",
    "latency_ms",
    "tokens_used",
    "cached",
    "truncated",
    "content",
    "error",
)


FAILING_MARKS = ("FAIL", "ERROR")
ROW_LABEL_CHARS = 48


def row_label(number: int, values: Mapping[str, Any], width: int = ROW_LABEL_CHARS) -> str:
    """``"#3 value · value"``: a dataset row by its number and values, cut to ``width``."""
    text = " ".join(" · ".join(str(v) for v in values.values()).split())
    label = f"#{number} {text}" if text else f"#{number}"
    return label if len(label) <= width else label[: width - 1] + "…"


def percent_interval(rate: Interval) -> str:
    """A pass or win rate with its interval: ``"80 % (49–94 %)"``."""
    return f"{rate.estimate:.0%} ({rate.low * 100:.0f}–{rate.high:.0%})".replace("%", " %")


def cell_reason(cell: CellState) -> str:
    """Why a cell failed: its failed assertions, or the request's error; ``""`` if it did not."""
    if cell.status == "failed":
        return cell.error_message or "The request failed."
    return "; ".join(failed_assertions(cell))


def cell_mark(cell: CellState) -> str:
    """A one-word verdict for a matrix cell: PASS, FAIL, ERROR, or the cell's status.

    ERROR also marks an answer with an assertion that could not run (its reason is in the
    cell's ``error_message``): FAIL would blame the model for it.
    """
    if cell.status == "completed":
        if any(a.get("error") for a in cell.assertions):
            return "ERROR"
        return {True: "PASS", False: "FAIL", None: "done"}[cell.passed]
    return "ERROR" if cell.status == "failed" else cell.status


def failed_assertions(cell: CellState) -> list[str]:
    """Labels and messages of the assertions this cell failed."""
    return [f"{a['label']}: {a['message']}" for a in cell.assertions if not a["passed"]]


def by_model(cell: CellState) -> str | None:
    """The default grouping of cells: by model."""
    return cell.key.model


def pass_counts(
    cells: Sequence[CellState], key: Callable[[CellState], str | None] = by_model
) -> dict[str, tuple[int, int]]:
    """Per ``key`` (model by default): ``(passed, checked)`` answers.

    A failed request counts as checked and failing (a model that cannot answer does not
    pass); cells whose key is ``None`` are left out.
    """
    passed: dict[str, int] = defaultdict(int)
    checked: dict[str, int] = defaultdict(int)
    for cell in cells:
        group = key(cell)
        if group is not None and (cell.status == "failed" or cell.passed is not None):
            checked[group] += 1
            passed[group] += cell.passed is True
    return {m: (passed[m], checked[m]) for m in checked}


def pass_rates(
    cells: Sequence[CellState], key: Callable[[CellState], str | None] = by_model
) -> dict[str, Interval]:
    """Per ``key`` (model by default): the :func:`pass_counts` share with its Wilson interval."""
    return {m: wilson_interval(p, n) for m, (p, n) in pass_counts(cells, key).items()}


def export_records(cells: Sequence[CellState]) -> list[dict[str, Any]]:
    """One flat record per cell, in :data:`EXPORT_COLUMNS` order (rows are 1-based)."""
    return [
        {
            "template_version_id": c.key.template_version_id,
            "row": c.key.row_index + 1,
            "provider": c.key.provider,
            "model": c.key.model,
            "status": c.status,
            "passed": c.passed,
            "failed_assertions": failed_assertions(c),
            "latency_ms": None if c.latency_ms is None else round(c.latency_ms, 1),
            "tokens_used": c.tokens_used,
            "cached": c.cached,
            "truncated": c.truncated,
            "content": c.content,
            "error": c.error_message,
        }
        for c in cells
    ]


def export_text(cells: Sequence[CellState], fmt: ExportFormat) -> str:
    """The matrix as ``csv`` or ``json`` text.

    In CSV, text a spreadsheet would run as a formula starts with ``'``
    (:func:`~playground.safe_text.spreadsheet_safe`); JSON keeps every value as stored.
    """
    records = export_records(cells)
    if fmt == "json":
        return json.dumps(records, ensure_ascii=False, indent=2)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for record in records:
        flat = {**record, "failed_assertions": "; ".join(record["failed_assertions"])}
        writer.writerow({column: spreadsheet_safe(value) for column, value in flat.items()})
    return buffer.getvalue()


def matrix_table(cells: Sequence[CellState]) -> str:
    """A plain-text matrix: one line per (version, row), one column per model, then pass rates."""
    models = list(dict.fromkeys(c.key.model for c in cells))
    lines: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    for cell in cells:
        lines[(cell.key.template_version_id, cell.key.row_index)][cell.key.model] = cell_mark(cell)
    header = ["row", *models]
    rows = [
        [f"v{version}#{row + 1}", *(marks.get(m, "") for m in models)]
        for (version, row), marks in lines.items()
    ]
    rates = pass_rates(cells)
    footer = ["pass rate"] + [percent_interval(rates[m]) if m in rates else "—" for m in models]
    table = [header, *rows, footer]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in table]
    out.insert(1, "  ".join("─" * w for w in widths))
    out.insert(len(out) - 1, "  ".join("─" * w for w in widths))
    return "\n".join(out)
