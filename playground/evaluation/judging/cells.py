"""Grading a batch's ``llm_judge`` assertions with a chosen model, after its answers are in.

Judging runs as a second pass so the batch itself never waits on the grader; each cell's
stored outcome gains the judge's verdict and cost, and ``passed`` is recomputed. A judge
request that fails marks that assertion as an error (the answer stays, paid once); a
judge refused for lack of balance stops the judging, leaving the rest for a resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from playground.errors import InsufficientTokensError
from playground.evaluation.assertions import (
    AssertionOutcome,
    Grader,
    Observation,
    is_judged,
    judge,
    judge_error,
)
from playground.evaluation.plan import BatchInputs, BatchSpec
from playground.store.db import Store
from playground.store.eval_repository import CellState, batch_cells, update_cells


def judge_price_of(spec: BatchSpec, cost_of: Callable[[str], int | None]) -> int | None:
    """What the judge charges per graded answer; ``None`` when the batch has no judging.

    A judge whose price is unknown counts as 0 (the estimate warns about unknown prices).
    """
    if spec.judge is None or not any(a.kind == "llm_judge" for a in spec.assertions):
        return None
    return cost_of(spec.judge.model) or 0


async def grade_batch(
    store: Store,
    batch_id: int,
    inputs: BatchInputs,
    grader: Grader,
    *,
    concurrency: int = 4,
    max_cells: int | None = None,
) -> int:
    """Judge completed cells not judged yet (at most ``max_cells``); returns the judge's cost.

    The cost is in billing tokens; ``max_cells`` lets a budget cap bound the judge's spend.
    Raises :class:`InsufficientTokensError` once the judge is refused for lack of balance:
    the cells graded until then are stored, the others stay to judge on a resume.
    """
    rubrics = [a for a in inputs.spec.assertions if a.kind == "llm_judge"]
    if not rubrics:
        return 0
    with store.session() as session, session.begin():
        cells = [
            c
            for c in batch_cells(session, batch_id)
            if c.status == "completed" and not is_judged(c.assertions)
        ][:max_cells]
    limit = asyncio.Semaphore(concurrency)
    refused: list[InsufficientTokensError] = []

    async def grade(cell: CellState) -> int:
        prompt = inputs.render(cell.key.template_version_id, cell.key.row_index)
        row = inputs.dataset.rows[cell.key.row_index]
        observation = Observation(cell.content, cell.latency_ms, cell.tokens_used, prompt.user)
        outcomes: list[AssertionOutcome] = []
        async with limit:
            if refused:  # the judge's balance ran out: this cell waits for a resume
                return 0
            for spec in rubrics:
                try:
                    outcomes.append(await judge(spec, observation, row, grader))
                except InsufficientTokensError as exc:
                    refused.append(exc)
                    break
        if not outcomes:
            return 0
        # Refused halfway through a cell's rubrics: keep what was paid for, say why not the rest.
        outcomes += [judge_error(spec, str(refused[0])) for spec in rubrics[len(outcomes) :]]
        judged = [{**o.to_dict(), "judge": True} for o in outcomes]
        merged = [*cell.assertions, *judged]
        cost = sum(o.cost_tokens or 0 for o in outcomes)
        with store.session() as session, session.begin():
            update_cells(
                session,
                [cell.id],
                assertions_json=merged,
                passed=all(a["passed"] for a in merged),
                # The owner's spend counts the judge by the day it graded (access/spending).
                judge_tokens=cost,
                judged_utc=datetime.now(UTC),
            )
        return cost

    costs = await asyncio.gather(*(grade(c) for c in cells))
    if refused:
        raise refused[0]
    return sum(costs)
