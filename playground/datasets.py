"""Datasets: rows of named values parsed from CSV, JSONL or pasted text, mapped to variables.

Parsing is pure (text in, :class:`Dataset` out) and errors name the line that is wrong.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from playground.errors import InvalidRequestError
from playground.safe_text import NUL

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


def parse_dataset(text: str | bytes, fmt: DatasetFormat = "auto") -> Dataset:
    """Parse ``text`` as CSV (a header line first) or JSONL (one JSON object per line).

    ``bytes`` (an uploaded file) must be UTF-8. ``auto`` picks JSONL when the first
    non-blank character is ``{``. Raises :class:`DatasetError` with the line number of the
    first bad line, or when the data is empty, binary or over the size limits (checked
    while reading, so an oversized file is refused without being read whole).
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8"))
    if size > MAX_DATASET_BYTES:
        raise DatasetError(f"The dataset is larger than {MAX_DATASET_BYTES // 1024 // 1024} MB.")
    if isinstance(text, bytes):
        text = _decode(text)
    if NUL in text:
        line = text.count("\n", 0, text.index(NUL)) + 1
        raise DatasetError(
            f"Line {line}: a NUL character (\\x00). Is this a binary file? "
            "A dataset is CSV or JSONL text."
        )
    if fmt == "auto":
        fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
    dataset = parse_jsonl(text) if fmt == "jsonl" else parse_csv(text)
    if not dataset.rows:
        raise DatasetError("The dataset has no rows.")
    return dataset


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"Line {line}: the file is not UTF-8 text (byte 0x{data[exc.start]:02x}). "
            "Save it as UTF-8 (in Excel: CSV UTF-8); a binary file cannot be a dataset."
        ) from exc


def _too_many_rows() -> DatasetError:
    return DatasetError(f"The dataset has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}.")


CSV_DELIMITERS = (",", ";", "\t")


def csv_delimiter(text: str) -> str:
    """The delimiter of a CSV: whichever of , ; and tab its header line has most of.

    Spreadsheets in many locales save CSV with ``;``; read with ``,`` such a file would be
    one column of whole lines.
    """
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    best = max(CSV_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_csv(text: str) -> Dataset:
    """Rows of a CSV with a header line; every row must have as many cells as the header.

    Cells are separated by ``,``, ``;`` or tabs (:func:`csv_delimiter`).
    """
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text), delimiter=csv_delimiter(text))
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
            if len(rows) == MAX_ROWS:
                raise _too_many_rows()
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
        except RecursionError as exc:
            raise DatasetError(f"Line {number}: the JSON is nested too deeply.") from exc
        if not isinstance(value, dict):
            raise DatasetError(
                f"Line {number}: expected a JSON object, got {type(value).__name__}."
            )
        if _has_nul(value):
            raise DatasetError(f"Line {number}: a NUL character (\\x00), which cannot be stored.")
        if len(rows) == MAX_ROWS:
            raise _too_many_rows()
        columns.update(dict.fromkeys(str(k) for k in value))
        if len(columns) > MAX_COLUMNS:
            raise DatasetError(f"Line {number}: more than {MAX_COLUMNS} columns in all.")
        rows.append({str(k): v for k, v in value.items()})
    _check_columns(tuple(columns))
    return Dataset(tuple(columns), tuple(rows))


def _has_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds a NUL in any key or string (JSON writes it \\u0000)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and NUL in item:
            return True
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _check_columns(columns: tuple[str, ...]) -> None:
    if len(columns) > MAX_COLUMNS:
        raise DatasetError(f"The dataset has {len(columns):,} columns; the limit is {MAX_COLUMNS}.")
    if any(not c for c in columns):
        raise DatasetError("A column has an empty name.")
    duplicates = sorted(c for c, n in Counter(columns).items() if n > 1)
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
            "Pick their columns under Template variables on the Run batch tab (`mapping:` in "
            "a suite file), or rename the columns."
        )
    return result


def row_values(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The template values for one row under a variable → column mapping."""
    return {variable: row.get(column, "") for variable, column in mapping.items()}
