"""Usage rollups for the Costs page: ``usage_rollups`` and ``usage_histograms``.

Finished results added up per UTC day, model, provider, owner, sharing and status, with
latency and TTFT counts per log-spaced bin, kept in step by every later write. The
back-fill from the existing results is 0010's (the code's
:func:`playground.store.rollups.rebuild`, which writes the newest form of the rollups).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
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
)


def _keys() -> list[sa.Column[object]]:
    return [sa.Column(name, kind, primary_key=True) for name, kind in _KEYS]


def upgrade() -> None:
    op.create_table(
        "usage_rollups",
        *_keys(),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("results", "tokens_spent", "output_chars", "latency_n")
        ),
        sa.Column("latency_sum", sa.Float, nullable=False),
        sa.Column("ttft_n", sa.BigInteger, nullable=False),
        sa.Column("ttft_sum", sa.Float, nullable=False),
        sa.Column("speed_n", sa.BigInteger, nullable=False),
        sa.Column("speed_sum", sa.Float, nullable=False),
    )
    op.create_table(
        "usage_histograms",
        *_keys(),
        sa.Column("measure", sa.String(16), primary_key=True),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_histograms")
    op.drop_table("usage_rollups")
