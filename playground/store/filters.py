"""The history filter shared by listings, exports and analytics, and its SQL conditions.

Every condition is on ``results`` (comparison-level filters become ``IN`` subqueries), so
aggregates never need a join and the composite ``results`` indexes stay usable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from playground.principal import Principal, visible_to_viewer
from playground.store.models import Comparison, ComparisonTag, Result

_WORD = re.compile(r"[^\W_]+")
# Must match the index expressions of migration 0001 character for character.
_PG_CONFIG = "'simple'::regconfig"
_PG_DOCUMENT_CHARS = 100_000
_RESULTS_FTS = sa.table("results_fts", sa.column("rowid"))
_COMPARISONS_FTS = sa.table("comparisons_fts", sa.column("rowid"))


@dataclass(frozen=True)
class HistoryFilter:
    """Which results to show; empty fields don't filter.

    ``since``/``until`` bound the time the result row was created (``since <= t < until``).
    ``search`` keeps results whose prompt or answer contains every word (prefix match).
    ``viewer`` (hosted mode) keeps only comparisons that user may see; ``None`` sees all.
    """

    models: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    tag: str | None = None
    search: str | None = None
    owner: str | None = None
    viewer: Principal | None = None


def search_terms(text: str | None) -> list[str]:
    """The words of a search box entry, lower-cased (punctuation separates words)."""
    return [w.lower() for w in _WORD.findall(text or "")]


def result_conditions(
    flt: HistoryFilter,
    dialect: str,
    *,
    include_deleted: bool = False,
    newest: int | None = None,
) -> list[ColumnElement[bool]]:
    """SQL conditions on ``results`` for ``flt``; deleted comparisons are out unless asked.

    With ``newest``, a search keeps only the ``newest`` matching results (highest ids):
    all a page of that many rows in :func:`history_order` needs, and it spares the database
    collecting every match of a common word.
    """
    conditions = _plain_conditions(flt, include_deleted, Result)
    terms = search_terms(flt.search)
    if terms:
        matching = _matching_ids(terms, dialect, flt, include_deleted, newest)
        conditions.append(Result.id.in_(matching))
    return conditions


def history_order(
    flt: HistoryFilter, *, newest_first: bool = True
) -> list[sa.UnaryExpression[Any]]:
    """The order of history listings: by creation time, or by row id when searching.

    Ids grow as rows are written, so both orders agree in practice; a search needs the id
    order because the full-text indexes deliver matches by id.
    """
    if search_terms(flt.search):
        return [Result.id.desc() if newest_first else Result.id.asc()]
    if newest_first:
        return [Result.created_utc.desc(), Result.id.desc()]
    return [Result.created_utc.asc(), Result.id.asc()]


@dataclass(frozen=True)
class FilterShape:
    """Which conditions a filter sets, without their values: all a statement built once
    with bound parameters (:func:`shaped_conditions`) depends on. The search is not part
    of it (searches are built per filter)."""

    models: bool
    statuses: bool
    since: bool
    until: bool
    tag: bool
    owner: bool
    viewer: bool
    viewer_workspaces: bool
    include_deleted: bool


def filter_shape(flt: HistoryFilter, *, include_deleted: bool = False) -> FilterShape:
    """The shape of ``flt``'s conditions other than the search."""
    viewer = flt.viewer
    return FilterShape(
        models=bool(flt.models),
        statuses=bool(flt.statuses),
        since=flt.since is not None,
        until=flt.until is not None,
        tag=bool(flt.tag),
        owner=flt.owner is not None,
        viewer=viewer is not None,
        viewer_workspaces=viewer is not None and bool(viewer.workspace_ids),
        include_deleted=include_deleted,
    )


def filter_values(flt: HistoryFilter) -> dict[str, Any]:
    """The values of the bound parameters :func:`shaped_conditions` names, for ``flt``."""
    viewer = flt.viewer
    return {
        "flt_models": list(flt.models),
        "flt_statuses": list(flt.statuses),
        "flt_since": flt.since,
        "flt_until": flt.until,
        "flt_tag": flt.tag,
        "flt_owner": flt.owner,
        "flt_viewer": viewer.subject if viewer is not None else None,
        "flt_workspaces": sorted(viewer.workspace_ids) if viewer is not None else [],
    }


def shaped_conditions(
    shape: FilterShape, table: type[Result] = Result
) -> list[ColumnElement[bool]]:
    """The conditions of every filter of ``shape`` on ``table``, with their values left as
    bound parameters named as in :func:`filter_values` (given when the statement runs)."""

    return _conditions(
        shape, table, lambda name: sa.bindparam(f"flt_{name}", expanding=name in _LISTS)
    )


_LISTS = frozenset({"models", "statuses", "workspaces"})


def _plain_conditions(
    flt: HistoryFilter, include_deleted: bool, table: type[Result]
) -> list[ColumnElement[bool]]:
    """Every condition of ``flt`` except the search, on ``table`` (``results`` or an alias)."""
    values = filter_values(flt)
    return _conditions(
        filter_shape(flt, include_deleted=include_deleted),
        table,
        lambda name: values[f"flt_{name}"],
    )


def _conditions(
    shape: FilterShape, table: type[Result], value: Callable[[str], Any]
) -> list[ColumnElement[bool]]:
    """The conditions ``shape`` sets, each filter's value given by ``value(name)``: the
    value itself, or a bound parameter standing for it."""
    conditions: list[ColumnElement[bool]] = []
    if shape.models:
        conditions.append(table.model.in_(value("models")))
    if shape.statuses:
        conditions.append(table.status.in_(value("statuses")))
    if shape.since:
        conditions.append(table.created_utc >= value("since"))
    if shape.until:
        conditions.append(table.created_utc < value("until"))
    if shape.tag:
        tagged = sa.select(ComparisonTag.comparison_id).where(ComparisonTag.tag == value("tag"))
        conditions.append(table.comparison_id.in_(tagged.correlate(None)))
    if shape.owner:
        owned = sa.select(Comparison.id).where(Comparison.owner == value("owner"))
        conditions.append(table.comparison_id.in_(owned.correlate(None)))
    if shape.viewer:
        workspaces = value("workspaces") if shape.viewer_workspaces else None
        visible = sa.select(Comparison.id).where(
            visible_to_viewer(Comparison, value("viewer"), workspaces)
        )
        conditions.append(table.comparison_id.in_(visible.correlate(None)))
    if not shape.include_deleted:
        deleted = sa.select(Comparison.id).where(Comparison.deleted_utc.is_not(None))
        conditions.append(table.comparison_id.not_in(deleted.correlate(None)))
    return conditions


def _matching_ids(
    terms: list[str],
    dialect: str,
    flt: HistoryFilter,
    include_deleted: bool,
    newest: int | None,
) -> sa.CompoundSelect[Any]:
    """Ids of results whose answer, or whose comparison's prompt, contains all ``terms``.

    Two branches in a UNION (not an OR of two INs) so each can use its own index. With
    ``newest``, each branch applies the other filters itself and stops at ``newest`` ids,
    walking its index newest first.
    """
    # Aliases: the outer query selects from (or joins) the same tables.
    by_content = cast(type[Result], aliased(Result))
    by_prompt = cast(type[Result], aliased(Result))
    if dialect == "sqlite":
        query = " ".join(f'"{w}"*' for w in terms)
        # The join to results is only needed to apply the other filters inside the branch.
        content_ids = (
            sa.select(_RESULTS_FTS.c.rowid)
            if newest is None
            else sa.select(by_content.id).join_from(
                _RESULTS_FTS, by_content, by_content.id == _RESULTS_FTS.c.rowid
            )
        )
        content_match = sa.literal_column("results_fts").op("MATCH")(query)
        # FTS5 hands out matches in rowid order itself, so a LIMIT stops the walk early.
        content_order = _RESULTS_FTS.c.rowid.desc()
        prompt_ids = sa.select(_COMPARISONS_FTS.c.rowid).where(
            sa.literal_column("comparisons_fts").op("MATCH")(query)
        )
    else:
        tsquery = sa.func.to_tsquery(
            sa.literal_column(_PG_CONFIG), " & ".join(f"{w}:*" for w in terms)
        )
        content_ids = sa.select(by_content.id)
        content_match = _pg_document(by_content.content).bool_op("@@")(tsquery)
        content_order = by_content.id.desc()
        prompt_ids = sa.select(Comparison.id).where(
            _pg_document(Comparison.prompt_text).bool_op("@@")(tsquery)
        )
    content_ids = content_ids.where(content_match)
    prompt_result_ids = sa.select(by_prompt.id).where(
        by_prompt.comparison_id.in_(prompt_ids.correlate(None))
    )
    if newest is None:
        return sa.union(content_ids.correlate(None), prompt_result_ids.correlate(None))
    branches = [
        content_ids.where(*_plain_conditions(flt, include_deleted, by_content))
        .order_by(content_order)
        .limit(newest),
        prompt_result_ids.where(*_plain_conditions(flt, include_deleted, by_prompt))
        .order_by(by_prompt.id.desc())
        .limit(newest),
    ]
    # LIMIT inside a UNION member needs a subquery on SQLite.
    subqueries = [b.correlate(None).subquery() for b in branches]
    return sa.union(*(sa.select(q.c.id) for q in subqueries))


def _pg_document(column: Any) -> ColumnElement[Any]:
    return sa.func.to_tsvector(
        sa.literal_column(_PG_CONFIG), sa.func.left(column, _PG_DOCUMENT_CHARS)
    )
