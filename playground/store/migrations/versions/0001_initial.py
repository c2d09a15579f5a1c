"""Initial history schema: comparisons, their tags and one result row per target model.

Full-text search is backend-specific: SQLite gets FTS5 tables kept in sync by triggers,
PostgreSQL GIN indexes on ``to_tsvector('simple', …)`` expressions (no extension needed).
Later features (ratings…) add tables in new revisions; this file never changes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIMESTAMP = sa.DateTime(timezone=True)

# The search expressions; playground/store/filters.py must build exactly these so the
# planner uses the indexes. left() keeps a huge answer under the 1 MB tsvector limit.
PG_RESULT_DOCUMENT = "to_tsvector('simple'::regconfig, left(content, 100000))"
PG_PROMPT_DOCUMENT = "to_tsvector('simple'::regconfig, left(prompt_text, 100000))"

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE results_fts USING fts5(content, content='results', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER results_fts_insert AFTER INSERT ON results BEGIN "
    "INSERT INTO results_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE TRIGGER results_fts_delete AFTER DELETE ON results BEGIN "
    "INSERT INTO results_fts(results_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); END",
    "CREATE TRIGGER results_fts_update AFTER UPDATE OF content ON results BEGIN "
    "INSERT INTO results_fts(results_fts, rowid, content) "
    "VALUES ('delete', old.id, old.content); "
    "INSERT INTO results_fts(rowid, content) VALUES (new.id, new.content); END",
    "CREATE VIRTUAL TABLE comparisons_fts USING fts5(prompt_text, content='comparisons', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER comparisons_fts_insert AFTER INSERT ON comparisons BEGIN "
    "INSERT INTO comparisons_fts(rowid, prompt_text) VALUES (new.id, new.prompt_text); END",
    "CREATE TRIGGER comparisons_fts_delete AFTER DELETE ON comparisons BEGIN "
    "INSERT INTO comparisons_fts(comparisons_fts, rowid, prompt_text) "
    "VALUES ('delete', old.id, old.prompt_text); END",
    "CREATE TRIGGER comparisons_fts_update AFTER UPDATE OF prompt_text ON comparisons BEGIN "
    "INSERT INTO comparisons_fts(comparisons_fts, rowid, prompt_text) "
    "VALUES ('delete', old.id, old.prompt_text); "
    "INSERT INTO comparisons_fts(rowid, prompt_text) VALUES (new.id, new.prompt_text); END",
]

POSTGRES_FTS = [
    f"CREATE INDEX ix_results_content_fts ON results USING gin ({PG_RESULT_DOCUMENT})",
    f"CREATE INDEX ix_comparisons_prompt_fts ON comparisons USING gin ({PG_PROMPT_DOCUMENT})",
]


def upgrade() -> None:
    """Create the tables, indexes and the backend's full-text search objects."""
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("messages_json", JSON, nullable=False),
        sa.Column("params_json", JSON, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("use_cache", sa.Boolean(), nullable=False),
        sa.Column("prompt_text", sa.Text(), nullable=False),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("deleted_utc", UTC_TIMESTAMP, nullable=True),
    )
    op.create_index("ix_comparisons_created_utc", "comparisons", ["created_utc"])
    op.create_index("ix_comparisons_owner_created_utc", "comparisons", ["owner", "created_utc"])
    op.create_index("ix_comparisons_prompt_hash", "comparisons", ["prompt_hash"])
    op.create_index("ix_comparisons_deleted_utc", "comparisons", ["deleted_utc"])

    op.create_table(
        "comparison_tags",
        sa.Column(
            "comparison_id",
            sa.Integer(),
            sa.ForeignKey("comparisons.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("ix_comparison_tags_tag", "comparison_tags", ["tag", "comparison_id"])

    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "comparison_id",
            sa.Integer(),
            sa.ForeignKey("comparisons.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("target_params_json", JSON, nullable=True),
        sa.Column("params_json", JSON, nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("chars_per_s", sa.Float(), nullable=True),
        sa.Column("generation_id", sa.String(100), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=True),
        sa.Column("balance_remaining", sa.Integer(), nullable=True),
        sa.Column("price_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("writer", sa.String(200), nullable=True),
        sa.Column("created_utc", UTC_TIMESTAMP, nullable=False),
        sa.Column("started_utc", UTC_TIMESTAMP, nullable=True),
        sa.Column("finished_utc", UTC_TIMESTAMP, nullable=True),
        sa.Column("updated_utc", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index("ix_results_comparison_id", "results", ["comparison_id", "position"])
    op.create_index(
        "ix_results_model_status_created", "results", ["model", "status", "created_utc", "id"]
    )
    op.create_index("ix_results_model_created", "results", ["model", "created_utc", "id"])
    op.create_index("ix_results_status_created", "results", ["status", "created_utc", "id"])
    op.create_index("ix_results_created", "results", ["created_utc", "id"])
    op.create_index("ix_results_request_hash", "results", ["request_hash"])
    # Covering index for the dashboard: aggregates read it instead of the wide rows.
    op.create_index(
        "ix_results_stats",
        "results",
        [
            "cached",
            "model",
            "provider",
            "status",
            "created_utc",
            "tokens_used",
            "chars",
            "latency_ms",
            "ttft_ms",
            "chars_per_s",
        ],
    )

    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_FTS:
        op.execute(statement)


def downgrade() -> None:
    """Drop everything this revision created."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS results_fts")
        op.execute("DROP TABLE IF EXISTS comparisons_fts")
    op.drop_table("results")
    op.drop_table("comparison_tags")
    op.drop_table("comparisons")
