"""The time-ordered ``results`` indexes also hold ``comparison_id``.

The History page walks the matching answers newest first through these indexes and
counts the matching comparisons; both read only ``created_utc``, ``id`` and
``comparison_id`` besides the filtered columns. With ``comparison_id`` in the index they
read the index alone, instead of fetching each answer's row (its whole text) from the
table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

# Each index's columns before this revision; comparison_id is added after them.
_INDEXES: dict[str, list[str]] = {
    "ix_results_model_status_created": ["model", "status", "created_utc", "id"],
    "ix_results_model_created": ["model", "created_utc", "id"],
    "ix_results_status_created": ["status", "created_utc", "id"],
    "ix_results_created": ["created_utc", "id"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.drop_index(name, table_name="results")
        op.create_index(name, "results", [*columns, "comparison_id"])


def downgrade() -> None:
    for name, columns in _INDEXES.items():
        op.drop_index(name, table_name="results")
        op.create_index(name, "results", columns)
