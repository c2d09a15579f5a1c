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
