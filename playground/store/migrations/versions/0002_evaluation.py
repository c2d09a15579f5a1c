"""Evaluation: prompt templates with versions, datasets, batches and their cells, ratings, votes.

``results`` is left unchanged: batch answers are ordinary history rows, linked from
``batch_cells.result_id`` (SET NULL when history is deleted, so a batch survives it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def _results_fk(ondelete: str) -> sa.ForeignKey:
    return sa.ForeignKey("results.id", ondelete=ondelete)


def upgrade() -> None:
    """Create the evaluation tables and their indexes."""
    op.create_table(
        "prompt_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_prompt_templates_owner_name", "prompt_templates", ["owner", "name"], unique=True
    )
    op.create_table(
        "template_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "template_id",
            sa.Integer(),
            sa.ForeignKey("prompt_templates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("user_prompt", sa.Text(), nullable=False),
        sa.Column("variables_json", JSON, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_template_versions_template_version",
        "template_versions",
        ["template_id", "version"],
        unique=True,
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("columns_json", JSON, nullable=False),
        sa.Column("rows_json", JSON, nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index("ix_datasets_owner_created", "datasets", ["owner", "created_utc"])
    op.create_table(
        "eval_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column(
            "dataset_id",
            sa.Integer(),
            sa.ForeignKey("datasets.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec_json", JSON, nullable=False),
        sa.Column("budget_tokens", sa.Integer(), nullable=True),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_utc", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_utc", UTC_TIMESTAMP, nullable=True),
    )
    op.create_index("ix_eval_batches_owner_created", "eval_batches", ["owner", "created_utc"])
    op.create_table(
        "batch_cells",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "batch_id",
            sa.Integer(),
            sa.ForeignKey("eval_batches.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "template_version_id",
            sa.Integer(),
            sa.ForeignKey("template_versions.id"),
            nullable=False,
        ),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), _results_fk("SET NULL"), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("assertions_json", JSON, nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("updated_utc", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_batch_cells_identity",
        "batch_cells",
        ["batch_id", "template_version_id", "row_index", "provider", "model"],
        unique=True,
    )
    op.create_index("ix_batch_cells_batch_status", "batch_cells", ["batch_id", "status"])
    op.create_index("ix_batch_cells_result_id", "batch_cells", ["result_id"])
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("result_id", sa.Integer(), _results_fk("CASCADE"), nullable=False),
        sa.Column("rater", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index("ix_ratings_result_id", "ratings", ["result_id"])
    op.create_table(
        "pairwise_votes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("result_a_id", sa.Integer(), _results_fk("CASCADE"), nullable=False),
        sa.Column("result_b_id", sa.Integer(), _results_fk("CASCADE"), nullable=False),
        sa.Column("winner", sa.String(16), nullable=False),
        sa.Column("rater", sa.String(200), nullable=False),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index("ix_pairwise_votes_result_a", "pairwise_votes", ["result_a_id"])
    op.create_index("ix_pairwise_votes_result_b", "pairwise_votes", ["result_b_id"])


def downgrade() -> None:
    """Drop the evaluation tables (children first)."""
    for table in (
        "pairwise_votes",
        "ratings",
        "batch_cells",
        "eval_batches",
        "datasets",
        "template_versions",
        "prompt_templates",
    ):
        op.drop_table(table)
