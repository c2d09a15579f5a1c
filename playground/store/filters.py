"""The history filter shared by listings, exports and analytics, and its SQL conditions.

Every condition is on ``results`` (comparison-level filters become ``IN`` subqueries), so
aggregates never need a join and the composite ``results`` indexes stay usable.
"""

from __future__ import annotations

import functools
import math
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
    content, prompt = _branches(_fts_query(terms, dialect), dialect, walk=newest is not None)
    if newest is None:
        return sa.union(content.ids.correlate(None), prompt.ids.correlate(None))
    branches = [
        branch.ids.where(*_plain_conditions(flt, include_deleted, branch.results))
        .order_by(branch.order)
        .limit(newest)
        for branch in (content, prompt)
    ]
    # LIMIT inside a UNION member needs a subquery on SQLite.
    subqueries = [b.correlate(None).subquery() for b in branches]
    return sa.union(*(sa.select(q.c.id) for q in subqueries))


@dataclass(frozen=True)
class _Branch:
    """One way a result matches a search: the ids it selects, the alias of ``results``
    they come from (for the other filters) and their newest-first order."""

    ids: sa.Select[Any]
    results: type[Result]
    order: sa.UnaryExpression[Any]


def _fts_query(terms: list[str], dialect: str) -> str:
    """The full-text query of ``terms`` (every word, as a prefix) in ``dialect``'s syntax."""
    if dialect == "sqlite":
        return " ".join(f'"{w}"*' for w in terms)
    return " & ".join(f"{w}:*" for w in terms)


def _branches(query: Any, dialect: str, *, walk: bool) -> tuple[_Branch, _Branch]:
    """The search's two branches: results whose answer matches the full-text ``query``
    (:func:`_fts_query`, or a bound parameter standing for it), and results of
    comparisons whose prompt does. ``walk``: the content branch selects from ``results``
    (SQLite: joined to its full-text table) so filters and a newest-first order apply."""
    # Aliases: the outer query selects from (or joins) the same tables.
    by_content = cast(type[Result], aliased(Result))
    by_prompt = cast(type[Result], aliased(Result))
    if dialect == "sqlite":
        # The join to results is only needed to apply the other filters inside the branch.
        content_ids = (
            sa.select(by_content.id).join_from(
                _RESULTS_FTS, by_content, by_content.id == _RESULTS_FTS.c.rowid
            )
            if walk
            else sa.select(_RESULTS_FTS.c.rowid)
        )
        content_match = sa.literal_column("results_fts").op("MATCH")(query)
        # FTS5 hands out matches in rowid order itself, so a LIMIT stops the walk early.
        content_order = _RESULTS_FTS.c.rowid.desc()
        prompt_ids = sa.select(_COMPARISONS_FTS.c.rowid).where(
            sa.literal_column("comparisons_fts").op("MATCH")(query)
        )
    else:
        tsquery = sa.func.to_tsquery(sa.literal_column(_PG_CONFIG), query)
        content_ids = sa.select(by_content.id)
        content_match = _pg_document(by_content.content).bool_op("@@")(tsquery)
        content_order = by_content.id.desc()
        prompt_ids = sa.select(Comparison.id).where(
            _pg_document(Comparison.prompt_text).bool_op("@@")(tsquery)
        )
    prompt_result_ids = sa.select(by_prompt.id).where(
        by_prompt.comparison_id.in_(prompt_ids.correlate(None))
    )
    return (
        _Branch(content_ids.where(content_match), by_content, content_order),
        _Branch(prompt_result_ids, by_prompt, by_prompt.id.desc()),
    )


_PARSE_COST = 5
"""About how many row reads through a bitmap parsing one answer into a ``tsvector`` costs
(at 3M results, collecting a word's 33k matches took about as long as the walk to its
newest 50, which passed ~6.5k rows)."""
_MIN_COLLECT_CAP = 2_000


def selective_matches(
    connection: sa.Connection,
    flt: HistoryFilter,
    newest: int,
    *,
    include_deleted: bool = False,
) -> list[int] | None:
    """The ids of the ``newest`` newest results ``flt`` keeps (search and every other
    condition), highest first, when PostgreSQL expects the search to match few enough
    results to collect them all through the full-text indexes; ``None`` when it does not
    (a common word: :func:`result_conditions` with ``newest`` is then the cheaper way),
    or without a search, or on SQLite (whose full-text index yields matches newest first).

    Why: asked for the newest matches, PostgreSQL walks ``results`` newest first and
    parses every answer until enough match whenever it guesses the word matches
    thousands of rows, and it guesses so for every word outside its statistics (half the
    rarest listed frequency). A rare word then costs a parse of every answer: seconds
    to minutes at millions of results. Collecting the matches from the GIN indexes costs
    one row read per match, the walk one parse (:data:`_PARSE_COST` reads) per row it
    passes. The matches are collected when the planner's estimate is within
    :func:`_collect_cap`, and at most that many are read: an estimate that was too low
    falls back to the walk, a common word never pays for reading its matches.
    """
    terms = search_terms(flt.search)
    if not terms or connection.dialect.name != "postgresql":
        return None
    query = _fts_query(terms, "postgresql")
    matches, rows = _estimates(connection, query)
    cap = _collect_cap(newest, rows)
    if matches > cap:
        return None
    content, prompt = _branches(query, "postgresql", walk=False)
    matched = sa.union(
        *(
            sa.select(q.c.id)
            for q in (
                branch.ids.where(*_plain_conditions(flt, include_deleted, branch.results))
                .limit(cap + 1)
                .correlate(None)
                .subquery()
                for branch in (content, prompt)
            )
        )
    ).subquery()
    # Only the newest travel, each with how many matched in all.
    collected = (
        sa.select(matched.c.id, sa.func.count().over()).order_by(matched.c.id.desc()).limit(newest)
    )
    # The planner is told to use bitmap scans (its row estimate is what misleads it here),
    # and not to JIT-compile: the forced plan's cost passes jit_above_cost, and compiling
    # takes longer (~40-60 ms) than reading a rare word's matches. SET LOCAL lasts until
    # the transaction ends; rolling back the savepoint undoes it. (Plain SQL, several
    # statements a round trip: here each round trip costs more than the reads.)
    connection.exec_driver_sql(
        "SAVEPOINT search_matches; SET LOCAL enable_seqscan = off;"
        " SET LOCAL enable_indexscan = off; SET LOCAL jit = off"
    )
    try:
        newest_rows = connection.execute(collected).all()
    finally:
        connection.exec_driver_sql(
            "ROLLBACK TO SAVEPOINT search_matches; RELEASE SAVEPOINT search_matches"
        )
    # Each branch stops at cap + 1: at most cap in all means both read every match.
    if newest_rows and newest_rows[0][1] > cap:
        return None
    return [int(row[0]) for row in newest_rows]


def _collect_cap(newest: int, rows: float) -> int:
    """How many matches are worth collecting rather than walking for the ``newest``
    newest of ``rows`` results: the walk passes about ``newest * rows / matches`` rows at
    :data:`_PARSE_COST` each, the collection reads ``matches`` rows; both cost the same
    at ``sqrt(_PARSE_COST * newest * rows)`` matches."""
    return max(_MIN_COLLECT_CAP, round(math.sqrt(_PARSE_COST * newest * max(rows, 0.0))))


def _estimates(connection: sa.Connection, query: str) -> tuple[float, float]:
    """How many results PostgreSQL's planner expects the full-text ``query`` to match
    (answers and prompts; other filters aside), and how many results it counts."""
    statement, params = _explained_search(connection.dialect)
    plan = connection.exec_driver_sql(statement, {**params, "search_query": query}).scalar_one()
    branches = [float(p["Plan Rows"]) for p in plan[0]["Plan"].get("Plans", [])]
    if len(branches) != 3:  # not the Append of the three selects: no estimate to trust
        return math.inf, 0.0
    return branches[0] + branches[1], branches[2]


@functools.cache
def _explained_search(dialect: sa.Dialect) -> tuple[str, dict[str, Any]]:
    """``EXPLAIN`` of every match of the query in parameter ``search_query`` (and of every
    result, for their number: one round trip), and its other parameters; compiled once
    (its shape never changes)."""
    content, prompt = _branches(sa.bindparam("search_query"), "postgresql", walk=False)
    every = sa.select(Result.id)
    compiled = sa.union_all(content.ids, prompt.ids, every).compile(dialect=dialect)
    return f"EXPLAIN (FORMAT JSON) {compiled}", dict(compiled.params)


def _pg_document(column: Any) -> ColumnElement[Any]:
    return sa.func.to_tsvector(
        sa.literal_column(_PG_CONFIG), sa.func.left(column, _PG_DOCUMENT_CHARS)
    )
