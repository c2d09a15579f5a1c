"""Each comparison says which evaluation batch ran it (``comparisons.batch_id``).

History shows a batch's comparisons as one entry. Which batch a comparison belongs to was
looked up through its answers' batch cells: every answer of the comparison, then the cell
of each, about five index pages read per comparison and twenty once batches exist. The
History page's paging count does that for up to a thousand comparisons, and was most of
the page's time on PostgreSQL. Now the batch is a column, set when the batch stores the
comparison, read through a small index of the batch comparisons alone.

The back-fill gives each existing comparison the batch of its answers' cells (the lowest
batch id, as the look-up did).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

_BATCHED = sa.text("batch_id IS NOT NULL")


def upgrade() -> None:
    op.add_column("comparisons", sa.Column("batch_id", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE comparisons SET batch_id = (
            SELECT min(batch_cells.batch_id)
            FROM results JOIN batch_cells ON batch_cells.result_id = results.id
            WHERE results.comparison_id = comparisons.id
        )
        WHERE id IN (
            SELECT results.comparison_id
            FROM results JOIN batch_cells ON batch_cells.result_id = results.id
        )
        """
    )
    op.create_index(
        "ix_comparisons_batched",
        "comparisons",
        ["id", "batch_id"],
        sqlite_where=_BATCHED,
        postgresql_where=_BATCHED,
    )
    op.create_index(
        "ix_comparisons_batch_id",
        "comparisons",
        ["batch_id", "id"],
        sqlite_where=_BATCHED,
        postgresql_where=_BATCHED,
    )


def downgrade() -> None:
    op.drop_index("ix_comparisons_batch_id", table_name="comparisons")
    op.drop_index("ix_comparisons_batched", table_name="comparisons")
    # SQLite drops a column in place (3.35+) once no index names it; a copy of the table
    # would take its full-text triggers' locks.
    op.drop_column("comparisons", "batch_id")
