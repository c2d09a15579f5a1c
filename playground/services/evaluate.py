"""What the Evaluate and Leaderboard pages call: one function per user action.

Uses the process-wide store and catalog of :mod:`playground.services.runtime`; batches run in a
process-wide :class:`~playground.evaluation.manager.BatchManager`, so they survive reruns
and page changes, or on queue workers (:mod:`playground.workers.dispatch`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from playground.datasets import Dataset
from playground.errors import InvalidRequestError
from playground.evaluation.batch import BatchJob
from playground.evaluation.judging.cells import judge_price_of
from playground.evaluation.leaderboard import (
    Grouping,
    LeaderboardRow,
    ModelFigures,
    build_leaderboard,
    cell_entrant,
    cell_figures,
    entrant_votes,
    human_ratings,
    named,
)
from playground.evaluation.leaderboard import check_sets as group_by_checks
from playground.evaluation.manager import BatchManager
from playground.evaluation.plan import BatchEstimate, BatchSpec, estimate, load_inputs, plan_batch
from playground.evaluation.promptfoo import run as promptfoo_run
from playground.evaluation.promptfoo.config import PromptfooConfig
from playground.evaluation.report import export_text, pass_rates
from playground.evaluation.voting import BlindRound, Verdict, pick_round, round_votes
from playground.principal import Principal, owns
from playground.providers.base import Provider
from playground.providers.registry import build_providers
from playground.safe_text import reject_nul
from playground.services import ownership, runtime
from playground.store.eval_ratings import (
    add_rating,
    add_vote,
    answer_texts,
    can_see_result,
    comparable_answers,
    model_figures,
    stored_ratings,
    stored_votes,
    voted_pairs,
    with_contents,
)
from playground.store.eval_recovery import recover_interrupted_batches

# The Evaluate tabs draw these; named here so the UI needs no store import.
from playground.store.eval_repository import CellState as CellState
from playground.store.eval_repository import TemplateVersion as TemplateVersion
from playground.store.eval_repository import (
    all_cells,
    batch_assertions,
    batch_cells,
    get_batch,
    get_dataset,
    list_batches,
    list_datasets,
    list_template_names,
    list_templates,
    save_dataset,
    save_template_version,
    template_versions,
    version_labels,
)
from playground.store.export import ExportFormat
from playground.templates import PromptTemplate
from playground.workers import dispatch

# What starting a batch returns, wherever it runs; named here so the UI needs no workers import.
from playground.workers.dispatch import BatchHandle as BatchHandle

MANAGER = BatchManager()
BatchAction = Literal["pause", "resume", "cancel"]


def save_template(
    name: str, system: str, user: str, note: str = "", *, viewer: Principal | None = None
) -> TemplateVersion:
    """Save a template version (unchanged text keeps the current version).

    With a ``viewer`` (hosted mode) the template is theirs; viewers get ``AccessDeniedError``.
    """
    owner = ownership.creator(viewer)
    reject_nul(name + note, "The template's name or note")
    with runtime.get_store().session() as session, session.begin():
        return save_template_version(
            session, name, PromptTemplate(system, user), note=note, owner=owner
        )


def templates(*, viewer: Principal | None = None) -> dict[str, list[TemplateVersion]]:
    """Every template's versions, newest first, by name.

    With a ``viewer`` (hosted mode): the templates they may see; someone else's is keyed
    ``"name (owner)"``, as two people's templates may share a name.
    """
    with runtime.get_store().session() as session, session.begin():
        if viewer is None:
            return {n: template_versions(session, n) for n in list_template_names(session)}
        return {
            name if owns(owner, viewer) else f"{name} ({owner})": template_versions(
                session, name, owner
            )
            for name, owner in list_templates(session, viewer=viewer)
        }


def store_dataset(name: str, dataset: Dataset, *, viewer: Principal | None = None) -> int:
    """Save a parsed dataset under a non-empty name; returns its id.

    In hosted mode it is ``viewer``'s (a viewer gets ``AccessDeniedError``).
    """
    owner = ownership.creator(viewer)
    reject_nul(name, "The dataset name")
    if not name.strip():
        raise InvalidRequestError("Give the dataset a name, to find it again in the pickers.")
    with runtime.get_store().session() as session, session.begin():
        return save_dataset(session, name, dataset, owner=owner)


def datasets(*, viewer: Principal | None = None) -> list[tuple[int, str, int]]:
    """``(id, name, rows)`` of the saved datasets (those ``viewer`` may see), newest first."""
    with runtime.get_store().session() as session, session.begin():
        return list_datasets(session, viewer=viewer)


def dataset_row(
    dataset_id: int, row_number: int, *, viewer: Principal | None = None
) -> dict[str, Any]:
    """Row ``row_number`` (1-based, as the page shows it) of a saved dataset.

    Raises :class:`InvalidRequestError` when the dataset or the row does not exist, or
    ``viewer`` may not see the dataset.
    """
    with runtime.get_store().session() as session, session.begin():
        found = get_dataset(session, dataset_id, viewer=viewer)
    if found is None:
        raise InvalidRequestError(f"No dataset #{dataset_id}.")
    name, dataset = found
    if not 1 <= row_number <= len(dataset.rows):
        raise InvalidRequestError(
            f"Dataset {name!r} has rows 1 to {len(dataset.rows)}, not {row_number}."
        )
    return dict(dataset.rows[row_number - 1])


def dataset_columns(dataset_id: int, *, viewer: Principal | None = None) -> tuple[str, ...]:
    """The column names of a saved dataset; empty when it is gone or ``viewer`` may not see it."""
    with runtime.get_store().session() as session, session.begin():
        found = get_dataset(session, dataset_id, viewer=viewer)
    return () if found is None else found[1].columns


def batches(*, viewer: Principal | None = None) -> list[tuple[int, str, str]]:
    """``(id, title, status)`` of every batch (those ``viewer`` may see), newest first.

    Batches left running by a process that died are marked ``interrupted`` first.
    """
    stale_after = timedelta(seconds=runtime.get_settings().batch_stale_after_s)
    with runtime.get_store().session() as session, session.begin():
        recover_interrupted_batches(session, stale_after=stale_after)
        return list_batches(session, viewer=viewer)


def check_and_estimate(spec: BatchSpec, *, viewer: Principal | None = None) -> BatchEstimate:
    """Validate ``spec`` (raises ``InvalidRequestError``) and estimate requests and tokens.

    With a ``viewer`` (hosted mode) its templates and dataset must be visible to them.
    """
    with runtime.get_store().session() as session, session.begin():
        return _estimate(session, spec, viewer)


def _estimate(session: Session, spec: BatchSpec, viewer: Principal | None) -> BatchEstimate:
    catalog = runtime.get_catalog()
    ownership.require_visible_inputs(session, spec, viewer)
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


def _job_factory(batch_id: int, connection: runtime.Connection) -> BatchJob:
    settings = runtime.get_settings()
    catalog = runtime.get_catalog()

    def providers() -> Mapping[str, Provider]:
        return build_providers(
            settings,
            catalog,
            elumenta_api_key=connection.api_key,
            elumenta_base_url=connection.elumenta_base_url,
            demo_spent=runtime.demo_tokens_spent,
        )

    return BatchJob.from_settings(runtime.get_store(), batch_id, catalog, settings, providers)


def _start(batch_id: int, connection: runtime.Connection) -> dispatch.BatchHandle:
    return dispatch.start_batch(
        runtime.get_store(),
        runtime.get_settings(),
        batch_id,
        manager=MANAGER,
        local_job=lambda: _job_factory(batch_id, connection),
    )


def _check_connection(connection: runtime.Connection) -> None:
    """Workers only know the server's key and URL: refuse a batch that needs the session's."""
    settings = runtime.get_settings()
    if settings.batch_execution == "worker" and (
        connection.key_source == "session"
        or connection.elumenta_base_url != settings.elumenta_base_url
    ):
        raise InvalidRequestError(
            "Batches run on worker processes, which use the server's own Elumenta key and "
            "URL; a key or URL entered in Settings stays in this browser session. Clear "
            "them in Settings to run a batch."
        )


def start_batch(
    spec: BatchSpec, connection: runtime.Connection, *, viewer: Principal | None = None
) -> dispatch.BatchHandle:
    """Plan and start a batch in the background (here or on the workers); returns its handle.

    With a ``viewer`` (hosted mode) the batch is theirs: their role and spending limits
    are checked against its estimate first (``AccessDeniedError``, ``SpendingLimitError``)
    and the start is audited.
    """
    _check_connection(connection)
    with runtime.get_store().session() as session, session.begin():
        if viewer is None:
            batch_id = plan_batch(session, spec)
        else:
            plan = _estimate(session, spec, viewer)
            batch_id = ownership.plan_owned_batch(session, spec, viewer, plan)
    return _start(batch_id, connection)


def resume_batch(
    batch_id: int, connection: runtime.Connection, *, viewer: Principal | None = None
) -> dispatch.BatchHandle:
    """The running batch ``batch_id``, or the batch continuing where it stopped.

    With a ``viewer`` (hosted mode) only the owner resumes it, within their spending
    limits for the answers still missing; the resume is audited.
    """
    _check_connection(connection)
    if viewer is not None:
        with runtime.get_store().session() as session, session.begin():
            ownership.check_resume(session, batch_id, viewer)
    return _start(batch_id, connection)


def running_job(batch_id: int, *, viewer: Principal | None = None) -> dispatch.BatchHandle | None:
    """The batch ``batch_id`` if this process or the workers run (or ran) it.

    ``None`` too when ``viewer`` (hosted mode) may not see it.
    """
    if viewer is not None:
        with runtime.get_store().session() as session, session.begin():
            if get_batch(session, batch_id, viewer=viewer) is None:
                return None
    return dispatch.find_batch(runtime.get_store(), runtime.get_settings(), batch_id, MANAGER)


def live_batch(*, viewer: Principal | None = None) -> dispatch.BatchHandle | None:
    """The newest of ``viewer``'s own batches that this process or the workers still run.

    What the Evaluate page follows when its session started none: a new session after an
    app restart, or the same user on another app process behind the proxy.
    """
    owner = None if viewer is None else viewer.subject
    with runtime.get_store().session() as session, session.begin():
        listed = list_batches(session, owner)
    for batch_id, _title, status in listed:
        if status in dispatch.LIVE_STATUSES:
            job = running_job(batch_id)
            if job is not None and not job.finished:
                return job
    return None


def owns_batch(batch_id: int, *, viewer: Principal | None = None) -> bool:
    """Whether ``viewer`` may resume, pause or cancel the batch (its owner; anyone locally)."""
    with runtime.get_store().session() as session, session.begin():
        batch = get_batch(session, batch_id, viewer=viewer)
        return batch is not None and owns(batch.owner, viewer)


def control_batch(batch_id: int, action: BatchAction, *, viewer: Principal | None = None) -> None:
    """Pause, resume or cancel a running batch; only its owner may (hosted mode)."""
    with runtime.get_store().session() as session, session.begin():
        ownership.owned_batch(session, batch_id, viewer)
    job = running_job(batch_id)
    if job is None:
        raise InvalidRequestError(f"Batch #{batch_id} is not running.")
    {"pause": job.pause, "resume": job.resume, "cancel": job.cancel}[action]()


def cells(
    batch_id: int, *, viewer: Principal | None = None, with_content: bool = True
) -> list[CellState]:
    """A batch's cells with their answers, in matrix order.

    ``with_content=False``: without the answers' text (enough for the matrix and pass
    rates). Raises :class:`InvalidRequestError` when ``viewer`` (hosted mode) may not see it.
    """
    with runtime.get_store().session() as session, session.begin():
        if viewer is not None and get_batch(session, batch_id, viewer=viewer) is None:
            raise InvalidRequestError(f"No batch #{batch_id}.")
        return batch_cells(session, batch_id, with_content=with_content)


def batch_inputs(batch_id: int, *, viewer: Principal | None = None) -> list[dict[str, Any]]:
    """The dataset rows a batch ran on, in row order (what its matrix rows are labelled by).

    Empty when the dataset is gone, or ``viewer`` (hosted mode) may see the batch but not
    its dataset: then rows are known by number only. Raises :class:`InvalidRequestError`
    when ``viewer`` may not see the batch.
    """
    with runtime.get_store().session() as session, session.begin():
        batch = get_batch(session, batch_id, viewer=viewer)
        if batch is None:
            raise InvalidRequestError(f"No batch #{batch_id}.")
        dataset_id = batch.dataset_id
        found = None if dataset_id is None else get_dataset(session, dataset_id, viewer=viewer)
    return [] if found is None else [dict(row) for row in found[1].rows]


def export_batch(batch_id: int, fmt: ExportFormat, *, viewer: Principal | None = None) -> str:
    """The batch's matrix, answers included, as ``csv`` or ``json`` text (see :func:`cells`)."""
    return export_text(cells(batch_id, viewer=viewer), fmt)


def answer_text(result_id: int, *, viewer: Principal | None = None) -> str:
    """The text of one answer; :class:`InvalidRequestError` if ``viewer`` may not see it."""
    with runtime.get_store().session() as session, session.begin():
        if not can_see_result(session, result_id, viewer):
            raise InvalidRequestError("This answer is not available.")
        return answer_texts(session, [result_id]).get(result_id, "")


def rate(
    result_id: int,
    rater: str,
    kind: str,
    value: float | None,
    note: str | None,
    *,
    viewer: Principal | None = None,
) -> None:
    """Store a human rating of one answer.

    With a ``viewer`` (hosted mode) the rating is theirs (``rater`` is ignored) and the
    answer must be one they may see. Viewers may rate: rating reviews work, it spends
    nothing.
    """
    reject_nul(rater + (note or ""), "The rater's name or the note")
    with runtime.get_store().session() as session, session.begin():
        if not can_see_result(session, result_id, viewer):
            raise InvalidRequestError("This answer is not available.")
        add_rating(session, result_id, ownership.rater(rater, viewer), kind, value=value, note=note)


def next_blind_round(
    batch_id: int,
    rater: str,
    rng: random.Random,
    size: int = 2,
    *,
    viewer: Principal | None = None,
) -> BlindRound | None:
    """Up to ``size`` shuffled answers by different models to one input ``rater`` has not judged.

    Only the shown answers' text is read from the history, not every answer of the batch.
    With a ``viewer`` (hosted mode) the rater is them, and only a batch they may see
    gives answers.
    """
    with runtime.get_store().session() as session, session.begin():
        groups = comparable_answers(session, batch_id, viewer=viewer)
        seen = voted_pairs(session, ownership.rater(rater, viewer), batch_id)
        blind = pick_round(groups, seen, rng, size)
        return None if blind is None else BlindRound(with_contents(session, blind.answers))


def vote(
    blind: BlindRound, verdict: Verdict, rater: str, *, viewer: Principal | None = None
) -> None:
    """Store ``rater``'s verdict on a round (best answer's index, "tie" or "all_bad").

    With a ``viewer`` (hosted mode) the vote is theirs, whatever ``rater`` says, and every
    answer of the round must still be one they may see (:class:`InvalidRequestError` if the
    batch was made private since the round was drawn; nothing is stored then).
    """
    with runtime.get_store().session() as session, session.begin():
        if not all(can_see_result(session, a.result_id, viewer) for a in blind.answers):
            raise InvalidRequestError(
                "These answers are no longer available; press Next round for new ones."
            )
        for result_a, result_b, outcome in round_votes(blind, verdict):
            add_vote(session, result_a, result_b, outcome, ownership.rater(rater, viewer))


def check_sets(*, viewer: Principal | None = None) -> dict[str, list[int]]:
    """The checks batches ran (``viewer``'s visible ones), newest first, with their batch ids.

    See :func:`~playground.evaluation.leaderboard.check_sets`.
    """
    with runtime.get_store().session() as session, session.begin():
        return group_by_checks(batch_assertions(session, viewer=viewer))


def leaderboard(
    by: Grouping = "model", *, viewer: Principal | None = None, checks: str | None = None
) -> list[LeaderboardRow]:
    """Every entrant's votes, human ratings, pass rate, cost and latency, best first.

    ``by="model"``: one line per model; ``by="version"``: one per (model, prompt version),
    counting only batch answers (those have a template version). Pass rates count only
    the batches that ran the checks ``checks`` (a :func:`check_sets` label; the newest
    batch's checks when ``None``): rates under different checks are not comparable.
    Entrants are named by the models' display names. With a ``viewer`` (hosted mode)
    every figure comes only from answers, batches and templates they may see: their own
    and what was shared with one of their workspaces.
    """
    with runtime.get_store().session() as session, session.begin():
        votes = entrant_votes(stored_votes(session, viewer=viewer), by)
        ratings = human_ratings(stored_ratings(session, viewer=viewer), by)
        groups = group_by_checks(batch_assertions(session, viewer=viewer))
        checked = groups.get(checks or "", next(iter(groups.values()), []))
        batch_answers = all_cells(session, viewer=viewer)
        key = cell_entrant(version_labels(session, viewer=viewer), by)
        if by == "model":
            measured = model_figures(session, viewer=viewer)
            figures = {m: ModelFigures(t, ms) for m, (t, ms) in measured.items()}
        else:
            figures = cell_figures(batch_answers, key)
        graded = all_cells(session, viewer=viewer, batch_ids=checked)
    rows = build_leaderboard(votes, pass_rates(graded, key), figures, ratings)
    return named(rows, runtime.get_catalog().name_of)


def run_promptfoo_config(
    config: PromptfooConfig, connection: runtime.Connection, *, viewer: Principal | None = None
) -> dict[str, Any]:
    """Run a checked promptfoo config here, as one batch, and return promptfoo's results
    document (the page waits for it). Local mode only: in hosted mode a batch must pass
    the owner's budget checks and workers, which promptfoo configs do not go through yet."""
    if viewer is not None:
        raise InvalidRequestError(
            "promptfoo configs run from the command line in hosted mode: "
            "python -m playground eval promptfooconfig.yaml"
        )

    def follow(job: BatchJob) -> None:
        while not job.finished:
            job.wait(1.0)

    return promptfoo_run.execute(
        config,
        runtime.get_settings(),
        runtime.get_catalog(),
        follow=follow,
        elumenta_api_key=connection.api_key,
        elumenta_base_url=connection.elumenta_base_url,
        environment_keys=False,  # an uploaded config must not send our keys to its URLs
    )
