"""Datasets: rows of named values parsed from CSV, JSONL or pasted text, mapped to variables.

Parsing is pure (text in, :class:`Dataset` out) and errors name the line that is wrong.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from playground.errors import InvalidRequestError

DatasetFormat = Literal["csv", "jsonl", "auto"]
MAX_DATASET_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
MAX_COLUMNS = 100

Row = dict[str, Any]


class DatasetError(InvalidRequestError):
    """A dataset cannot be read or does not fit the template."""


@dataclass(frozen=True)
class Dataset:
    """Named columns and rows (each a mapping column → value, in file order)."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def preview(self, limit: int = 10) -> list[Row]:
        """The first ``limit`` rows, for showing before a run."""
        return list(self.rows[:limit])


def parse_dataset(text: str, fmt: DatasetFormat = "auto") -> Dataset:
    """Parse ``text`` as CSV (a header line first) or JSONL (one JSON object per line).

    ``auto`` picks JSONL when the first non-blank character is ``{``. Raises
    :class:`DatasetError` with the line number of the first bad line, or when the data is
    empty or over the size limits.
    """
    if len(text.encode("utf-8")) > MAX_DATASET_BYTES:
        raise DatasetError(f"The dataset is larger than {MAX_DATASET_BYTES // 1024 // 1024} MB.")
    if fmt == "auto":
        fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
    dataset = parse_jsonl(text) if fmt == "jsonl" else parse_csv(text)
    if not dataset.rows:
        raise DatasetError("The dataset has no rows.")
    if len(dataset.rows) > MAX_ROWS:
        raise DatasetError(
            f"The dataset has {len(dataset.rows):,} rows; the limit is {MAX_ROWS:,}."
        )
    if len(dataset.columns) > MAX_COLUMNS:
        raise DatasetError(f"The dataset has more than {MAX_COLUMNS} columns.")
    return dataset


def parse_csv(text: str) -> Dataset:
    """Rows of a CSV with a header line; every row must have as many cells as the header."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DatasetError("The CSV has no header line (the first line names the columns).")
        columns = tuple(h.strip() for h in header)
        _check_columns(columns)
        rows: list[Row] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                raise DatasetError(
                    f"Line {reader.line_num}: {len(cells)} cells, but the header has "
                    f"{len(columns)} columns."
                )
            rows.append(dict(zip(columns, cells, strict=True)))
    except csv.Error as exc:
        raise DatasetError(f"Line {reader.line_num}: not valid CSV ({exc}).") from exc
    return Dataset(columns, tuple(rows))


def parse_jsonl(text: str) -> Dataset:
    """Rows of JSON Lines: one object per line; columns in first-seen order."""
    columns: dict[str, None] = {}
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"Line {number}: not valid JSON ({exc.msg}).") from exc
        if not isinstance(value, dict):
            raise DatasetError(
                f"Line {number}: expected a JSON object, got {type(value).__name__}."
            )
        columns.update(dict.fromkeys(str(k) for k in value))
        rows.append({str(k): v for k, v in value.items()})
    _check_columns(tuple(columns))
    return Dataset(tuple(columns), tuple(rows))


def _check_columns(columns: tuple[str, ...]) -> None:
    if any(not c for c in columns):
        raise DatasetError("A column has an empty name.")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise DatasetError(f"Duplicate column names: {', '.join(duplicates)}.")


def map_columns(
    dataset: Dataset, variables: set[str], mapping: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variable → column mapping to use: ``mapping`` plus same-named columns.

    Raises :class:`DatasetError` naming every variable with no column and every mapped
    column the dataset does not have.
    """
    result = {v: v for v in variables if v in dataset.columns}
    result.update(mapping or {})
    unknown = sorted(c for c in result.values() if c not in dataset.columns)
    if unknown:
        raise DatasetError(
            f"Unknown dataset columns: {', '.join(unknown)}. "
            f"The dataset has: {', '.join(dataset.columns)}."
        )
    unmapped = sorted(v for v in variables if v not in result)
    if unmapped:
        raise DatasetError(
            f"No dataset column for template variables: {', '.join(unmapped)}. "
            "Map them to columns or rename the columns."
        )
    return result


def row_values(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The template values for one row under a variable → column mapping."""
    return {variable: row.get(column, "") for variable, column in mapping.items()}
