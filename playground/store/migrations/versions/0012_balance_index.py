"""An index of the answers that reported a balance, per provider in time order.

The Costs page's balance chart over a long period shows each provider's last balance of
each day. With this (partial) index that is one short lookup per day and provider, instead
of reading every answer of the period.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(
        "ix_results_balance",
        "results",
        ["provider", "created_utc", "id"],
        sqlite_where=sa.text("balance_remaining IS NOT NULL"),
        postgresql_where=sa.text("balance_remaining IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_results_balance", table_name="results")
