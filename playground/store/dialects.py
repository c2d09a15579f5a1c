"""The few SQL features SQLite lacks, emulated so every query has one form for both backends.

``utc_day(column)`` is the UTC date of a timestamp (``utc_month``: its month's first day),
``day_start(day)`` and ``next_day_start(day)`` the instants a date begins and ends;
``percentile_cont(q) WITHIN GROUP (ORDER BY x)`` is PostgreSQL's and, on SQLite, a Python
aggregate registered per connection.
The usage rollups' timing bins (``log_bin``) and their arrays of counts (``merged_bins``)
are SQL on PostgreSQL and registered Python functions on SQLite.
"""

from __future__ import annotations

import math
import struct
from array import array
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import WithinGroup

if TYPE_CHECKING:
    # numpy is imported where timing bins are merged or decoded: it takes ~0.1 s to import,
    # and most commands (an eval's start-up included) never need it.
    import numpy as np


class utc_day(sa.sql.functions.FunctionElement[date]):
    """The UTC calendar day of a ``*_utc`` timestamp column, as a SQL ``DATE``."""

    type = sa.Date()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


class utc_month(sa.sql.functions.FunctionElement[date]):
    """The first day of the UTC calendar month of a ``*_utc`` timestamp column (``DATE``)."""

    type = sa.Date()
    name = "utc_month"
    inherit_cache = True


@compiles(utc_month, "sqlite")
def _utc_month_sqlite(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, 'start of month')"


@compiles(utc_month, "postgresql")
def _utc_month_postgresql(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"CAST(date_trunc('month', ({value}) AT TIME ZONE 'UTC') AS DATE)"


class day_start(sa.sql.functions.FunctionElement[datetime]):
    """The first instant (UTC) of a ``DATE``, comparable with a ``*_utc`` column through its
    index."""

    type = sa.DateTime(timezone=True)
    name = "day_start"
    inherit_cache = True


class next_day_start(sa.sql.functions.FunctionElement[datetime]):
    """The first instant (UTC) of the day after a ``DATE``."""

    type = sa.DateTime(timezone=True)
    name = "next_day_start"
    inherit_cache = True


# SQLite keeps timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text: 'YYYY-MM-DD' sorts before
# every instant of that day and after every one of the day before, as the instant would.
@compiles(day_start, "sqlite")
def _day_start_sqlite(element: day_start, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(next_day_start, "sqlite")
def _next_day_start_sqlite(element: next_day_start, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+1 day')"


@compiles(day_start, "postgresql")
def _day_start_postgresql(element: day_start, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(CAST({compiler.process(element.clauses, **kw)} AS TIMESTAMP) AT TIME ZONE 'UTC')"


@compiles(next_day_start, "postgresql")
def _next_day_start_postgresql(element: next_day_start, compiler: SQLCompiler, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    return f"((CAST({day} AS TIMESTAMP) + INTERVAL '1 day') AT TIME ZONE 'UTC')"


class unindexed(sa.sql.functions.FunctionElement[Any]):
    """A column the planner must not pick an index for (SQLite: ``+column``; PostgreSQL
    plans from statistics and gets the column as it is)."""

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any] | InstrumentedAttribute[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(unindexed, "postgresql")
def _unindexed_postgresql(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(WithinGroup, "sqlite")
def _within_group_sqlite(element: WithinGroup[Any], compiler: SQLCompiler, **kw: Any) -> str:
    # f(q) WITHIN GROUP (ORDER BY x) becomes f(x, q), the registered aggregate's form.
    function = element.element
    arguments = [*element.order_by, *function.clauses]
    rendered = ", ".join(compiler.process(a, **kw) for a in arguments)
    return f"{function.name}({rendered})"


class PercentileCont:
    """SQLite aggregate ``percentile_cont(x, q)``: PostgreSQL's continuous percentile.

    Linear interpolation between the two closest ranks; NULLs are ignored; no rows -> NULL.
    """

    def __init__(self) -> None:
        self._values = array("d")
        self._fraction = 0.0

    def step(self, value: float | None, fraction: float) -> None:
        """Collect one value."""
        if value is not None:
            self._values.append(value)
            self._fraction = fraction

    def finalize(self) -> float | None:
        """The interpolated percentile of the collected values."""
        if not self._values:
            return None
        ordered = sorted(self._values)
        position = (len(ordered) - 1) * self._fraction
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Add the emulated functions to a new ``sqlite3`` connection."""
    dbapi_connection.create_aggregate("percentile_cont", 2, PercentileCont)
    dbapi_connection.create_function("rollup_bin", 1, rollup_bin, deterministic=True)
    dbapi_connection.create_function("rollup_merge", 4, rollup_merge, deterministic=True)


ROLLUP_GAMMA = 1.02
"""Ratio between neighbouring timing bins: a bin's midpoint is within 1 % of any value in it."""


class log_bin(sa.sql.functions.FunctionElement[int]):
    """The log-spaced bin of a timing in ms: ``floor(ln(max(x, 1)) / ln(ROLLUP_GAMMA))``."""

    type = sa.Integer()
    name = "log_bin"
    inherit_cache = True


@compiles(log_bin, "sqlite")
def _log_bin_sqlite(element: log_bin, compiler: SQLCompiler, **kw: Any) -> str:
    return f"rollup_bin({compiler.process(element.clauses, **kw)})"


@compiles(log_bin, "postgresql")
def _log_bin_postgresql(element: log_bin, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return (
        f"CAST(FLOOR(LN(GREATEST(CAST({value} AS DOUBLE PRECISION), 1.0)) / "
        f"LN({ROLLUP_GAMMA})) AS INTEGER)"
    )


def rollup_bin(value: float | None) -> int | None:
    """The Python side of :class:`log_bin` (SQLite's registered function)."""
    if value is None:
        return None
    return math.floor(math.log(max(float(value), 1.0)) / math.log(ROLLUP_GAMMA))


class lowest(sa.sql.functions.FunctionElement[int]):
    """The smaller of two values (``LEAST`` on PostgreSQL, two-argument ``min`` on SQLite)."""

    type = sa.Integer()
    name = "lowest"
    inherit_cache = True


@compiles(lowest, "sqlite")
def _lowest_sqlite(element: lowest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


@compiles(lowest, "postgresql")
def _lowest_postgresql(element: lowest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"LEAST({compiler.process(element.clauses, **kw)})"


class merged_bins(sa.sql.functions.FunctionElement[Any]):
    """``merged_bins(low_a, counts_a, low_b, counts_b)``: two arrays of bin counts (the
    first counting bin ``low_a``, the second ``low_b``) added up bin by bin, starting at
    the lower of the two ``low``s.

    On SQLite the arrays are little-endian int64 BLOBs (:func:`rollup_merge`); on
    PostgreSQL ``BIGINT[]``.
    """

    name = "merged_bins"
    inherit_cache = True


@compiles(merged_bins, "sqlite")
def _merged_bins_sqlite(element: merged_bins, compiler: SQLCompiler, **kw: Any) -> str:
    return f"rollup_merge({compiler.process(element.clauses, **kw)})"


@compiles(merged_bins, "postgresql")
def _merged_bins_postgresql(element: merged_bins, compiler: SQLCompiler, **kw: Any) -> str:
    low_a, a, low_b, b = (compiler.process(c, **kw) for c in element.clauses)
    # Subscripts outside an array are NULL in PostgreSQL: COALESCE makes them 0.
    first, second = (f"COALESCE(({x})[i - ({low}) + 1], 0)" for x, low in ((a, low_a), (b, low_b)))
    high = f"GREATEST(({low_a}) + cardinality({a}), ({low_b}) + cardinality({b})) - 1"
    # Only compiled column expressions are spliced in, never values.
    general = (
        f"ARRAY(SELECT {first} + {second}"  # noqa: S608
        f" FROM generate_series(LEAST({low_a}, {low_b}), {high}) AS bins(i) ORDER BY i)"
    )
    # One answer's count added into a bin the stored array already has (every final
    # write's case): the array around it sliced and joined again, in C, instead of a
    # subquery over every bin (~40x cheaper at 200 bins).
    at = f"(({low_b}) - ({low_a}))"
    inside = f"cardinality({b}) = 1 AND {at} >= 0 AND {at} < cardinality({a})"
    added = f"({a})[1:{at}] || (({a})[{at} + 1] + ({b})[1]) || ({a})[{at} + 2:]"
    return f"CASE WHEN {inside} THEN {added} ELSE {general} END"


# Up to this many bins, two arrays of counts are merged without numpy.
_SMALL_MERGE = 256


def rollup_merge(low_a: int, a: bytes, low_b: int, b: bytes) -> bytes:
    """The Python side of :class:`merged_bins` (SQLite's registered function)."""
    at = (low_b - low_a) * 8
    if len(b) == 8 and 0 <= at < len(a):
        # One answer's count added into a bin already stored (every final write's case):
        # plain byte slicing, a few times cheaper than building arrays.
        value = int.from_bytes(a[at : at + 8], "little", signed=True)
        value += int.from_bytes(b, "little", signed=True)
        return a[:at] + value.to_bytes(8, "little", signed=True) + a[at + 8 :]
    low = min(low_a, low_b)
    size = max(low_a + len(a) // 8, low_b + len(b) // 8) - low
    if size <= _SMALL_MERGE:
        # A new bin next to the stored ones (an answer's, now and then): plain integers,
        # not numpy, which an eval would otherwise import for it while answers stream.
        counts = [0] * size
        for start, raw in ((low_a - low, a), (low_b - low, b)):
            for offset, (count,) in enumerate(struct.iter_unpack("<q", raw)):
                counts[start + offset] += count
        return struct.pack(f"<{size}q", *counts)
    import numpy as np

    first, second = (np.frombuffer(x, dtype="<i8") for x in (a, b))
    total = np.zeros(size, dtype="<i8")
    total[low_a - low : low_a - low + len(first)] += first
    total[low_b - low : low_b - low + len(second)] += second
    return total.tobytes()


class counts_bytes(sa.sql.functions.FunctionElement[bytes]):
    """A ``merged_bins`` array as bytes, the cheapest form to fetch: the stored BLOB on
    SQLite, PostgreSQL's binary array format (``array_send``) there; decode it with
    :func:`decode_counts`."""

    type = sa.LargeBinary()
    name = "counts_bytes"
    inherit_cache = True


@compiles(counts_bytes, "sqlite")
def _counts_bytes_sqlite(element: counts_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(counts_bytes, "postgresql")
def _counts_bytes_postgresql(element: counts_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    return f"array_send({compiler.process(element.clauses, **kw)})"


# PostgreSQL's binary form of a one-dimensional BIGINT[] without NULLs: a header (number
# of dimensions, has-NULLs flag, element type; length and lower bound of the dimension),
# then each element as its length (always 8) and its big-endian value.
_PG_ARRAY_HEADER = 20
_PG_ELEMENTS = [("length", ">i4"), ("value", ">i8")]


def decode_counts(dialect: str, raw: bytes) -> np.ndarray:
    """The counts of a :class:`counts_bytes` value fetched from ``dialect``."""
    import numpy as np

    if dialect != "postgresql":
        return np.frombuffer(raw, dtype="<i8")
    if len(raw) <= _PG_ARRAY_HEADER:  # an empty array has no dimension
        return np.zeros(0, dtype=np.int64)
    # A big-endian view, not a copy: adding counts up converts them once, all together.
    return np.frombuffer(raw, dtype=_PG_ELEMENTS, offset=_PG_ARRAY_HEADER)["value"]
