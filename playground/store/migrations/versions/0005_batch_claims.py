"""Batches shared by several processes: cell claims, heartbeats and the execution mode.

``eval_batches.execution`` says where a batch runs (``in_process``: one app process;
``worker``: queue workers); ``heartbeat_utc`` on a batch and on its cells is renewed by the
process working on them, so work whose heartbeat went stale is taken over whatever host it
ran on. ``batch_cells.claimed_by`` names the process (and shard) that claimed a cell.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain add_column (no batch rebuild): every new column is nullable or has a default.
    op.add_column(
        "eval_batches",
        sa.Column("execution", sa.String(16), nullable=False, server_default="in_process"),
    )
    op.add_column("eval_batches", sa.Column("heartbeat_utc", _UTC, nullable=True))
    op.add_column("batch_cells", sa.Column("claimed_by", sa.String(200), nullable=True))
    op.add_column("batch_cells", sa.Column("heartbeat_utc", _UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_cells") as batch:
        batch.drop_column("heartbeat_utc")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("eval_batches") as batch:
        batch.drop_column("heartbeat_utc")
        batch.drop_column("execution")
