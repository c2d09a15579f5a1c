"""Crash recovery of batches: a batch whose process died becomes ``interrupted``.

A running batch names its process in ``eval_batches.writer`` (``host:pid:token``, the same
as :mod:`playground.store.recovery` uses for results). When that process is gone, the
batch would otherwise stay ``running`` forever; it becomes ``interrupted`` and its cells
that were in flight go back to ``pending``, so Resume continues it (answers already
completed are never requested again).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.recovery import writer_alive

# A batch in these states is owned by a live job; "pending" was never claimed by one.
CLAIMED_STATUSES = ("running", "paused")


def recover_interrupted_batches(
    session: Session, *, is_alive: Callable[[str | None], bool] = writer_alive
) -> list[int]:
    """Mark batches left ``running``/``paused`` by a dead process ``interrupted``.

    Returns the ids of the batches changed. A batch with no writer (started before
    migration 0003) counts as abandoned; one on another host counts as alive, as for
    results. Does not commit: the caller owns the transaction.
    """
    claimed = session.execute(
        sa.select(BatchRow.id, BatchRow.writer).where(BatchRow.status.in_(CLAIMED_STATUSES))
    ).all()
    dead = [(batch_id, writer) for batch_id, writer in claimed if not is_alive(writer)]
    if not dead:
        return []
    now = datetime.now(UTC)
    ids = []
    for batch_id, writer in dead:
        # Guarded by the writer too: another process may have resumed it meanwhile.
        owner = BatchRow.writer.is_(None) if writer is None else BatchRow.writer == writer
        changed = session.execute(
            sa.update(BatchRow)
            .where(BatchRow.id == batch_id, BatchRow.status.in_(CLAIMED_STATUSES), owner)
            .values(status="interrupted", updated_utc=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(changed, "rowcount", 0):
            ids.append(batch_id)
    if not ids:
        return []
    session.execute(
        sa.update(BatchCellRow)
        .where(BatchCellRow.batch_id.in_(ids), BatchCellRow.status == "running")
        .values(status="pending", updated_utc=now)
        .execution_options(synchronize_session=False)
    )
    return ids
