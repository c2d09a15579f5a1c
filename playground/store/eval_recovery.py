"""Crash recovery of in-process batches: a batch whose process died becomes ``interrupted``.

A batch running in an app process names that process in ``eval_batches.writer``
(``host:pid:token``, the same as :mod:`playground.store.recovery` uses for results) and
renews ``heartbeat_utc`` every few seconds. When the process is known to be gone (same
host, pid no longer running) or its heartbeat is older than the stale threshold (any host:
a crashed machine, a killed container), the batch would otherwise stay ``running``
forever; it becomes ``interrupted`` and its cells that were in flight go back to
``pending``, so Resume continues it (answers already completed are never requested again).

Batches run by queue workers (``execution = "worker"``) are not interrupted: other workers
take over their stale cells (:mod:`playground.store.eval_claims`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.recovery import writer_alive

# A batch in these states is owned by a live job; "pending" was never claimed by one.
CLAIMED_STATUSES = ("running", "paused", "judging")
DEFAULT_BATCH_STALE_AFTER = timedelta(seconds=60)


def recover_interrupted_batches(
    session: Session,
    *,
    is_alive: Callable[[str | None], bool] = writer_alive,
    stale_after: timedelta = DEFAULT_BATCH_STALE_AFTER,
    now: datetime | None = None,
) -> list[int]:
    """Mark in-process batches left ``running``/``paused``/``judging`` by a dead process
    ``interrupted``.

    Returns the ids of the batches changed. A batch is abandoned when its writer is known
    to be dead, when it has no writer (started before migration 0003), or when its
    heartbeat (its last change, before migration 0005) is older than ``stale_after``.
    Does not commit: the caller owns the transaction.
    """
    now = now or datetime.now(UTC)
    stale_before = now - stale_after
    last_sign = sa.func.coalesce(BatchRow.heartbeat_utc, BatchRow.updated_utc)
    claimed = sa.and_(BatchRow.status.in_(CLAIMED_STATUSES), BatchRow.execution == "in_process")
    rows = session.execute(
        sa.select(BatchRow.id, BatchRow.writer, last_sign < stale_before).where(claimed)
    ).all()
    ids = []
    for batch_id, writer, stale in rows:
        alive = is_alive(writer)
        if alive and not stale:
            continue
        # Guarded like the check: another process may have resumed it (or beaten) meanwhile.
        guard = [BatchRow.writer.is_(None) if writer is None else BatchRow.writer == writer]
        if alive:
            guard.append(last_sign < stale_before)
        # status_message stays: why a paused batch had stopped still holds once interrupted.
        changed = session.execute(
            sa.update(BatchRow)
            .where(BatchRow.id == batch_id, claimed, *guard)
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
        .values(status="pending", claimed_by=None, updated_utc=now)
        .execution_options(synchronize_session=False)
    )
    return ids
