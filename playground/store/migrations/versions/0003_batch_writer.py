"""Batches name the process running them, so a batch whose process died can be recovered.

``eval_batches.writer`` is ``host:pid:token`` like ``results.writer``; a batch left
``running`` or ``paused`` by a dead writer becomes ``interrupted`` (and can be resumed).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("eval_batches") as batch:
        batch.add_column(sa.Column("writer", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eval_batches") as batch:
        batch.drop_column("writer")
