"""Grading a batch's ``llm_judge`` assertions with a chosen model, after its answers are in.

Judging runs as a second pass so the batch itself never waits on the grader; each cell's
stored outcome gains the judge's verdict and cost, and ``passed`` is recomputed.
"""

from __future__ import annotations

import asyncio

from playground.evaluation.assertions import Grader, Observation, judge
from playground.evaluation.plan import BatchInputs
from playground.store.db import Store
from playground.store.eval_repository import CellState, batch_cells, update_cells


async def grade_batch(
    store: Store, batch_id: int, inputs: BatchInputs, grader: Grader, *, concurrency: int = 4
) -> int:
    """Judge every completed cell not judged yet; returns the billing tokens the judge cost."""
    rubrics = [a for a in inputs.spec.assertions if a.kind == "llm_judge"]
    if not rubrics:
        return 0
    with store.session() as session, session.begin():
        cells = [
            c
            for c in batch_cells(session, batch_id)
            if c.status == "completed" and not any(a.get("judge") for a in c.assertions)
        ]
    limit = asyncio.Semaphore(concurrency)

    async def grade(cell: CellState) -> int:
        prompt = inputs.render(cell.key.template_version_id, cell.key.row_index)
        row = inputs.dataset.rows[cell.key.row_index]
        observation = Observation(cell.content, cell.latency_ms, cell.tokens_used, prompt.user)
        async with limit:
            outcomes = [await judge(spec, observation, row, grader) for spec in rubrics]
        judged = [{**o.to_dict(), "judge": True} for o in outcomes]
        merged = [*cell.assertions, *judged]
        with store.session() as session, session.begin():
            update_cells(
                session,
                [cell.id],
                assertions_json=merged,
                passed=all(a["passed"] for a in merged),
            )
        return sum(o.cost_tokens or 0 for o in outcomes)

    costs = await asyncio.gather(*(grade(c) for c in cells))
    return sum(costs)
