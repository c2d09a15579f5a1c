"""An answer cut at ``max_tokens``: ``results.truncated``.

The model stopped because it reached the request's ``max_tokens`` (an OpenAI-compatible
server's ``finish_reason: "length"``): the answer is complete as sent, but not whole, and
History, Compare, the CLI and batch reports say so. Earlier answers were not known to be
cut and stay ``false``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "results",
        sa.Column("truncated", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("truncated")
