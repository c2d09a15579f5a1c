"""Datasets: CSV/JSONL parsing with line-numbered errors, limits and variable mapping."""

from __future__ import annotations

import pytest

from playground.datasets import (
    MAX_ROWS,
    DatasetError,
    map_columns,
    parse_dataset,
    row_values,
)


def test_csv_with_quotes_and_newlines_in_cells() -> None:
    dataset = parse_dataset('\ufeffcity,note\nParis,"a, b"\n"Ber\nlin",x\n\n')
    assert dataset.columns == ("city", "note")
    assert dataset.rows == ({"city": "Paris", "note": "a, b"}, {"city": "Ber\nlin", "note": "x"})


def test_jsonl_is_detected_and_columns_keep_first_seen_order() -> None:
    dataset = parse_dataset('{"q": "a", "n": 1}\n\n{"q": "b", "extra": true}\n')
    assert dataset.columns == ("q", "n", "extra")
    assert dataset.rows[1] == {"q": "b", "extra": True}


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("a,b\n1,2\n3\n", "csv", "Line 3: 1 cells, but the header has 2 columns"),
        ('{"a": 1}\n{"a": 2\n', "jsonl", "Line 2: not valid JSON"),
        ('{"a": 1}\n[1, 2]\n', "jsonl", "Line 2: expected a JSON object, got list"),
        ("a,a\n1,2\n", "csv", "Duplicate column names: a"),
        ("a,b\n", "csv", "no rows"),
        ("", "csv", "no header line"),
    ],
)
def test_malformed_input_names_the_problem(text: str, fmt: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_dataset(text, fmt)  # type: ignore[arg-type]


def test_row_limit() -> None:
    text = "a\n" + "x\n" * (MAX_ROWS + 1)
    with pytest.raises(DatasetError, match="limit is 10,000"):
        parse_dataset(text)


def test_mapping_uses_same_named_columns_and_explicit_ones() -> None:
    dataset = parse_dataset("question,ctx\nq1,c1\n")
    mapping = map_columns(dataset, {"question", "context"}, {"context": "ctx"})
    assert mapping == {"question": "question", "context": "ctx"}
    assert row_values(dataset.rows[0], mapping) == {"question": "q1", "context": "c1"}


def test_mapping_names_unmapped_variables_and_unknown_columns() -> None:
    dataset = parse_dataset("question\nq1\n")
    with pytest.raises(DatasetError, match="No dataset column for template variables: context"):
        map_columns(dataset, {"question", "context"})
    with pytest.raises(DatasetError, match="Unknown dataset columns: nope"):
        map_columns(dataset, {"question"}, {"question": "nope"})


@pytest.mark.parametrize("sep", [";", "\t", ","])
def test_csv_cells_may_be_separated_by_semicolons_or_tabs(sep: str) -> None:
    text = f'country{sep}capital\nFrance{sep}Paris\n"Congo{sep} DR"{sep}Kinshasa\n'
    dataset = parse_dataset(text)
    assert dataset.columns == ("country", "capital")
    assert dataset.rows[1] == {"country": f"Congo{sep} DR", "capital": "Kinshasa"}
