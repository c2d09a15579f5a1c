"""The History page's walk and count statements, built once per filter shape.

Building a statement and its cache key costs more than SQLite takes to run a page's
statements, so each shape (:class:`~playground.store.filters.FilterShape`) is built once and
run with the filter's values as bound parameters (:func:`~playground.store.filters.filter_values`),
finding its compiled form in SQLAlchemy's cache. The viewer's visibility is one of the
shape's conditions, like every other filter.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from playground.store.eval_models import BatchCellRow
from playground.store.filters import FilterShape, shaped_conditions
from playground.store.models import Comparison, Result

_RESULTS = cast(sa.Table, Result.__table__)
_COMPARISONS = cast(sa.Table, Comparison.__table__)
_BATCH_ANSWERS = _RESULTS.alias("batch_answers")
_BATCH_CELLS = cast(sa.Table, BatchCellRow.__table__)
_BATCH_OF = sa.select(sa.func.min(_BATCH_CELLS.c.batch_id)).select_from(
    _BATCH_ANSWERS.join(_BATCH_CELLS, _BATCH_CELLS.c.result_id == _BATCH_ANSWERS.c.id)
)


def batch_of(comparison_id: sa.ColumnExpressionArgument[int]) -> ColumnElement[int | None]:
    """The batch whose cells the comparison ``comparison_id`` answers (the lowest batch id
    among its answers' cells), or NULL: a scalar subquery the database runs per row,
    through the ``results`` comparison index and the ``batch_cells`` result index."""
    return _BATCH_OF.where(_BATCH_ANSWERS.c.comparison_id == comparison_id).scalar_subquery()


@functools.cache
def walk_statement(shape: FilterShape, continued: bool) -> sa.Select[*tuple[Any, ...]]:
    """One step of the newest-first walk over the answers matching a filter of ``shape``.

    Reads the next ``walk_chunk`` matching answers in (creation time, id) order, newest
    first (``continued``: those before ``walk_after_created``, ``walk_after_id``), through
    the time-ordered ``results`` indexes alone, and returns one row per comparison among
    them: its id, creation time and batch (looked up once per comparison, not per answer),
    with on every row how many answers were read and the last one's time and id.
    """
    results = _RESULTS.c
    step = shaped_conditions(shape, cast(type[Result], results))
    if continued:
        after = sa.tuple_(
            sa.bindparam("walk_after_created", type_=results.created_utc.type),
            sa.bindparam("walk_after_id", type_=results.id.type),
        )
        step.append(sa.tuple_(results.created_utc, results.id) < after)
    walked = (
        sa.select(results.created_utc, results.id, results.comparison_id)
        .where(*step)
        .order_by(results.created_utc.desc(), results.id.desc())
        .limit(sa.bindparam("walk_chunk"))
        .cte("walked")
    )
    last = sa.select(walked.c.created_utc).order_by(walked.c.created_utc, walked.c.id).limit(1)
    comparisons = _COMPARISONS.c
    return sa.select(
        comparisons.id,
        comparisons.created_utc,
        batch_of(comparisons.id),
        sa.select(sa.func.count()).select_from(walked).scalar_subquery(),
        last.scalar_subquery(),
        last.with_only_columns(walked.c.id).scalar_subquery(),
    ).where(comparisons.id.in_(sa.select(walked.c.comparison_id)))


@functools.cache
def count_statement(
    shape: FilterShape, batches: bool, newest_answers: bool = False
) -> sa.Select[*tuple[Any, ...]]:
    """How many comparisons among the first ``count_limit`` matching ones (in index order:
    no sort, no grouping of every match) a filter of ``shape`` finds, and how many entries
    they make: each batch's comparisons one entry (``batches``), or none of them; and
    (``newest_answers``) how many answers were read.

    With ``newest_answers`` the comparisons are looked for among the newest
    ``count_answers`` matching answers only: PostgreSQL makes a list of distinct values
    by hashing its whole input, so without a bound on the answers it reads every match
    of the filter before the limit applies. The database looks up each counted
    comparison's batch itself, so no list of ids travels back and forth.
    """
    results = _RESULTS.c
    matching = sa.select(results.comparison_id.label("comparison_id")).where(
        *shaped_conditions(shape, cast(type[Result], results))
    )
    answers = None
    if newest_answers:
        answers = (
            matching.order_by(results.created_utc.desc(), results.id.desc())
            .limit(sa.bindparam("count_answers"))
            .cte("counted_answers")
        )
        matching = sa.select(answers.c.comparison_id)
    found = matching.distinct().limit(sa.bindparam("count_limit")).subquery()
    keyed = sa.select(
        found.c.comparison_id, batch_of(found.c.comparison_id).label("batch_id")
    ).subquery()
    # The batch column is used once per statement: SQLite inlines the subquery, so each
    # use would look the batch up again.
    entries: ColumnElement[int]
    if batches:
        entries = sa.func.count(
            sa.distinct(sa.func.coalesce(keyed.c.batch_id, -keyed.c.comparison_id))
        )
    else:
        entries = sa.func.count() - sa.func.count(keyed.c.batch_id)
    read: ColumnElement[Any] = sa.null()
    if answers is not None:
        read = sa.select(sa.func.count()).select_from(answers).scalar_subquery()
    return sa.select(sa.func.count(), entries, read).select_from(keyed)
