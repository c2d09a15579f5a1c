"""Usage rollups: finished results added up per day and bucket, kept in step with the rows.

Every write that finishes, changes or removes a result runs inside :func:`kept_in_step`:
the rows it touches are taken out of their buckets before the write and put back (as they
now are) after it, in the same transaction. So a retried, replayed or repeated write
changes the rollups exactly as much as it changes the rows: a final write replayed over a
row that is already final first removes the old figures. Only finished rows
(:data:`FINISHED_STATUSES`) count. Increments are ``INSERT ... ON CONFLICT DO UPDATE``,
so concurrent writers on SQLite and PostgreSQL add up rather than overwrite each other.

Timings of completed, non-cached answers (the only ones the Costs page times) are kept as
counts per log-spaced bin (ratio :data:`ROLLUP_GAMMA`), one row per bucket and measure
(``usage_timings``): the counts of bins ``low, low + 1, …`` as one array, kept for the
bucket's day and again for its calendar month, so a period's percentiles read a row per
whole month and per remaining day, per model, rather than one per bin. Any set of buckets
merges by adding counts, and a percentile read from them is within
:data:`RELATIVE_ERROR` of a value between the two neighbouring exact ranks (1 ms absolute
below 1 ms).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from playground.store.dialects import ROLLUP_GAMMA, log_bin, lowest, merged_bins, utc_day
from playground.store.models import (
    FINISHED_STATUSES,
    Comparison,
    Result,
    UsageRollup,
    UsageTiming,
)

RELATIVE_ERROR = (ROLLUP_GAMMA - 1) / (ROLLUP_GAMMA + 1)
"""Largest relative error of a bin's representative value against any value in the bin."""
MEASURES: tuple[str, ...] = ("latency_ms", "ttft_ms")
KEYS: tuple[str, ...] = (
    "day",
    "model",
    "provider",
    "owner",
    "shared_workspace",
    "status",
    "cached",
)
_ROLLUP = cast(sa.Table, UsageRollup.__table__)
_TIMINGS = cast(sa.Table, UsageTiming.__table__)
_RESULTS = cast(sa.Table, Result.__table__)
_COMPARISONS = cast(sa.Table, Comparison.__table__)
# Per dialect: the statements for one result by id, built on first use.
_ONE_ROW: dict[str, tuple[sa.Executable, sa.Select[Any]]] = {}
_TIMING_UPSERT: dict[Any, sa.Executable] = {}


def bin_value(index: int) -> float:
    """The representative value (ms) of bin ``index``: within :data:`RELATIVE_ERROR` of
    every value in ``[GAMMA**index, GAMMA**(index + 1))``."""
    return float(2 * ROLLUP_GAMMA ** (index + 1) / (ROLLUP_GAMMA + 1))


def bin_values(low: int, count: int) -> np.ndarray:
    """:func:`bin_value` of bins ``low … low + count - 1``."""
    return 2 * ROLLUP_GAMMA ** (np.arange(low, low + count) + 1.0) / (ROLLUP_GAMMA + 1)


def merge_bins(parts: Sequence[tuple[int, np.ndarray]]) -> tuple[int, np.ndarray]:
    """``(low, counts)`` arrays of bins added up into one ``(low, counts)``."""
    if not parts:
        return 0, np.zeros(0, dtype=np.int64)
    lows = np.fromiter((low for low, _ in parts), dtype=np.int64, count=len(parts))
    lengths = np.fromiter((len(c) for _, c in parts), dtype=np.int64, count=len(parts))
    low = int(lows.min())
    # Each count's bin, all parts at once: its part's low plus its place within the part.
    starts = np.cumsum(lengths) - lengths
    bins = np.arange(int(lengths.sum())) - np.repeat(starts - (lows - low), lengths)
    counts = np.concatenate([c for _, c in parts])
    return low, np.bincount(bins, weights=counts).astype(np.int64)


@contextmanager
def kept_in_step(session: Session | sa.Connection, rows: ColumnElement[bool]) -> Iterator[None]:
    """Keep the rollups equal to the finished ``results`` matching ``rows`` across a write.

    Use it around any statement that may change those rows' status, figures or sharing,
    or remove them; ``rows`` must select the same results before and after the write.
    One result's final write uses :func:`updated_in_step` instead.
    """
    if _dialect(session) == "postgresql":
        # Lock the rows first, so a concurrent writer of the same row can't have its
        # figures added twice (once here, once there) under READ COMMITTED.
        session.execute(sa.select(Result.id).where(rows).with_for_update(of=Result))
    _add(session, rows, -1)
    yield
    _add(session, rows, 1)


def rebuild(session: Session | sa.Connection) -> int:
    """Recompute every rollup from the results; returns how many results were counted."""
    session.execute(sa.delete(UsageTiming))
    session.execute(sa.delete(UsageRollup))
    _add(session, sa.true(), 1)
    total = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(UsageRollup.results), 0)))
    return int(total or 0)


def _dialect(session: Session | sa.Connection) -> str:
    return (
        session.dialect.name
        if isinstance(session, sa.Connection)
        else session.get_bind().dialect.name
    )


def _key_columns() -> list[ColumnElement[Any]]:
    shared = sa.case(
        (Comparison.visibility == "workspace", sa.func.coalesce(Comparison.workspace_id, 0)),
        else_=0,
    )
    return [
        utc_day(Result.created_utc).label("day"),
        Result.model.label("model"),
        Result.provider.label("provider"),
        sa.func.coalesce(Comparison.owner, "").label("owner"),
        shared.label("shared_workspace"),
        Result.status.label("status"),
        Result.cached.label("cached"),
    ]


def _finished(query: sa.Select[Any], rows: ColumnElement[bool]) -> sa.Select[Any]:
    return query.join_from(Result, Comparison, Comparison.id == Result.comparison_id).where(
        rows, Result.status.in_(FINISHED_STATUSES)
    )


def _add(session: Session | sa.Connection, rows: ColumnElement[bool], sign: int) -> None:
    """Add (``sign=1``) or take out (``-1``) the finished ``rows``' figures."""
    dialect = _dialect(session)
    totals, bins = _statements(dialect, rows)
    params = {"rollup_sign": sign}
    session.execute(totals, params)
    timings = _timing_rows(session.execute(bins, params), sign)
    if timings:
        session.execute(_timing_upsert(dialect), timings)


def updated_in_step(
    session: Session | sa.Connection,
    row_id: int,
    update: sa.Executable,
    params: dict[str, Any],
) -> None:
    """Run ``update`` (an UPDATE of the result ``row_id`` ending in ``.returning(*RETURNED)``)
    with ``params``, keeping the rollups in step as :func:`kept_in_step` does.

    Every final write pays this, so it costs three statements besides the write, run as
    Core statements on the transaction's connection: the row read before the write (on
    PostgreSQL also its lock; its figures taken out if it was finished already), then
    the write itself returns the row's new figures, and its rollup and timing rows (day
    and month in one statement) are added, with no second read.
    """
    connection = _connection(session)
    dialect = connection.dialect.name
    _, locking_read = _one_row(dialect)
    before = connection.execute(locking_read, {"rollup_row": row_id}).first()
    if before is not None and before.finished:
        _add_figures(connection, dialect, before._mapping, -1)
    after = connection.execute(update, params).first()
    if before is not None and after is not None and after.finished:
        # The comparison's keys (owner, sharing) are not changed by a write of its result.
        shared = {"owner": before.owner, "shared_workspace": before.shared_workspace}
        _add_figures(connection, dialect, {**after._mapping, **shared}, 1)


def _connection(session: Session | sa.Connection) -> sa.Connection:
    if isinstance(session, Session):
        session.flush()
        return session.connection()
    return session


def _one_row(dialect: str) -> tuple[sa.Executable, sa.Select[Any]]:
    if dialect not in _ONE_ROW:
        _ONE_ROW[dialect] = _one_row_statements(dialect)
    return _ONE_ROW[dialect]


def _add_figures(connection: sa.Connection, dialect: str, row: Any, sign: int) -> None:
    """Add one finished result's figures (``row``: the columns of :data:`RETURNED` plus
    ``owner`` and ``shared_workspace``) times ``sign`` into its rollup and timing rows."""
    upsert, _ = _one_row(dialect)
    bucket = {key: row[key] for key in KEYS}
    figures: dict[str, float] = {
        "results": sign,
        "tokens_spent": sign * (row["tokens_used"] or 0),
        "output_chars": sign * (row["chars"] or 0),
    }
    for name, column in (("latency", "latency_ms"), ("ttft", "ttft_ms"), ("speed", "chars_per_s")):
        value = row[column]
        figures[f"{name}_n"] = 0 if value is None else sign
        figures[f"{name}_sum"] = 0.0 if value is None else sign * float(value)
    connection.execute(upsert, {**bucket, **figures})
    timed = tuple(m for m in MEASURES if row[f"{m}_bin"] is not None)
    if timed:
        bins = {f"{m}_bin": row[f"{m}_bin"] for m in timed}
        month = bucket["day"].replace(day=1)
        connection.execute(
            _one_timing_upsert(dialect, timed),
            {**bucket, **bins, "month": month, "counts": [sign]},
        )


def _one_timing_upsert(dialect: str, timed: tuple[str, ...]) -> sa.Executable:
    """One answer's bin of each of the ``timed`` measures added into its bucket's day and
    month timing rows: one statement of a row per measure and period (built once)."""
    key = (dialect, *timed)
    if key not in _TIMING_UPSERT:
        columns = _TIMINGS.c
        counts = sa.bindparam("counts", type_=columns.counts.type)

        def row(measure: str, period: str) -> sa.Select[Any]:
            keys = [sa.bindparam(k, type_=columns[k].type).label(k) for k in KEYS]
            keys[0] = sa.bindparam(period, type_=columns.day.type).label("day")
            # WHERE true: SQLite reads an upsert's SELECT without one as a join's ON.
            return sa.select(
                *keys,
                sa.literal(measure, sa.String).label("measure"),
                sa.literal(period, sa.String).label("period"),
                sa.bindparam(f"{measure}_bin", type_=sa.Integer).label("low"),
                counts.label("counts"),
            ).where(sa.true())

        # INSERT … SELECT of a UNION ALL, not a multi-row VALUES: SQLAlchemy caches the
        # compiled form of the former only.
        rows = sa.union_all(*(row(m, p) for m in timed for p in ("day", "month")))
        insert = (postgresql if dialect == "postgresql" else sqlite).insert
        names = [*KEYS, "measure", "period", "low", "counts"]
        _TIMING_UPSERT[key] = _merged_on_conflict(insert(_TIMINGS).from_select(names, rows))
    return _TIMING_UPSERT[key]


def _returned() -> tuple[ColumnElement[Any], ...]:
    results = _RESULTS.c
    timed = (results.status == "completed") & results.cached.is_(False)
    # The NULL test is needed: PostgreSQL's GREATEST(NULL, 1.0) is 1.0, so bin 0.
    bins = [
        sa.case((timed & results[m].is_not(None), log_bin(results[m]))).label(f"{m}_bin")
        for m in MEASURES
    ]
    return (
        utc_day(results.created_utc).label("day"),
        results.model,
        results.provider,
        results.status,
        results.cached,
        # Not IN (…): an expanding list is rendered into the SQL on every execution.
        sa.or_(*(results.status == s for s in FINISHED_STATUSES)).label("finished"),
        results.tokens_used,
        results.chars,
        results.latency_ms,
        results.ttft_ms,
        results.chars_per_s,
        *bins,
    )


RETURNED = _returned()
"""What a write of a result returns for :func:`updated_in_step` (``.returning(*RETURNED)``):
the row's bucket (but its comparison's), figures, timing bins and whether it is finished."""


def _one_row_statements(dialect: str) -> tuple[sa.Executable, sa.Select[Any]]:
    """The rollup upsert of one bucket's figures (bound values), and the query of one
    result's bucket, figures, timing bins (``NULL`` where not timed) and whether it is
    finished, locking the row on PostgreSQL (on SQLite writers take the database's lock).

    Built on the tables, not the ORM classes: executed on a Core connection, they cost no
    ORM compilation or result handling per answer.
    """
    comparisons = _COMPARISONS.c
    shared = sa.case(
        (comparisons.visibility == "workspace", sa.func.coalesce(comparisons.workspace_id, 0)),
        else_=0,
    )
    read = (
        sa.select(
            *RETURNED,
            sa.func.coalesce(comparisons.owner, "").label("owner"),
            shared.label("shared_workspace"),
        )
        .select_from(_RESULTS.join(_COMPARISONS, comparisons.id == _RESULTS.c.comparison_id))
        .where(_RESULTS.c.id == sa.bindparam("rollup_row"))
    )
    locking_read = read.with_for_update(of=_RESULTS) if dialect == "postgresql" else read
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    statement = insert(_ROLLUP)
    added = [c.name for c in _ROLLUP.columns if c.name not in KEYS]
    upsert = statement.on_conflict_do_update(
        index_elements=list(KEYS),
        set_={name: _ROLLUP.c[name] + statement.excluded[name] for name in added},
    )
    return upsert, locking_read


def _statements(dialect: str, rows: ColumnElement[bool]) -> tuple[sa.Executable, sa.Select[Any]]:
    """The upsert that adds the finished ``rows``' figures times ``:rollup_sign``, and the
    query of their timing bins (bucket, measure, bin, count)."""
    keys = _key_columns()
    sign = sa.bindparam("rollup_sign", type_=sa.Integer)

    def total(column: Any) -> ColumnElement[Any]:
        return sign * sa.func.coalesce(sa.func.sum(column), 0)

    def count(column: Any) -> ColumnElement[Any]:
        return sign * sa.func.count(column)

    figures = {
        "results": sign * sa.func.count(),
        "tokens_spent": total(Result.tokens_used),
        "output_chars": total(Result.chars),
        "latency_n": count(Result.latency_ms),
        "latency_sum": total(Result.latency_ms),
        "ttft_n": count(Result.ttft_ms),
        "ttft_sum": total(Result.ttft_ms),
        "speed_n": count(Result.chars_per_s),
        "speed_sum": total(Result.chars_per_s),
    }
    summed = _finished(sa.select(*keys, *(v.label(k) for k, v in figures.items())), rows)
    totals = _upsert(dialect, _ROLLUP, summed.group_by(*keys), list(figures))
    binned = []
    for measure in MEASURES:
        column = getattr(Result, measure)
        bin_ = log_bin(column)
        binned.append(
            _finished(
                sa.select(
                    *keys, sa.literal(measure).label("measure"), bin_.label("bin"), sa.func.count()
                ),
                rows,
            )
            .where(column.is_not(None), Result.status == "completed", Result.cached.is_(False))
            .group_by(*keys, bin_)
        )
    bins = sa.union_all(*binned)
    return totals, sa.select(bins.subquery())


def _timing_rows(binned: Iterable[Sequence[Any]], sign: int) -> list[dict[str, Any]]:
    """``(bucket…, measure, bin, n)`` rows as ``usage_timings`` rows (counts times
    ``sign``): one per bucket and measure for its day, and one for its month."""
    grouped: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for day, *keys, bin_, n in binned:
        for period, first in (("day", day), ("month", day.replace(day=1))):
            grouped[first, *keys, period][int(bin_)] += int(n)
    rows = []
    for bucket, counts in grouped.items():
        low = min(counts)
        dense = np.zeros(max(counts) - low + 1, dtype=np.int64)
        dense[np.fromiter(counts, dtype=np.int64, count=len(counts)) - low] = list(counts.values())
        rows.append(
            {
                **dict(zip((*KEYS, "measure", "period"), bucket, strict=True)),
                "low": low,
                "counts": dense * sign,
            }
        )
    return rows


def _timing_upsert(dialect: str) -> sa.Executable:
    """Add a ``usage_timings`` row's counts into the stored one, bin by bin."""
    if dialect not in _TIMING_UPSERT:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert
        _TIMING_UPSERT[dialect] = _merged_on_conflict(insert(_TIMINGS))
    return _TIMING_UPSERT[dialect]


def _merged_on_conflict(statement: Any) -> sa.Executable:
    """``statement`` (an insert into ``usage_timings``) adding its counts into a stored row
    of the same bucket, measure and period, bin by bin."""
    table, new = _TIMINGS.c, statement.excluded
    upsert: sa.Executable = statement.on_conflict_do_update(
        index_elements=[*KEYS, "measure", "period"],
        set_={
            "low": lowest(table.low, new.low),
            "counts": merged_bins(table.low, table.counts, new.low, new.counts),
        },
    )
    return upsert


def _upsert(
    dialect: str, table: sa.Table, query: sa.Select[Any], added: list[str]
) -> sa.Executable:
    names = [c.name for c in table.columns]
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    statement = insert(table).from_select(names, query)
    upsert: sa.Executable = statement.on_conflict_do_update(
        index_elements=[c for c in names if c not in added],
        set_={name: table.c[name] + statement.excluded[name] for name in added},
    )
    return upsert
