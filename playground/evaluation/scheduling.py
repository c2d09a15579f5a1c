"""What a batch job schedules: how many cells to claim, the claim, and the comparison of a row.

A :class:`~playground.evaluation.batch.BatchJob` loops over these on its own thread: it
asks :func:`claim_limit` how many cells its window has room for, claims them with
:func:`claim_cells` (atomically, so shards never run a cell twice) within the batch's
budget cap and its owner's limits, and sends each claimed row as one comparison
(:func:`row_request`). A :class:`JobRun` holds what the job works with meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from playground.access.spending import Admission, SpendingGate
from playground.errors import InvalidRequestError
from playground.evaluation.budget import PriceOf, affordable, committed_tokens, rows_of
from playground.evaluation.plan import BatchInputs, BatchSpec
from playground.evaluation.recording import BatchRecorder, RunningCell
from playground.providers.base import Message, Provider
from playground.results import CompareRequest, ModelTarget
from playground.runner import Runner
from playground.store.db import Store
from playground.store.eval_claims import (
    ClaimedCell,
    batch_control,
    cell_figures,
    claim,
    claimable_cells,
)
from playground.templates import RenderedPrompt


@dataclass
class JobRun:
    """What one run of a job works with, from loading the batch until the job ends."""

    spec: BatchSpec
    inputs: BatchInputs
    runner: Runner
    providers: Mapping[str, Provider]
    recorder: BatchRecorder
    concurrency: int
    judge_price: int | None
    row_size: int
    owner: str | None
    spending: SpendingGate | None  # the owner's limits; None for a local batch


@dataclass
class Claim:
    """What one claim got: cells to run, or why none (the batch's status, the budget, or
    the owner's limits: ``held``)."""

    status: str
    cells: list[ClaimedCell] = field(default_factory=list)
    budget_hit: bool = False
    held: Admission | None = None


def claim_limit(run: JobRun, in_flight: int, slow: bool) -> int | None:
    """How many cells to claim with ``in_flight`` cells in flight; ``None``: none yet.

    Whole rows are claimed (one comparison each), up to twice the concurrency in flight
    so the runner never waits for a claim; one cell at a time when the quota runs low
    (``slow``).
    """
    window = 1 if slow else 2 * run.concurrency
    unit = 1 if slow else run.row_size
    free = window - in_flight
    if not in_flight:
        return max(unit, free - free % unit)
    if free >= unit:
        return free - free % unit
    return None


def claim_cells(
    store: Store,
    batch_id: int,
    run: JobRun,
    limit: int,
    *,
    claimer: str,
    stale_before: Callable[[datetime], datetime],
    cost_of: PriceOf,
    settling: Callable[[], bool],
) -> Claim:
    """Claim up to ``limit`` cells for ``claimer`` in one transaction, within the budget.

    Another claimer's cell is taken over when its heartbeat is older than
    ``stale_before(now)`` (until then it counts against the budget as reserved);
    ``settling``: whether the job has answers in flight, asked when the owner's limits
    hold the cells back.
    """

    def claim_in(session: Session) -> Claim:
        now = datetime.now(UTC)
        stale_before_now = stale_before(now)
        control = batch_control(session, batch_id)
        if control is not None and control.budget_tokens is not None:
            # Locked: claimers of this batch then see each other's reservations.
            control = batch_control(session, batch_id, lock=True)
        if control is None:
            raise InvalidRequestError(f"No batch #{batch_id}.")
        if control.status != "running":
            return Claim(control.status)
        cells = claimable_cells(session, batch_id, limit, stale_before_now, claimer)
        if cells and control.budget_tokens is not None:
            figures = cell_figures(session, batch_id)
            spent = committed_tokens(figures, cost_of, run.judge_price, stale_before_now)
            left = control.budget_tokens - spent
            cells = affordable(cells, left, cost_of, run.judge_price)
            if not cells:
                return Claim(control.status, budget_hit=True)
        if cells and run.spending is not None:
            cells, held = _within_owner_limits(session, run.spending, cells, cost_of, settling)
            if held is not None:
                return Claim(control.status, held=held)
        taken = claim(
            session,
            [c.id for c in cells],
            claimer,
            now=now,
            stale_before=stale_before_now,
        )
        return Claim(control.status, [c for c in cells if c.id in taken])

    # While the database is away the claim waits (the batch pauses) and then goes on.
    return store.retrying(claim_in)


def _within_owner_limits(
    session: Session,
    spending: SpendingGate,
    cells: list[ClaimedCell],
    cost_of: PriceOf,
    settling: Callable[[], bool],
) -> tuple[list[ClaimedCell], Admission | None]:
    """The leading whole rows of ``cells`` the owner's limits admit now; or, when none
    is, how the batch must wait or pause."""
    rows = rows_of(cells)
    admission = spending.admit(
        session,
        [(len(row), sum(cost_of(c.model) or 0 for c in row)) for row in rows],
        settling=settling(),
    )
    if not admission.rows:
        return [], admission
    return [c for row in rows[: admission.rows] for c in row], None


def row_request(
    run: JobRun, batch_id: int, group: Sequence[RunningCell], prompt: RenderedPrompt
) -> CompareRequest:
    """The comparison answering one claimed row: its prompt, to each model of ``group``."""
    first = group[0]
    version = run.inputs.versions[first.version_id]
    spec = run.spec
    return CompareRequest(
        messages=(Message("user", prompt.user),),
        system_prompt=prompt.system,
        targets=tuple(ModelTarget(c.provider, c.model, requests_before=c.attempts) for c in group),
        params=spec.params,
        title=f"{spec.title} · {version.name} v{version.version} · row {first.row_index + 1}",
        tags=("batch", f"batch-{batch_id}"),
        owner=run.owner,
        use_cache=spec.use_cache,
    )
