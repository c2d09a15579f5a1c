"""Usage timings as one row per bucket and measure: ``usage_timings`` replaces
``usage_histograms``.

A bucket's latency (or TTFT) bins are one array of counts starting at bin ``low``
(``BIGINT[]`` on PostgreSQL, a BLOB of little-endian int64 on SQLite) instead of one row
per bin, once per day (``period`` ``day``) and once per calendar month (``month``), so a
period's percentiles read a row per month and model plus its days outside whole months,
not a row per bin. Every
rollup is back-filled here from the existing results by the code's
:func:`playground.store.rollups.rebuild`, so the back-fill and the running sums can never
disagree.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_KEYS = (
    ("day", sa.Date),
    ("model", sa.String(200)),
    ("provider", sa.String(64)),
    ("owner", sa.String(200)),
    ("shared_workspace", sa.Integer),
    ("status", sa.String(16)),
    ("cached", sa.Boolean),
    ("measure", sa.String(16)),
)
_KEY_NAMES = [name for name, _ in _KEYS]


def _keys() -> list[sa.Column[Any]]:
    return [sa.Column(name, kind, primary_key=True) for name, kind in _KEYS]


def upgrade() -> None:
    bind = op.get_bind()
    counts: sa.types.TypeEngine[Any] = (
        postgresql.ARRAY(sa.BigInteger) if bind.dialect.name == "postgresql" else sa.LargeBinary()
    )
    op.create_table(
        "usage_timings",
        *_keys(),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("low", sa.Integer, nullable=False),
        sa.Column("counts", counts, nullable=False),
    )
    op.drop_table("usage_histograms")
    from playground.store.rollups import rebuild

    if bind.dialect.name == "sqlite":
        from playground.store.dialects import register_sqlite_functions

        register_sqlite_functions(bind.connection.driver_connection)
    rebuild(Session(bind=bind))


def downgrade() -> None:
    histograms = op.create_table(
        "usage_histograms",
        *_keys(),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    timings = sa.table(
        "usage_timings",
        *(sa.column(name, kind) for name, kind in _KEYS),
        sa.column("period", sa.String),
        sa.column("low", sa.Integer),
        sa.column("counts"),
    )
    rows = []
    columns = [*(timings.c[name] for name in _KEY_NAMES), timings.c.low, timings.c.counts]
    days = sa.select(*columns).where(timings.c.period == "day")
    for *bucket, low, counts in bind.execute(days):
        array = (
            np.frombuffer(counts, dtype="<i8") if isinstance(counts, bytes) else np.asarray(counts)
        )
        bucket_keys = dict(zip(_KEY_NAMES, bucket, strict=True))
        rows += [
            {**bucket_keys, "bin": low + int(k), "n": int(array[k])} for k in np.flatnonzero(array)
        ]
    if rows:
        op.bulk_insert(histograms, rows)
    op.drop_table("usage_timings")
