"""The batch matrix's export: CSV and JSON of every cell."""

from __future__ import annotations

import csv
import io
import json

import pytest

from playground.evaluation.report import export_text
from playground.store.eval_repository import CellKey, CellState

FORMULAS = ('=HYPERLINK("http://evil.test","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx")


def _cell(text: str) -> CellState:
    return CellState(
        id=1,
        key=CellKey(template_version_id=1, row_index=0, provider="elumenta", model="gpt-5"),
        status="completed",
        attempts=1,
        result_id=1,
        passed=False,
        assertions=({"label": text, "passed": False, "message": "no"},),
        error_message=text,
        content=text,
        latency_ms=-1.0,
    )


@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote(formula: str) -> None:
    (row,) = csv.DictReader(io.StringIO(export_text([_cell(formula)], "csv"), newline=""))

    assert row["content"] == row["error"] == "'" + formula
    assert row["failed_assertions"] == f"'{formula}: no"
    assert row["latency_ms"] == "-1.0"  # a number is no formula


def test_json_keeps_the_text_as_it_is() -> None:
    (record,) = json.loads(export_text([_cell("=1+1")], "json"))
    assert (record["content"], record["error"]) == ("=1+1", "=1+1")
