"""Export: CSV and JSON round-trip to exactly the stored rows."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from playground.store import (
    EXPORT_COLUMNS,
    HistoryFilter,
    Store,
    StoreRecorder,
    export_rows,
    write_export,
)
from playground.store.export import JSON_COLUMNS
from tests.store_fixtures import Outcome, make_request, record_run


@pytest.fixture
def exported(store: Store, recorder: StoreRecorder) -> list[dict[str, Any]]:
    record_run(
        recorder,
        make_request(
            ("gpt-5", "deepseek-v3"), 'Quote "this", and, commas\nnew line', tags=("t1", "t2")
        ),
        [
            Outcome('Answer with "quotes", commas\nand ünïcødé — ok'),
            Outcome(
                "",
                status="failed",
                tokens_used=None,
                latency_ms=None,
                ttft_ms=None,
                error_code="provider_error",
                error_message="Boom.",
            ),
        ],
    )
    record_run(recorder, make_request(("gpt-5-nano",), "Second"), [Outcome("Short.")])
    with store.session() as session:
        return list(export_rows(session))


def test_rows_have_every_column_oldest_first(exported: list[dict[str, Any]]) -> None:
    assert [list(row) for row in exported] == [list(EXPORT_COLUMNS)] * 3
    assert [row["model"] for row in exported] == ["gpt-5", "deepseek-v3", "gpt-5-nano"]
    first = exported[0]
    assert first["tags"] == ["t1", "t2"]
    assert first["messages"] == [{"role": "user", "content": 'Quote "this", and, commas\nnew line'}]
    assert (first["tokens_used"], first["price_tokens"], first["cached"]) == (1, 2, False)
    assert exported[1]["error_code"] == "provider_error"


def test_json_round_trip(exported: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    assert write_export(exported, "json", buffer) == 3
    assert json.loads(buffer.getvalue()) == exported


def test_csv_round_trip(exported: list[dict[str, Any]]) -> None:
    buffer = io.StringIO(newline="")
    assert write_export(exported, "csv", buffer) == 3
    buffer.seek(0)
    read = list(csv.DictReader(buffer))
    assert [list(row) for row in read] == [list(EXPORT_COLUMNS)] * 3
    for original, row in zip(exported, read, strict=True):
        for column in EXPORT_COLUMNS:
            value = original[column]
            if column in JSON_COLUMNS:
                assert json.loads(row[column]) == value, column
            elif value is None:
                assert row[column] == "", column
            elif isinstance(value, bool):
                assert row[column] == str(value).lower(), column
            else:
                assert type(value)(row[column]) == value, column


def test_export_respects_the_filter(store: Store, exported: list[dict[str, Any]]) -> None:
    with store.session() as session:
        rows = list(export_rows(session, HistoryFilter(statuses=("failed",))))
    assert [r["result_id"] for r in rows] == [exported[1]["result_id"]]


@pytest.mark.parametrize(("fmt", "text"), [("json", "[]\n"), ("csv", ",".join(EXPORT_COLUMNS))])
def test_empty_export_is_still_valid(fmt: str, text: str) -> None:
    buffer = io.StringIO()
    assert write_export([], fmt, buffer) == 0  # type: ignore[arg-type]
    assert buffer.getvalue().strip() == text.strip()


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="csv or json"):
        write_export([], "xml", io.StringIO())  # type: ignore[arg-type]


FORMULAS = ('=HYPERLINK("http://evil.test","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx")


@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote(
    store: Store, recorder: StoreRecorder, formula: str
) -> None:
    request = make_request(("gpt-5",), formula, title=formula, system_prompt=formula, tags=("=t",))
    record_run(recorder, request, [Outcome(formula, error_message=formula)])
    with store.session() as session:
        rows = list(export_rows(session))

    buffer = io.StringIO(newline="")
    write_export(rows, "csv", buffer)
    (row,) = csv.DictReader(io.StringIO(buffer.getvalue(), newline=""))
    for column in ("title", "system_prompt", "content", "error_message"):
        assert row[column] == "'" + formula, column
    assert json.loads(row["tags"]) == ["=t"]  # JSON text starts with "[", never a formula

    buffer = io.StringIO()
    write_export(rows, "json", buffer)
    (exported,) = json.loads(buffer.getvalue())
    assert [exported[c] for c in ("title", "content", "error_message")] == [formula] * 3


def test_csv_keeps_numbers_and_plain_text_as_they_are(exported: list[dict[str, Any]]) -> None:
    rows = [{**exported[0], "balance_remaining": -5, "content": "a = b - c"}]
    buffer = io.StringIO(newline="")
    write_export(rows, "csv", buffer)
    (row,) = csv.DictReader(io.StringIO(buffer.getvalue(), newline=""))
    assert (row["balance_remaining"], row["content"]) == ("-5", "a = b - c")
