"""What the Evaluate and Leaderboard pages call: one function per user action.

Uses the process-wide store and catalog of :mod:`playground.services`; batches run in a
process-wide :class:`~playground.evaluation.batch.BatchManager`, so they survive reruns
and page changes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from playground import services
from playground.evaluation.batch import BatchJob, BatchManager
from playground.evaluation.datasets import Dataset
from playground.evaluation.leaderboard import LeaderboardRow, ModelFigures, build_leaderboard
from playground.evaluation.plan import BatchEstimate, BatchSpec, estimate, load_inputs, plan_batch
from playground.evaluation.report import pass_rates
from playground.evaluation.templates import PromptTemplate
from playground.providers.base import Provider
from playground.providers.registry import build_providers
from playground.store.eval_repository import (
    Answer,
    CellState,
    TemplateVersion,
    add_rating,
    add_vote,
    all_cells,
    batch_cells,
    comparable_answers,
    get_batch,
    list_batches,
    list_datasets,
    list_template_names,
    model_figures,
    save_dataset,
    save_template_version,
    template_versions,
    voted_pairs,
    votes_by_model,
)

MANAGER = BatchManager()


def save_template(name: str, system: str, user: str, note: str = "") -> TemplateVersion:
    """Save a template version (unchanged text keeps the current version)."""
    with services.get_store().session() as session, session.begin():
        return save_template_version(session, name, PromptTemplate(system, user), note=note)


def templates() -> dict[str, list[TemplateVersion]]:
    """Every template's versions, newest first, by name."""
    with services.get_store().session() as session, session.begin():
        return {n: template_versions(session, n) for n in list_template_names(session)}


def store_dataset(name: str, dataset: Dataset) -> int:
    """Save a parsed dataset; returns its id."""
    with services.get_store().session() as session, session.begin():
        return save_dataset(session, name, dataset)


def datasets() -> list[tuple[int, str, int]]:
    """``(id, name, rows)`` of the saved datasets, newest first."""
    with services.get_store().session() as session, session.begin():
        return list_datasets(session)


def batches() -> list[tuple[int, str, str]]:
    """``(id, title, status)`` of every batch, newest first."""
    with services.get_store().session() as session, session.begin():
        return list_batches(session)


def check_and_estimate(spec: BatchSpec) -> BatchEstimate:
    """Validate ``spec`` (raises ``InvalidRequestError``) and estimate requests and tokens."""
    catalog = services.get_catalog()
    with services.get_store().session() as session, session.begin():
        inputs = load_inputs(session, spec)
    models = [cell.model for cell in inputs.cells()]
    judged = len(models) if any(a.kind == "llm_judge" for a in spec.assertions) else 0
    return estimate(
        models,
        catalog.cost_of,
        judge_model=spec.judge.model if spec.judge else None,
        judged_cells=judged,
        budget_tokens=spec.budget_tokens,
    )


def _job_factory(batch_id: int, connection: services.Connection) -> BatchJob:
    settings = services.get_settings()
    catalog = services.get_catalog()
    configured = settings.model_copy(update={"elumenta_base_url": connection.elumenta_base_url})

    def providers() -> Mapping[str, Provider]:
        return build_providers(configured, catalog, elumenta_api_key=connection.api_key)

    return BatchJob(
        services.get_store(), batch_id, catalog, providers, model_timeout_s=settings.model_timeout_s
    )


def start_batch(spec: BatchSpec, connection: services.Connection) -> BatchJob:
    """Plan and start a batch in the background; returns its job."""
    with services.get_store().session() as session, session.begin():
        batch_id = plan_batch(session, spec)
    return MANAGER.start(lambda: _job_factory(batch_id, connection), batch_id)


def resume_batch(batch_id: int, connection: services.Connection) -> BatchJob:
    """The running job of ``batch_id``, or a new one continuing it where it stopped."""
    return MANAGER.start(lambda: _job_factory(batch_id, connection), batch_id)


def running_job(batch_id: int) -> BatchJob | None:
    """The job of ``batch_id`` if this process runs (or ran) it."""
    return MANAGER.get(batch_id)


def cells(batch_id: int) -> list[CellState]:
    """A batch's cells with their answers, in matrix order."""
    with services.get_store().session() as session, session.begin():
        return batch_cells(session, batch_id)


def batch_title(batch_id: int) -> str | None:
    """The title of a batch, or ``None`` if it does not exist."""
    with services.get_store().session() as session, session.begin():
        batch = get_batch(session, batch_id)
        return None if batch is None else batch.title


def rate(result_id: int, rater: str, kind: str, value: float | None, note: str | None) -> None:
    """Store a human rating of one answer."""
    with services.get_store().session() as session, session.begin():
        add_rating(session, result_id, rater, kind, value=value, note=note)


@dataclass(frozen=True)
class BlindPair:
    """Two answers to the same input in shuffled order; models stay hidden until the vote."""

    a: Answer
    b: Answer


def next_blind_pair(batch_id: int, rater: str, rng: random.Random) -> BlindPair | None:
    """A random pair of different models' answers to one input that ``rater`` has not judged."""
    with services.get_store().session() as session, session.begin():
        groups = comparable_answers(session, batch_id)
        seen = voted_pairs(session, rater)
    candidates = [
        (x, y)
        for group in groups
        for i, x in enumerate(group)
        for y in group[i + 1 :]
        if x.model != y.model and frozenset((x.result_id, y.result_id)) not in seen
    ]
    if not candidates:
        return None
    first, second = rng.choice(candidates)
    if rng.random() < 0.5:
        first, second = second, first
    return BlindPair(first, second)


def vote(pair: BlindPair, winner: str, rater: str) -> None:
    """Store ``rater``'s vote (``a``, ``b``, ``tie`` or ``both_bad``) on a blind pair."""
    with services.get_store().session() as session, session.begin():
        add_vote(session, pair.a.result_id, pair.b.result_id, winner, rater)


def leaderboard() -> list[LeaderboardRow]:
    """Every model's votes, rating, pass rate, cost and latency, best first."""
    with services.get_store().session() as session, session.begin():
        votes = votes_by_model(session)
        rates = pass_rates(all_cells(session))
        figures = {m: ModelFigures(t, ms) for m, (t, ms) in model_figures(session).items()}
    return build_leaderboard(votes, rates, figures)
