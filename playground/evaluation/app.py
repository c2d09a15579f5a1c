"""What the Evaluate and Leaderboard pages call: one function per user action.

Uses the process-wide store and catalog of :mod:`playground.services`; batches run in a
process-wide :class:`~playground.evaluation.manager.BatchManager`, so they survive reruns
and page changes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from playground import compare_state, services
from playground.errors import InvalidRequestError
from playground.evaluation.batch import BatchJob
from playground.evaluation.datasets import Dataset
from playground.evaluation.judging import judge_price_of
from playground.evaluation.leaderboard import (
    Grouping,
    LeaderboardRow,
    ModelFigures,
    build_leaderboard,
    cell_entrant,
    cell_figures,
    entrant_votes,
    human_ratings,
)
from playground.evaluation.manager import BatchManager
from playground.evaluation.plan import BatchEstimate, BatchSpec, estimate, load_inputs, plan_batch
from playground.evaluation.report import pass_rates
from playground.evaluation.templates import PromptTemplate, render_for_compare
from playground.evaluation.voting import BlindRound, Verdict, pick_round, round_votes
from playground.providers.base import Message, Provider
from playground.providers.registry import build_providers
from playground.store.eval_ratings import (
    add_rating,
    add_vote,
    comparable_answers,
    model_figures,
    stored_ratings,
    stored_votes,
    voted_pairs,
)
from playground.store.eval_recovery import recover_interrupted_batches
from playground.store.eval_repository import (
    CellState,
    TemplateVersion,
    all_cells,
    batch_cells,
    get_batch,
    get_dataset,
    list_batches,
    list_datasets,
    list_template_names,
    save_dataset,
    save_template_version,
    template_versions,
    version_labels,
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


def dataset_row(dataset_id: int, row_number: int) -> dict[str, Any]:
    """Row ``row_number`` (1-based, as the page shows it) of a saved dataset.

    Raises :class:`InvalidRequestError` when the dataset or the row does not exist.
    """
    with services.get_store().session() as session, session.begin():
        found = get_dataset(session, dataset_id)
    if found is None:
        raise InvalidRequestError(f"No dataset #{dataset_id}.")
    name, dataset = found
    if not 1 <= row_number <= len(dataset.rows):
        raise InvalidRequestError(
            f"Dataset {name!r} has rows 1 to {len(dataset.rows)}, not {row_number}."
        )
    return dict(dataset.rows[row_number - 1])


def load_into_compare(
    state: compare_state.State, template: PromptTemplate, values: Mapping[str, Any] | None
) -> None:
    """Put the template, filled with ``values`` (``None``: raw), in the Compare editor.

    It becomes a fresh conversation (earlier turns cleared); the models and parameters
    picked on Compare stay, ready for Run. Raises :class:`TemplateError` (see
    :func:`render_for_compare`) and then leaves the editor unchanged.
    """
    prompt = render_for_compare(template, values)
    compare_state.load_prompt(state, prompt.system, (Message("user", prompt.user),))


def batches() -> list[tuple[int, str, str]]:
    """``(id, title, status)`` of every batch, newest first.

    Batches left running by a process that died are marked ``interrupted`` first.
    """
    with services.get_store().session() as session, session.begin():
        recover_interrupted_batches(session)
        return list_batches(session)


def check_and_estimate(spec: BatchSpec) -> BatchEstimate:
    """Validate ``spec`` (raises ``InvalidRequestError``) and estimate requests and tokens."""
    catalog = services.get_catalog()
    with services.get_store().session() as session, session.begin():
        inputs = load_inputs(session, spec)
    models = [cell.model for cell in inputs.cells()]
    judged = len(models) if judge_price_of(spec, catalog.cost_of) is not None else 0
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


def next_blind_round(
    batch_id: int, rater: str, rng: random.Random, size: int = 2
) -> BlindRound | None:
    """Up to ``size`` shuffled answers by different models to one input ``rater`` has not judged."""
    with services.get_store().session() as session, session.begin():
        groups = comparable_answers(session, batch_id)
        seen = voted_pairs(session, rater)
    return pick_round(groups, seen, rng, size)


def vote(blind: BlindRound, verdict: Verdict, rater: str) -> None:
    """Store ``rater``'s verdict on a round (best answer's index, "tie" or "all_bad")."""
    with services.get_store().session() as session, session.begin():
        for result_a, result_b, outcome in round_votes(blind, verdict):
            add_vote(session, result_a, result_b, outcome, rater)


def leaderboard(by: Grouping = "model") -> list[LeaderboardRow]:
    """Every entrant's votes, human ratings, pass rate, cost and latency, best first.

    ``by="model"``: one line per model; ``by="version"``: one per (model, prompt version),
    counting only batch answers (those have a template version).
    """
    with services.get_store().session() as session, session.begin():
        votes = entrant_votes(stored_votes(session), by)
        ratings = human_ratings(stored_ratings(session), by)
        batch_answers = all_cells(session)
        key = cell_entrant(version_labels(session), by)
        if by == "model":
            figures = {m: ModelFigures(t, ms) for m, (t, ms) in model_figures(session).items()}
        else:
            figures = cell_figures(batch_answers, key)
    return build_leaderboard(votes, pass_rates(batch_answers, key), figures, ratings)
