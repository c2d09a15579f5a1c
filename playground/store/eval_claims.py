"""Batch cells shared by several processes: atomic claims, heartbeats, finishing, reviving.

Functions take a session and never commit. A cell is *claimable* when it is ``pending``,
``cancelled`` (stopped before its answer arrived) or ``running`` under a claim whose
heartbeat is older than ``stale_before`` (its process died or went silent). On PostgreSQL
a claim locks the cells it takes with ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
neither wait for each other nor get the same cell; SQLite has one writer at a time, and
the claiming UPDATE re-checks that every cell is still claimable, so it is atomic there too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.store.eval_models import MATRIX_ORDER, BatchCellRow, BatchRow
from playground.store.eval_repository import transition_batch
from playground.store.models import Result

# Cells still to do apart from stale running ones; "cancelled" ones never got their answer.
UNCLAIMED_TODO = ("pending", "cancelled")
# A worker batch in these states needs a process working on it.
ACTIVE_STATUSES = ("running", "judging")


@dataclass(frozen=True)
class BatchControl:
    """What a process working on a batch checks between claims."""

    status: str
    budget_tokens: int | None


@dataclass(frozen=True)
class ClaimedCell:
    """A cell as a claim returns it: what to run and how often it was tried."""

    id: int
    version_id: int
    row_index: int
    provider: str
    model: str
    attempts: int


@dataclass(frozen=True)
class CellFigures:
    """A cell's status and spend without its answer's text (cheap to read for progress)."""

    status: str
    model: str
    passed: bool | None
    assertions: tuple[dict[str, Any], ...]
    tokens_used: int | None
    cached: bool
    updated_utc: datetime
    heartbeat_utc: datetime | None


# A value, or a parameter of a statement built once.
Operand = datetime | str | sa.BindParameter[Any]


def _stale(column: Any, stale_before: Operand) -> sa.ColumnElement[bool]:
    return sa.or_(column.is_(None), column < stale_before)


def claimable(stale_before: Operand, claimer: Operand) -> sa.ColumnElement[bool]:
    """The condition of a cell ``claimer`` may take now: one still to do, or one another
    claimer stopped renewing. Never its own running cell: its request may be in flight
    (a job whose heartbeats fell behind would otherwise ask, and pay, for it again)."""
    return sa.or_(
        BatchCellRow.status.in_(UNCLAIMED_TODO),
        sa.and_(
            BatchCellRow.status == "running",
            _stale(BatchCellRow.heartbeat_utc, stale_before),
            sa.or_(BatchCellRow.claimed_by.is_(None), BatchCellRow.claimed_by != claimer),
        ),
    )


def batch_control(session: Session, batch_id: int, *, lock: bool = False) -> BatchControl | None:
    """The batch's status and budget; ``lock`` holds its row until the transaction ends.

    Claims lock it when a budget must be checked, so concurrent claimers see each other's
    reservations (PostgreSQL; SQLite serializes writers anyway).
    """
    query = _CONTROL_LOCKED if lock else _CONTROL
    row = session.execute(query, {"batch_id": batch_id}).first()
    return None if row is None else BatchControl(row.status, row.budget_tokens)


def claimable_cells(
    session: Session, batch_id: int, limit: int, stale_before: datetime, claimer: str
) -> list[ClaimedCell]:
    """Up to ``limit`` claimable cells in matrix order, locked (skipping others' locks)."""
    params = {"batch_id": batch_id, "limit": limit, "stale_before": stale_before}
    return [
        ClaimedCell(*row)
        for row in session.execute(_CLAIMABLE_CELLS, {**params, "claimer": claimer})
    ]


def claim(
    session: Session,
    cell_ids: Sequence[int],
    claimer: str,
    *,
    now: datetime,
    stale_before: datetime,
) -> set[int]:
    """Mark these cells ``running`` for ``claimer``; returns the ids that were still claimable."""
    if not cell_ids:
        return set()
    params = {"cell_ids": list(cell_ids), "claimer": claimer, "now": now}
    claimed = session.scalars(_CLAIM, {**params, "stale_before": stale_before})
    return set(claimed)


# A batch's job claims a row's cells every time a row's answers are in: built once, with
# parameters (building these statements cost more CPU than running them).
_CELLS = cast(sa.Table, BatchCellRow.__table__)
_BATCHES = cast(sa.Table, BatchRow.__table__)
_CONTROL = sa.select(_BATCHES.c.status, _BATCHES.c.budget_tokens).where(
    _BATCHES.c.id == sa.bindparam("batch_id")
)
_CONTROL_LOCKED = _CONTROL.with_for_update()
_CLAIMABLE = claimable(sa.bindparam("stale_before"), sa.bindparam("claimer"))
_CLAIMABLE_CELLS = (
    sa.select(
        _CELLS.c.id,
        _CELLS.c.template_version_id,
        _CELLS.c.row_index,
        _CELLS.c.provider,
        _CELLS.c.model,
        _CELLS.c.attempts,
    )
    .where(_CELLS.c.batch_id == sa.bindparam("batch_id"), _CLAIMABLE)
    .order_by(*MATRIX_ORDER)
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    sa.update(_CELLS)
    .where(_CELLS.c.id.in_(sa.bindparam("cell_ids", expanding=True)), _CLAIMABLE)
    .values(
        status="running",
        claimed_by=sa.bindparam("claimer"),
        heartbeat_utc=sa.bindparam("now"),
        updated_utc=sa.bindparam("now"),
    )
    .returning(_CELLS.c.id)
)


def renew_heartbeat(
    session: Session, batch_id: int, claimer: str, cell_ids: Sequence[int], *, now: datetime
) -> None:
    """Tell everyone the batch, and these cells ``claimer`` is running, are still worked on."""
    session.execute(
        sa.update(BatchRow)
        .where(BatchRow.id == batch_id)
        .values(heartbeat_utc=now)
        .execution_options(synchronize_session=False)
    )
    if cell_ids:
        session.execute(
            sa.update(BatchCellRow)
            .where(
                BatchCellRow.id.in_(cell_ids),
                BatchCellRow.claimed_by == claimer,
                BatchCellRow.status == "running",
            )
            .values(heartbeat_utc=now)
            .execution_options(synchronize_session=False)
        )


def has_live_claims(session: Session, batch_id: int, stale_before: datetime) -> bool:
    """Whether some process is still running cells of this batch (heartbeat not stale)."""
    query = sa.select(BatchCellRow.id).where(
        BatchCellRow.batch_id == batch_id,
        BatchCellRow.status == "running",
        BatchCellRow.heartbeat_utc >= stale_before,
    )
    return session.scalar(query.limit(1)) is not None


def finish_batch(
    session: Session, batch_id: int, status: str, *, all_done: bool, stale_before: datetime
) -> bool:
    """Move a ``running`` batch to ``status`` once nobody works on it; whether this call did.

    ``all_done``: only when no cell is left to do either (a completed batch); otherwise
    (the budget stopped it) cells left behind by a dead process go back to ``pending`` so a
    resume runs them. Of several processes finishing at once, exactly one wins.
    """
    cells = sa.select(BatchCellRow.id).where(BatchCellRow.batch_id == batch_id)
    if all_done:
        busy = cells.where(BatchCellRow.status.in_((*UNCLAIMED_TODO, "running")))
    else:
        busy = cells.where(
            BatchCellRow.status == "running", BatchCellRow.heartbeat_utc >= stale_before
        )
        session.execute(
            sa.update(BatchCellRow)
            .where(
                BatchCellRow.batch_id == batch_id,
                BatchCellRow.status == "running",
                _stale(BatchCellRow.heartbeat_utc, stale_before),
            )
            .values(status="pending", claimed_by=None)
            .execution_options(synchronize_session=False)
        )
    return transition_batch(
        session, batch_id, status, only_from=("running",), where=[~busy.exists()]
    )


def cell_figures(session: Session, batch_id: int) -> list[CellFigures]:
    """Every cell's status, spend and assertion outcomes (not the answers' text)."""
    query = (
        sa.select(
            BatchCellRow.status,
            BatchCellRow.model,
            BatchCellRow.passed,
            BatchCellRow.assertions_json,
            Result.tokens_used,
            Result.cached,
            BatchCellRow.updated_utc,
            BatchCellRow.heartbeat_utc,
        )
        .outerjoin(Result, Result.id == BatchCellRow.result_id)
        .where(BatchCellRow.batch_id == batch_id)
    )
    return [
        CellFigures(
            status=row.status,
            model=row.model,
            passed=row.passed,
            assertions=tuple(row.assertions_json or ()),
            tokens_used=row.tokens_used,
            cached=bool(row.cached),
            updated_utc=row.updated_utc,
            heartbeat_utc=row.heartbeat_utc,
        )
        for row in session.execute(query)
    ]


def revive_stalled_batches(session: Session, *, stale_before: datetime, now: datetime) -> list[int]:
    """Worker batches nobody works on any more (stale heartbeat): back to ``running``, ours.

    Returns their ids; the caller queues new shards for each. A batch that died while
    judging goes back to ``running`` too, so its shards finish it again (judging skips
    cells already graded). Of several processes reviving at once, exactly one gets each.
    """
    abandoned = (
        BatchRow.execution == "worker",
        BatchRow.status.in_(ACTIVE_STATUSES),
        _stale(BatchRow.heartbeat_utc, stale_before),
    )
    revived = []
    for batch_id in session.scalars(sa.select(BatchRow.id).where(*abandoned)).all():
        changed = session.execute(
            sa.update(BatchRow)
            .where(BatchRow.id == batch_id, *abandoned)
            .values(status="running", status_message=None, heartbeat_utc=now, updated_utc=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(changed, "rowcount", 0):
            revived.append(batch_id)
    return revived
