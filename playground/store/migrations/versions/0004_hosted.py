"""Hosted team mode: users with roles, budgets and personal keys; workspaces; audit log.

Every owned object (comparison, template, dataset, batch) gains ``workspace_id`` and
``visibility`` (``private`` or ``workspace``); comparisons also gain ``share_token``, the
unguessable part of a share link (an id in a URL never grants access on its own). Local
mode leaves all of these empty and sees everything, as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_UTC = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_OWNED_TABLES = ("comparisons", "prompt_templates", "datasets", "eval_batches")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("daily_budget_tokens", sa.Integer, nullable=True),
        sa.Column("monthly_budget_tokens", sa.Integer, nullable=True),
        sa.Column("requests_per_minute", sa.Integer, nullable=True),
        sa.Column("api_key_encrypted", sa.Text, nullable=True),
        sa.Column("api_key_hint", sa.String(32), nullable=True),
        sa.Column("created_utc", _UTC, nullable=False),
        sa.Column("last_seen_utc", _UTC, nullable=True),
    )
    op.create_index("ix_users_subject", "users", ["subject"], unique=True)

    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_utc", _UTC, nullable=False),
    )
    op.create_index("ix_workspaces_name", "workspaces", ["name"], unique=True)

    op.create_table(
        "workspace_members",
        sa.Column(
            "workspace_id",
            sa.Integer,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_workspace_members_user", "workspace_members", ["user_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_utc", _UTC, nullable=False),
        sa.Column("actor", sa.String(320), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("details_json", _JSON, nullable=False),
    )
    op.create_index("ix_audit_events_created", "audit_events", ["created_utc"])
    op.create_index("ix_audit_events_actor_created", "audit_events", ["actor", "created_utc"])

    # No foreign key on workspace_id: SQLite cannot add one without a batch rebuild, which
    # would drop the full-text search triggers of ``comparisons``; deleting a workspace
    # clears the column in code (``delete_workspace``).
    for table in _OWNED_TABLES:
        op.add_column(table, sa.Column("workspace_id", sa.Integer, nullable=True))
        op.add_column(
            table,
            sa.Column("visibility", sa.String(16), nullable=False, server_default="private"),
        )
        op.create_index(f"ix_{table}_workspace", table, ["workspace_id"])
    op.add_column("comparisons", sa.Column("share_token", sa.String(64), nullable=True))
    op.create_index("ix_comparisons_share_token", "comparisons", ["share_token"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_comparisons_share_token", "comparisons")
    with op.batch_alter_table("comparisons") as batch:
        batch.drop_column("share_token")
    for table in reversed(_OWNED_TABLES):
        op.drop_index(f"ix_{table}_workspace", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("visibility")
            batch.drop_column("workspace_id")
    op.drop_table("audit_events")
    op.drop_table("workspace_members")
    op.drop_table("workspaces")
    op.drop_table("users")
