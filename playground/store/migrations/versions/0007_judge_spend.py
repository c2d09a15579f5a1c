"""The LLM judge's spend per batch cell: ``batch_cells.judge_tokens`` and ``judged_utc``.

A judge request is billed like an answer, so it counts toward the batch owner's daily and
monthly budget; the spend query sums these columns by the day the judge graded the cell.
Cells judged before this revision get theirs from the stored assertion outcomes (graded
on their last update).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("batch_cells", sa.Column("judge_tokens", sa.Integer, nullable=True))
    op.add_column("batch_cells", sa.Column("judged_utc", _UTC, nullable=True))
    op.create_index("ix_batch_cells_judged_utc", "batch_cells", ["judged_utc"])
    cells = sa.table(
        "batch_cells",
        sa.column("id", sa.Integer),
        sa.column("assertions_json", sa.JSON),
        sa.column("updated_utc", _UTC),
        sa.column("judge_tokens", sa.Integer),
        sa.column("judged_utc", _UTC),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(cells.c.id, cells.c.assertions_json, cells.c.updated_utc).where(
            cells.c.assertions_json.is_not(None)
        )
    ).all()
    for cell_id, outcomes, updated in rows:
        judged = [o for o in _outcomes(outcomes) if o.get("judge")]
        if judged:
            bind.execute(
                sa.update(cells)
                .where(cells.c.id == cell_id)
                .values(
                    judge_tokens=sum(o.get("cost_tokens") or 0 for o in judged),
                    judged_utc=updated,
                )
            )


def _outcomes(stored: Any) -> list[dict[str, Any]]:
    # JSON columns come back parsed on PostgreSQL and, depending on the driver, as text.
    value = json.loads(stored) if isinstance(stored, str) else stored
    return [o for o in value or () if isinstance(o, dict)]


def downgrade() -> None:
    op.drop_index("ix_batch_cells_judged_utc", "batch_cells")
    with op.batch_alter_table("batch_cells") as batch:
        batch.drop_column("judged_utc")
        batch.drop_column("judge_tokens")
