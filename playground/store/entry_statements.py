"""The History page's walk, count and batch statements, built once per filter shape.

Building a statement and its cache key costs more than SQLite takes to run a page's
statements, so each shape (:class:`~playground.store.filters.FilterShape`) is built once and
run with the filter's values as bound parameters (:func:`~playground.store.filters.filter_values`),
finding its compiled form in SQLAlchemy's cache. The viewer's visibility is one of the
shape's conditions, like every other filter.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from playground.store.eval_models import BatchRow
from playground.store.filters import FilterShape, shaped_conditions
from playground.store.models import Comparison, Result

_RESULTS = cast(sa.Table, Result.__table__)
_COMPARISONS = cast(sa.Table, Comparison.__table__)
_BATCHED = _COMPARISONS.alias("batched")
_BATCH_OF = sa.select(_BATCHED.c.batch_id).where(_BATCHED.c.batch_id.is_not(None))


def batch_of(comparison_id: sa.ColumnExpressionArgument[int]) -> ColumnElement[int | None]:
    """The batch that ran the comparison ``comparison_id``, or NULL: a scalar subquery the
    database runs per row, one probe of the index that holds batch comparisons alone
    (``ix_comparisons_batched``), so a comparison Run made costs a page or two at most."""
    return _BATCH_OF.where(_BATCHED.c.id == comparison_id).scalar_subquery()


@functools.cache
def walk_statement(shape: FilterShape, continued: bool) -> sa.Select[*tuple[Any, ...]]:
    """One step of the newest-first walk over the answers matching a filter of ``shape``.

    Reads the next ``walk_chunk`` matching answers in (creation time, id) order, newest
    first (``continued``: those before ``walk_after_created``, ``walk_after_id``), through
    the time-ordered ``results`` indexes alone, and returns one row per comparison among
    them: its id, creation time and batch, with on every row how many answers were read
    and the last one's time and id.
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
        comparisons.batch_id,
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


_ENTRY_BATCHES = _COMPARISONS.alias("entry_batches")
_ENTRY_ANSWERS = _RESULTS.alias("entry_answers")
# Each batch comparison with its answers: what both summaries read.
_ENTRY_BATCH_ANSWERS = _ENTRY_BATCHES.join(
    _ENTRY_ANSWERS, _ENTRY_ANSWERS.c.comparison_id == _ENTRY_BATCHES.c.id
)
_ENTRY_BATCH_IDS: sa.BindParameter[list[int]] = sa.bindparam("entry_batches", expanding=True)
_SUMMED_COLUMNS = (
    _ENTRY_BATCHES.c.batch_id,
    _ENTRY_ANSWERS.c.id,
    _ENTRY_ANSWERS.c.comparison_id,
    _ENTRY_ANSWERS.c.provider,
    _ENTRY_ANSWERS.c.model,
    _ENTRY_ANSWERS.c.status,
    _ENTRY_ANSWERS.c.price_tokens,
    _ENTRY_ANSWERS.c.created_utc,
)


@functools.cache
def batch_summary_statement(shape: FilterShape) -> sa.CompoundSelect[*tuple[Any, ...]]:
    """What the History page shows of the batches ``entry_batches`` (an expanding bound
    parameter) under a filter of ``shape`` (its values bound when it runs): of each
    batch's comparisons with a matching answer, all the answers, summed up
    (:func:`_summed`).

    A filter on models or statuses matches a few answers of a batch: the comparisons are
    found through the filter's own index (:func:`batch_summary_of_matches`). Any other
    filter matches most of them: the database reads each answer of the batches'
    comparisons once, through the index of batch comparisons, and tells on the way which
    comparisons match (a window over each comparison's answers).
    """
    if shape.models or shape.statuses:
        return batch_summary_of_matches(shaped_conditions(shape))
    batched = _ENTRY_BATCHES.c
    answer = _ENTRY_ANSWERS.c
    conditions = shaped_conditions(shape, cast(type[Result], answer))
    meets = sa.case((sa.and_(*conditions), 1), else_=0) if conditions else sa.literal(1)
    answers = (
        sa.select(
            *_SUMMED_COLUMNS,
            sa.func.max(meets).over(partition_by=answer.comparison_id).label("matches"),
        )
        .select_from(_ENTRY_BATCH_ANSWERS)
        .where(batched.batch_id.in_(_ENTRY_BATCH_IDS))
        .subquery("batch_answers")
    )
    return _summed(sa.select(answers).where(answers.c.matches == 1).cte("matching_answers"))


def batch_summary_of_matches(
    conditions: Sequence[ColumnElement[bool]],
) -> sa.CompoundSelect[*tuple[Any, ...]]:
    """:func:`batch_summary_statement`'s rows for the comparisons of the batches
    ``entry_batches`` with an answer meeting ``conditions`` (on ``results``), found by
    those conditions (through their index) among the batches' comparisons."""
    results = _RESULTS.c
    batched = _ENTRY_BATCHES.c
    in_batches = sa.select(_COMPARISONS.c.id).where(_COMPARISONS.c.batch_id.in_(_ENTRY_BATCH_IDS))
    matched = sa.select(results.comparison_id).where(
        *conditions, results.comparison_id.in_(in_batches)
    )
    answers = (
        sa.select(*_SUMMED_COLUMNS)
        .select_from(_ENTRY_BATCH_ANSWERS)
        .where(batched.batch_id.in_(_ENTRY_BATCH_IDS), batched.id.in_(matched))
    )
    return _summed(answers.cte("matching_answers"))


def _summed(matching: sa.CTE) -> sa.CompoundSelect[*tuple[Any, ...]]:
    """The ``matching`` answers summed up: one row per batch and model (the batch,
    provider and model, the first answer's id for the models' order, how many answers,
    how many did not complete, the latest one's time, the cost and how many answers had
    one, and a NULL title); then one row per batch with NULL provider and model, how many
    comparisons and the batch's title (no statement of its own on the way to the page)."""
    a = matching.c
    by_model = sa.select(
        a.batch_id,
        a.provider,
        a.model,
        sa.func.min(a.id),
        sa.func.count(),
        sa.func.sum(sa.case((a.status != "completed", 1), else_=0)),
        sa.func.max(a.created_utc),
        sa.func.sum(a.price_tokens),
        sa.func.count(a.price_tokens),
        sa.null(),
    ).group_by(a.batch_id, a.provider, a.model)
    title = sa.select(BatchRow.title).where(BatchRow.id == a.batch_id).scalar_subquery()
    by_batch = sa.select(
        a.batch_id,
        sa.null(),
        sa.null(),
        sa.func.count(sa.distinct(a.comparison_id)),
        *(sa.null() for _ in range(5)),
        title,
    ).group_by(a.batch_id)
    return sa.union_all(by_model, by_batch)
