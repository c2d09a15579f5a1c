"""The few SQL features SQLite lacks, emulated so every query has one form for both backends.

``utc_day(column)`` is the UTC date of a timestamp; ``percentile_cont(q) WITHIN GROUP
(ORDER BY x)`` is PostgreSQL's and, on SQLite, a Python aggregate registered per connection.
"""

from __future__ import annotations

import math
from array import array
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import WithinGroup


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
