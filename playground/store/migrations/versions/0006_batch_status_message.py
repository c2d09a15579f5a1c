"""Why a batch stopped: ``eval_batches.status_message``, e.g. the owner's budget paused it.

Written with every status change (``NULL`` clears it; marking a dead process's batch
interrupted keeps it), so whichever process shows the batch (an app process, or one
watching a worker batch) says why it is paused.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("eval_batches", sa.Column("status_message", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eval_batches") as batch:
        batch.drop_column("status_message")
