"""The judging pass that ends a batch: the LLM judge grades its completed answers within
what the batch's budget cap and its owner's budget leave.

The shard that finishes a batch with ``llm_judge`` assertions runs it before completing
the batch (:class:`~playground.evaluation.batch.BatchJob`);
:func:`~playground.evaluation.judging.cells.grade_batch` grades the answers.
"""

from __future__ import annotations

from collections.abc import Callable

from playground.errors import InsufficientTokensError, user_message
from playground.evaluation.assertions import is_judged
from playground.evaluation.judging.cells import grade_batch
from playground.evaluation.judging.grader import make_grader
from playground.evaluation.recording import Tally
from playground.evaluation.scheduling import JobRun
from playground.store.db import Store
from playground.store.eval_claims import batch_control, cell_figures


def judge_answers(
    store: Store, batch_id: int, run: JobRun, announce: Callable[[str], None]
) -> tuple[str | None, Tally] | None:
    """Grade the completed answers' ``llm_judge`` assertions, within what the budget leaves.

    ``announce`` is told when the grading starts. Returns why the batch must pause (the
    judge was refused for lack of balance, or the owner's budget is spent; the answers not
    graded yet are graded on a resume), else ``None``; and the batch's tally once graded.
    ``None`` without judging.
    """
    spec, price = run.spec, run.judge_price
    if spec.judge is None or price is None:
        return None
    with store.session() as session, session.begin():
        tally = Tally.of(cell_figures(session, batch_id))
        control = batch_control(session, batch_id)
    budget = control.budget_tokens if control else None
    max_cells = None
    if budget is not None and price:
        max_cells = max(0, budget - tally.spent_tokens - tally.judge_tokens) // price
    owner_cells = _judgeable_within_owner_budget(store, run, price)
    owner_binding = owner_cells is not None and (max_cells is None or owner_cells < max_cells)
    if owner_binding:
        max_cells = owner_cells
    announce(f"Judging the answers with {spec.judge.model}…")
    grader = make_grader(run.providers[spec.judge.provider], spec.judge.model)
    grading = grade_batch(store, batch_id, run.inputs, grader, max_cells=max_cells)
    refused = None
    try:
        run.runner.run_coroutine(grading)
    except InsufficientTokensError as exc:
        refused = (
            f"Paused: the judge model {spec.judge.model} was refused: {user_message(exc)} "
            "Top up the balance, then resume to grade the remaining answers."
        )
    with store.session() as session, session.begin():
        figures = cell_figures(session, batch_id)
        tally = Tally.of(figures)
    unjudged = sum(f.status == "completed" and not is_judged(f.assertions) for f in figures)
    if refused is None and unjudged and owner_binding and run.spending is not None:
        # Stopped by the owner's budget, not the batch's cap: pause, as the answers do.
        with store.session() as session, session.begin():
            refused = run.spending.budget_message(session, price)
    return refused, tally


def _judgeable_within_owner_budget(store: Store, run: JobRun, price: int) -> int | None:
    """How many answers the judge may grade within the owner's budget (``None``: no
    owner budget applies, as in local mode)."""
    if run.spending is None or not price:
        return None
    with store.session() as session, session.begin():
        left = run.spending.budget_left(session)
    return None if left is None else left // price
