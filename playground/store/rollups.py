"""Usage rollups: finished results added up per day and bucket, kept in step with the rows.

Every write that finishes, changes or removes a result runs inside :func:`kept_in_step`:
the rows it touches are taken out of their buckets before the write and put back (as they
now are) after it, in the same transaction. So a retried, replayed or repeated write
changes the rollups exactly as much as it changes the rows: a final write replayed over a
row that is already final first removes the old figures. Only finished rows
(:data:`FINISHED_STATUSES`) count. Increments are ``INSERT ... ON CONFLICT DO UPDATE``,
so concurrent writers on SQLite and PostgreSQL add up rather than overwrite each other.
A result's final write, which every answer makes, has a cheaper form of the same promise:
:func:`updated_in_step`. Its two upserts run as one statement: a database function on
PostgreSQL (:data:`ROLLUP_FUNCTION`, created by migration 0013), called by the write's own
statement; an insert into a TEMP view with an INSTEAD OF trigger on SQLite
(:data:`SQLITE_ROW_ADDER`, on every connection), right after the write.

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

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

from playground.store.dialects import (
    ROLLUP_GAMMA,
    log_bin,
    lowest,
    merged_bins,
    utc_day,
    utc_month,
)
from playground.store.models import (
    FINISHED_STATUSES,
    Comparison,
    Result,
    UsageRollup,
    UsageTiming,
)

if TYPE_CHECKING:
    # numpy is imported where bins are computed: it takes ~0.1 s to import, and keeping
    # the rollups in step as answers are written (an eval's path) never needs it.
    import numpy as np

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
_TIMING_UPSERT: dict[str, sa.Executable] = {}


def bin_value(index: int) -> float:
    """The representative value (ms) of bin ``index``: within :data:`RELATIVE_ERROR` of
    every value in ``[GAMMA**index, GAMMA**(index + 1))``."""
    return float(2 * ROLLUP_GAMMA ** (index + 1) / (ROLLUP_GAMMA + 1))


def bin_values(low: int, count: int) -> np.ndarray:
    """:func:`bin_value` of bins ``low … low + count - 1``."""
    import numpy as np

    return 2 * ROLLUP_GAMMA ** (np.arange(low, low + count) + 1.0) / (ROLLUP_GAMMA + 1)


def merge_bins(parts: Sequence[tuple[int, np.ndarray]]) -> tuple[int, np.ndarray]:
    """``(low, counts)`` arrays of bins added up into one ``(low, counts)``."""
    import numpy as np

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
    A result's final write uses :func:`updated_in_step` instead.
    """
    if _dialect(session) == "postgresql":
        # Lock the rows first, so a concurrent writer of the same row can't have its
        # figures added twice (once here, once there) under READ COMMITTED.
        session.execute(sa.select(Result.id).where(rows).with_for_update(of=Result))
    _add(session, rows, -1)
    yield
    _add(session, rows, 1)


def rebuild(session: Session | sa.Connection) -> int:
    """Recompute every rollup from the results; returns how many results were counted.

    On PostgreSQL the rebuilt tables are analyzed in the same transaction: the planner
    otherwise takes them for (nearly) empty until autovacuum gets to them, and the Costs
    queries over a year ran 1.7x slower at 3M results than at 1M on the same rollups.
    """
    session.execute(sa.delete(UsageTiming))
    session.execute(sa.delete(UsageRollup))
    _add(session, sa.true(), 1)
    if _dialect(session) == "postgresql":
        tables = (UsageRollup.__tablename__, UsageTiming.__tablename__)
        session.execute(sa.text(f"ANALYZE {', '.join(tables)}"))
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
        rows, _is_finished(_RESULTS.c.status)
    )


def _is_finished(status: ColumnElement[str]) -> ColumnElement[bool]:
    # Not IN (…): an expanding list is rendered into the SQL on every execution, and a
    # statement prepared once as SQL text (:class:`_Prepared`) can have none.
    return sa.or_(*(status == s for s in FINISHED_STATUSES))


def _add(session: Session | sa.Connection, rows: ColumnElement[bool], sign: int) -> None:
    """Add (``sign=1``) or take out (``-1``) the finished ``rows``' figures."""
    dialect = _dialect(session)
    totals, bins = _statements(dialect, rows)
    params = {"rollup_sign": sign}
    session.execute(totals, params)
    timings = _timing_rows(session.execute(bins, params), sign)
    if timings:
        session.execute(_timing_upsert(dialect), timings)


@dataclass(frozen=True)
class FinalWrite:
    """A write of one result by id (``:row_id``), in the forms :func:`updated_in_step` runs.

    Build it once per statement with :func:`final_write`: a final write runs on every answer.
    """

    update: sa.Update
    """The write as given."""
    first: sa.Update
    """The write only while the row is not finished yet, returning whether it now is."""
    first_added: sa.Select[Any]
    """PostgreSQL's :attr:`first` with the row's figures added into the rollups in the same
    statement (:data:`ROLLUP_FUNCTION` called on the row it returns): one round trip."""


def final_write(update: sa.Update) -> FinalWrite:
    """``update`` (an UPDATE of ``results`` by id, no RETURNING, its values bound to
    parameters: PostgreSQL runs it inside a WITH clause) made a :class:`FinalWrite`."""
    status = _RESULTS.c.status
    finished = _is_finished(status)
    timed = (
        (status == "completed")
        & _RESULTS.c.cached.is_(False)
        & sa.or_(*(_RESULTS.c[m].is_not(None) for m in MEASURES))
    )
    first = update.where(~finished).returning(finished.label("finished"), timed.label("timed"))
    # Migration 0013 declares no volatility, so the function is VOLATILE: PostgreSQL lets
    # such a function's statements see the changes of the statement calling it, so it
    # reads the row as this update left it.
    written = (
        update.where(~finished)
        .returning(_RESULTS.c.id, finished.label("finished"), timed.label("timed"))
        .cte("written")
    )
    add = getattr(sa.func, ROLLUP_FUNCTION)(written.c.id, 1, written.c.timed)
    first_added = sa.select(
        written.c.finished,
        written.c.timed,
        sa.case((written.c.finished, sa.cast(add, sa.Text))).label("added"),
    )
    return FinalWrite(update, first, first_added)


def updated_in_step(
    session: Session | sa.Connection,
    row_id: int,
    write: FinalWrite,
    params: dict[str, Any],
) -> None:
    """Run ``write`` on the result ``row_id`` with ``params``, keeping the rollups in step
    as :func:`kept_in_step` does.

    Every final write pays this, so the usual case (the row is not finished yet) is one
    statement on PostgreSQL and two on SQLite: the write says whether the row is now
    finished and timed, and the row's figures go into its rollup and timing rows (day and
    month) by SQL that reads them from the row and its comparison, with no read in Python.
    On PostgreSQL the write's statement also calls :data:`ROLLUP_FUNCTION` on the row it
    returns (``write.first_added``: one round trip); on SQLite an insert into
    :data:`SQLITE_ROW_ADDER` follows it. A row that is finished already (a replayed write)
    or was changed by a concurrent writer has its old figures taken out around the write.
    ``write.update`` must name the columns it sets (its values bound to parameters): the
    PostgreSQL form runs it inside a WITH clause.
    """
    connection = _connection(session)
    prepared = _one_row(connection.dialect)
    if connection.dialect.name == "postgresql":
        # The write and the rollups' upkeep in one statement: its row is added already.
        if connection.execute(write.first_added, params).first() is not None:
            return
        # The row's figures are read after its lock, so a concurrent writer's are final.
        prepared.lock.run(connection, {"rollup_row": row_id})
    else:
        written = connection.execute(write.first, params).first()
        if written is not None:
            if written.finished:
                prepared.add(connection, row_id, 1, timed=bool(written.timed))
            return
    prepared.add(connection, row_id, -1, timed=True)
    connection.execute(write.update, params)
    prepared.add(connection, row_id, 1, timed=True)


def _connection(session: Session | sa.Connection) -> sa.Connection:
    if isinstance(session, Session):
        session.flush()
        return session.connection()
    return session


class _Prepared:
    """A statement compiled once for a dialect and run as its SQL text.

    A final write runs these for every answer: ``Connection.execute`` of a Core statement
    spends more CPU on its cache key and parameters than the database spends running it.
    Only plain values (ints, strings) are passed: no type processing is applied.
    """

    def __init__(self, statement: sa.Executable, dialect: sa.Dialect) -> None:
        compiled = cast(SQLCompiler, cast(sa.ClauseElement, statement).compile(dialect=dialect))
        self._sql = str(compiled)
        # The statement's own literals (e.g. a measure's name), merged with the caller's values.
        required = {name for name, bind in compiled.binds.items() if bind.required}
        literals = compiled.construct_params(dict.fromkeys(required))
        self._defaults = {k: v for k, v in literals.items() if k not in required}
        self._positions = compiled.positiontup  # None for a named paramstyle

    def run(self, connection: sa.Connection, params: dict[str, Any]) -> None:
        values = {**self._defaults, **params}
        if self._positions is None:
            connection.exec_driver_sql(self._sql, values)
        else:
            connection.exec_driver_sql(self._sql, tuple(values[n] for n in self._positions))


@dataclass(frozen=True)
class _OneRow:
    """What adds one result's figures (times ``:rollup_sign``) into its rollup row and its
    day and month timing rows, read by SQL from the result ``:rollup_row`` and its
    comparison (nothing where it is not finished or not timed), and the row's lock.

    Both upserts run in one statement, one execution's cost instead of two on every final
    write: a call of the database function :data:`ROLLUP_FUNCTION` on PostgreSQL (one round
    trip), an insert into the TEMP view :data:`SQLITE_ROW_ADDER` on SQLite.
    """

    add_row: _Prepared
    lock: _Prepared

    def add(self, connection: sa.Connection, row_id: int, sign: int, *, timed: bool) -> None:
        params: dict[str, Any] = {"rollup_row": row_id, "rollup_sign": sign, "rollup_timed": timed}
        if connection.dialect.name == "sqlite":
            params["rollup_counts"] = sign.to_bytes(8, "little", signed=True)
        self.add_row.run(connection, params)


_ONE_ROW: dict[str, _OneRow] = {}

ROLLUP_FUNCTION = "playground_rollup_add"
"""PostgreSQL's function ``(row bigint, sign integer, timed boolean)`` adding a result's
figures into the rollups (created by a migration; body: :func:`rollup_function_body`)."""


def _one_row(dialect: sa.Dialect) -> _OneRow:
    if dialect.name not in _ONE_ROW:
        _ONE_ROW[dialect.name] = _one_row_statements(dialect)
    return _ONE_ROW[dialect.name]


def _one_row_statements(dialect: sa.Dialect) -> _OneRow:
    row = sa.bindparam("rollup_row", type_=sa.Integer)
    lock = _Prepared(sa.select(Result.id).where(Result.id == row).with_for_update(), dialect)
    sign = sa.bindparam("rollup_sign", type_=sa.Integer)
    timed = sa.bindparam("rollup_timed", type_=sa.Boolean)
    if dialect.name == "postgresql":
        call = sa.select(getattr(sa.func, ROLLUP_FUNCTION)(row, sign, timed))
        return _OneRow(_Prepared(call, dialect), lock)
    counts = sa.bindparam("rollup_counts", type_=sa.LargeBinary)
    # The connection's trigger on the view :data:`SQLITE_ROW_ADDER` runs both upserts.
    add = sa.text(
        f"INSERT INTO {SQLITE_ROW_ADDER} (row_id, sign, counts, timed) "  # noqa: S608
        "VALUES (:rollup_row, :rollup_sign, :rollup_counts, :rollup_timed)"
    ).bindparams(row, sign, counts, timed)
    return _OneRow(_Prepared(add, dialect), lock)


SQLITE_ROW_ADDER = "playground_rollup_add"
"""A TEMP view on every SQLite connection: inserting ``(row_id, sign, counts, timed)`` into
it runs the two upserts of that result (its INSTEAD OF trigger), in one statement, where
two statements would each pay the driver's and SQLAlchemy's cost per execution."""


@functools.cache
def sqlite_row_adder() -> tuple[str, ...]:
    """The statements creating :data:`SQLITE_ROW_ADDER` and its trigger (TEMP: they live
    with the connection, the database file does not change), run on every new connection.

    Read from the SQLite schema snapshot, which ``make sqlite-schema`` writes with them:
    compiling them (:func:`build_sqlite_row_adder`) takes ~40 ms of every process's first
    connection, an eval's start-up included. A test checks that the stored copy is this
    code's; without one in the snapshot they are compiled.
    """
    from playground.store.fresh import stored_row_adder

    return stored_row_adder() or build_sqlite_row_adder()


def build_sqlite_row_adder() -> tuple[str, ...]:
    """:func:`sqlite_row_adder`'s statements, compiled from this code's upserts."""
    new = sa.literal_column
    upserts = _one_row_upserts(
        "sqlite",
        new("NEW.row_id"),
        new("NEW.sign"),
        counts=new("NEW.counts"),
        timings_if=new("NEW.timed"),
    )
    body = ";\n".join(_inline_sql(u, sqlite.dialect()) for u in upserts)
    return (
        f"CREATE TEMP VIEW IF NOT EXISTS {SQLITE_ROW_ADDER} (row_id, sign, counts, timed) "
        "AS SELECT 0, 0, x'', 0 WHERE 0",
        f"CREATE TEMP TRIGGER IF NOT EXISTS {SQLITE_ROW_ADDER}_row INSTEAD OF INSERT ON "
        f"{SQLITE_ROW_ADDER} BEGIN\n{body};\nEND",
    )


def rollup_function_body() -> str:
    """The PL/pgSQL body of :data:`ROLLUP_FUNCTION`: this code's two upserts of one row.

    A migration stores it; ``tests/test_store_rollups.py`` checks that the database's copy
    is this code's, so a change to the rollups' statements needs a migration replacing it.
    """
    from sqlalchemy.dialects import postgresql  # only PostgreSQL's migration asks

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    counters, timings = (
        _inline_sql(u, dialect)
        for u in _one_row_upserts(
            "postgresql", sa.literal_column("p_row"), sa.literal_column("p_sign")
        )
    )
    return f"\nBEGIN\n{counters};\nIF p_timed THEN\n{timings};\nEND IF;\nEND\n"


def _inline_sql(statement: sa.Executable, dialect: sa.Dialect) -> str:
    """``statement`` as SQL text with its literals inlined, for a stored program's body
    (a trigger's or a function's: neither takes bound parameters)."""
    compiled = cast(sa.ClauseElement, statement).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


def _one_row_upserts(
    dialect: str,
    row_id: ColumnElement[Any],
    sign: ColumnElement[Any],
    *,
    counts: ColumnElement[Any] | None = None,
    timings_if: ColumnElement[Any] | None = None,
) -> tuple[sa.Executable, sa.Executable]:
    """The upserts adding the figures of result ``row_id`` times ``sign`` into its rollup
    row, and into its day and month timing rows (on SQLite ``counts`` is ``sign`` as one
    int64 BLOB). With ``timings_if``, the timing rows are written only where it is true."""
    results = _RESULTS.c
    timed = (results.status == "completed") & results.cached.is_(False)
    # The finished row's bucket, month, figures and timing bins (NULL where not timed),
    # read once per statement. Two statements, not one (PostgreSQL could take the rollup
    # upsert as a CTE): psycopg re-parses every execution of SQL over 4 KB in Python.
    read = _finished(
        sa.select(
            *_key_columns(),
            utc_month(results.created_utc).label("month"),
            *(results[name] for name in _FIGURES),
            *(
                sa.case((timed & results[m].is_not(None), log_bin(results[m]))).label(m + "_bin")
                for m in MEASURES
            ),
        ),
        results.id == row_id,
    )
    postgres = dialect == "postgresql"
    one = read.subquery("one")

    def n(name: str) -> ColumnElement[Any]:
        return sa.case((one.c[name].is_(None), 0), else_=sign)

    def total(name: str) -> ColumnElement[Any]:
        return sign * sa.func.coalesce(one.c[name], 0)

    figures = {
        "results": sign,
        "tokens_spent": total("tokens_used"),
        "output_chars": total("chars"),
        **{f"{short}_n": n(name) for short, name in _TIMED_FIGURES},
        **{f"{short}_sum": total(name) for short, name in _TIMED_FIGURES},
    }
    added = [c.name for c in _ROLLUP.columns if c.name not in KEYS]
    counted = sa.select(*(one.c[k] for k in KEYS), *(figures[a].label(a) for a in added))
    # WHERE true: SQLite reads an upsert's SELECT without one as a join's ON.
    counters = _upsert(dialect, _ROLLUP, counted.where(sa.true()), added)
    # LIMIT 1 (it is one row anyway) keeps SQLite from merging the row into its four
    # (measure, period) rows, which computed each bin (a Python function there) 8 times.
    row = read.limit(1).subquery("one")
    # A UNION ALL, not VALUES: SQLite cannot name a VALUES list's columns.
    periods = sa.union_all(
        *(
            sa.select(
                sa.literal(m, sa.String).label("measure"), sa.literal(p, sa.String).label("period")
            )
            for m in MEASURES
            for p in ("day", "month")
        )
    ).subquery("periods")
    low = sa.case(*((periods.c.measure == m, row.c[m + "_bin"]) for m in MEASURES))
    if postgres:
        from sqlalchemy.dialects import postgresql  # not loaded by processes on SQLite

        counts = postgresql.array([sa.cast(sign, sa.BigInteger)])
    elif counts is None:
        raise ValueError("SQLite's timing counts are a BLOB the caller gives")
    binned = (
        sa.select(
            sa.case((periods.c.period == "day", row.c.day), else_=row.c.month).label("day"),
            *(row.c[k] for k in KEYS[1:]),
            periods.c.measure,
            periods.c.period,
            low.label("low"),
            counts.label("counts"),
        )
        .select_from(row.join(periods, sa.true()))
        .where(low.is_not(None), *(() if timings_if is None else (timings_if,)))
    )
    insert = _insert_of(dialect)
    names = [*KEYS, "measure", "period", "low", "counts"]
    timings = _merged_on_conflict(insert(_TIMINGS).from_select(names, binned))
    return counters, timings


def _insert_of(dialect: str) -> Callable[[sa.Table], Any]:
    """``dialect``'s INSERT, the one with ON CONFLICT (PostgreSQL's dialect is loaded only
    by a process that uses it: on SQLite it is ~25 ms of start-up for nothing)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    return sqlite.insert


_TIMED_FIGURES = (("latency", "latency_ms"), ("ttft", "ttft_ms"), ("speed", "chars_per_s"))
_FIGURES = ("tokens_used", "chars", *(name for _, name in _TIMED_FIGURES))


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
    import numpy as np

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
        _TIMING_UPSERT[dialect] = _merged_on_conflict(_insert_of(dialect)(_TIMINGS))
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
    statement = _insert_of(dialect)(table).from_select(names, query)
    upsert: sa.Executable = statement.on_conflict_do_update(
        index_elements=[c for c in names if c not in added],
        set_={name: table.c[name] + statement.excluded[name] for name in added},
    )
    return upsert
