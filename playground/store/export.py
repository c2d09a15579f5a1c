"""Exporting history as CSV or JSON: one flat row per result, streamed.

Rows carry scalars (``str``, ``int``, ``float``, ``bool``, ``None``) plus ``tags``,
``messages`` and ``params``, which are lists/dicts in JSON and JSON text in CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.safe_text import spreadsheet_safe
from playground.store.filters import HistoryFilter, history_order, result_conditions
from playground.store.models import Comparison, ComparisonTag, Result

ExportFormat = Literal["csv", "json"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "json")
EXPORT_COLUMNS: tuple[str, ...] = (
    "comparison_id",
    "created_at",
    "title",
    "tags",
    "owner",
    "system_prompt",
    "messages",
    "result_id",
    "position",
    "provider",
    "model",
    "params",
    "status",
    "content",
    "tokens_used",
    "balance_remaining",
    "price_tokens",
    "truncated",
    "latency_ms",
    "ttft_ms",
    "chars",
    "chars_per_s",
    "generation_id",
    "error_code",
    "error_message",
    "started_at",
    "finished_at",
    "cached",
    "request_hash",
)
JSON_COLUMNS: frozenset[str] = frozenset({"tags", "messages", "params"})
_BATCH = 1000


def export_rows(session: Session, flt: HistoryFilter | None = None) -> Iterator[dict[str, Any]]:
    """Matching results oldest first, as dicts keyed by :data:`EXPORT_COLUMNS`.

    A generator: consume it while ``session`` is open. Memory stays flat for any size.
    """
    flt = flt or HistoryFilter()
    dialect = session.get_bind().dialect.name
    query = (
        sa.select(Result, Comparison)
        .join(Comparison, Comparison.id == Result.comparison_id)
        .where(*result_conditions(flt, dialect))
        .order_by(*history_order(flt, newest_first=False))
        .execution_options(yield_per=_BATCH)
    )
    for batch in session.execute(query).partitions():
        tags = _tags_of(session, {comparison.id for _, comparison in batch})
        for result, comparison in batch:
            yield _row(result, comparison, tags.get(comparison.id, []))


def write_export(rows: Iterable[Mapping[str, Any]], fmt: ExportFormat, fileobj: TextIO) -> int:
    """Write ``rows`` to ``fileobj`` as CSV (header first) or a JSON array; return the count.

    In CSV, ``None`` is an empty cell, booleans are ``true``/``false``, list/dict
    columns hold JSON text, and text a spreadsheet would run as a formula starts with ``'``
    (:func:`~playground.safe_text.spreadsheet_safe`). JSON keeps every value as stored.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use csv or json.")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(fileobj, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(row.get(k)) for k in EXPORT_COLUMNS})
            count += 1
        return count
    fileobj.write("[")
    for row in rows:
        fileobj.write(",\n" if count else "\n")
        fileobj.write(json.dumps(dict(row), ensure_ascii=False))
        count += 1
    fileobj.write("\n]\n" if count else "]\n")
    return count


def _tags_of(session: Session, comparison_ids: set[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    rows = session.execute(
        sa.select(ComparisonTag.comparison_id, ComparisonTag.tag)
        .where(ComparisonTag.comparison_id.in_(comparison_ids))
        .order_by(ComparisonTag.comparison_id, ComparisonTag.tag)
    )
    for comparison_id, tag in rows:
        tags.setdefault(comparison_id, []).append(tag)
    return tags


def _row(result: Result, comparison: Comparison, tags: list[str]) -> dict[str, Any]:
    return {
        "comparison_id": comparison.id,
        "created_at": _iso(comparison.created_utc),
        "title": comparison.title,
        "tags": tags,
        "owner": comparison.owner,
        "system_prompt": comparison.system_prompt,
        "messages": comparison.messages_json,
        "result_id": result.id,
        "position": result.position,
        "provider": result.provider,
        "model": result.model,
        "params": result.params_json,
        "status": result.status,
        "content": result.content,
        "tokens_used": result.tokens_used,
        "balance_remaining": result.balance_remaining,
        "price_tokens": result.price_tokens,
        "truncated": result.truncated,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        "chars": result.chars,
        "chars_per_s": result.chars_per_s,
        "generation_id": result.generation_id,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "started_at": _iso(result.started_utc),
        "finished_at": _iso(result.finished_utc),
        "cached": result.cached,
        "request_hash": result.request_hash,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return spreadsheet_safe(value)
