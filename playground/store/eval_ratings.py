"""Human judgements and leaderboard inputs: ratings, blind votes, answers to compare.

Functions take a session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from playground.errors import InvalidRequestError
from playground.principal import Principal, visible_to
from playground.results import VoteOutcome
from playground.store.eval_models import (
    MATRIX_ORDER,
    RATING_KINDS,
    VOTE_WINNERS,
    BatchCellRow,
    BatchRow,
    PairwiseVoteRow,
    PromptTemplateRow,
    RatingRow,
    TemplateVersionRow,
)
from playground.store.eval_repository import get_batch, version_label
from playground.store.models import Comparison, Result


def add_rating(
    session: Session,
    result_id: int,
    rater: str,
    kind: str,
    *,
    value: float | None = None,
    note: str | None = None,
) -> int:
    """Store a rating (thumbs ±1, score 1–5, or a note) of one result by ``rater``."""
    if kind not in RATING_KINDS:
        raise InvalidRequestError(f"Unknown rating kind {kind!r}.")
    if kind == "thumbs" and value not in (-1, 1):
        raise InvalidRequestError("A thumbs rating is +1 or -1.")
    if kind == "score" and (value is None or not 1 <= value <= 5):
        raise InvalidRequestError("A score is between 1 and 5.")
    if kind == "note" and not (note or "").strip():
        raise InvalidRequestError("The note is empty.")
    return _store_new(
        session, RatingRow(result_id=result_id, rater=rater, kind=kind, value=value, note=note)
    )


def add_vote(session: Session, result_a_id: int, result_b_id: int, winner: str, rater: str) -> int:
    """Store a blind A/B vote (``a``, ``b``, ``tie`` or ``both_bad``) by ``rater``."""
    if winner not in VOTE_WINNERS:
        raise InvalidRequestError(f"A vote is one of {', '.join(VOTE_WINNERS)}.")
    if result_a_id == result_b_id:
        raise InvalidRequestError("A vote compares two different answers.")
    vote = PairwiseVoteRow(
        result_a_id=result_a_id, result_b_id=result_b_id, winner=winner, rater=rater
    )
    return _store_new(session, vote)


def _store_new(session: Session, row: RatingRow | PairwiseVoteRow) -> int:
    """Add ``row`` stamped with the current time; its new id (flushed, not committed)."""
    row.created_utc = datetime.now(UTC)
    session.add(row)
    session.flush()
    return row.id


def model_figures(
    session: Session, *, viewer: Principal | None = None
) -> dict[str, tuple[float | None, float | None]]:
    """Per model: average billing tokens and latency (ms) of completed, non-cached answers
    ``viewer`` may see (:func:`result_visible_to`)."""
    query = (
        sa.select(Result.model, sa.func.avg(Result.tokens_used), sa.func.avg(Result.latency_ms))
        .where(Result.status == "completed", Result.cached.is_(False), result_visible_to(viewer))
        .group_by(Result.model)
    )
    return {
        model: (None if tokens is None else float(tokens), None if ms is None else float(ms))
        for model, tokens, ms in session.execute(query)
    }


@dataclass(frozen=True)
class Answer:
    """One completed answer that can take part in a blind vote."""

    result_id: int
    model: str
    content: str


def result_visible_to(viewer: Principal | None, result: Any = Result) -> sa.ColumnElement[bool]:
    """SQL: the ``results`` (or the alias ``result`` of it) ``viewer`` may see.

    An answer is visible with its comparison, or as a cell of a batch the viewer may see:
    a batch's answers are shared with the batch. ``None``, the local user, sees all.
    """
    if viewer is None:
        return sa.true()
    comparisons = sa.select(Comparison.id).where(visible_to(Comparison, viewer))
    batch_answers = (
        sa.select(BatchCellRow.result_id)
        .join(BatchRow, BatchRow.id == BatchCellRow.batch_id)
        .where(BatchCellRow.result_id.is_not(None), visible_to(BatchRow, viewer))
    )
    return sa.or_(
        result.comparison_id.in_(comparisons.correlate(None)),
        result.id.in_(batch_answers.correlate(None)),
    )


def can_see_result(session: Session, result_id: int, viewer: Principal | None) -> bool:
    """Whether ``viewer`` may see (and so rate) the answer ``result_id``."""
    query = sa.select(Result.id).where(Result.id == result_id, result_visible_to(viewer))
    return session.scalar(query) is not None


def comparable_answers(
    session: Session, batch_id: int, *, viewer: Principal | None = None
) -> list[list[Answer]]:
    """Groups of completed answers to the same input (same version and row) in a batch.

    Only groups with at least two different models are returned; none when ``viewer``
    (hosted mode) may not see the batch. The answers come without their text
    (``content`` is empty): :func:`with_contents` reads it for the few a round shows.
    """
    if get_batch(session, batch_id, viewer=viewer) is None:
        return []
    query = (
        sa.select(
            BatchCellRow.template_version_id,
            BatchCellRow.row_index,
            BatchCellRow.result_id,
            BatchCellRow.model,
        )
        .where(BatchCellRow.batch_id == batch_id, BatchCellRow.status == "completed")
        .order_by(*MATRIX_ORDER)
    )
    groups: dict[tuple[int, int], list[Answer]] = {}
    for version_id, row_index, result_id, model in session.execute(query):
        if result_id is not None:  # None: its history row was deleted
            groups.setdefault((version_id, row_index), []).append(Answer(result_id, model, ""))
    return [g for g in groups.values() if len({a.model for a in g}) > 1]


def answer_texts(session: Session, result_ids: Sequence[int]) -> dict[int, str]:
    """The text of each of these answers (results), by id; a missing one is left out."""
    query = sa.select(Result.id, Result.content).where(Result.id.in_(result_ids))
    return {result_id: content for result_id, content in session.execute(query)}


def with_contents(session: Session, answers: Sequence[Answer]) -> tuple[Answer, ...]:
    """``answers``, in the same order, with their text read from the history."""
    texts = answer_texts(session, [a.result_id for a in answers])
    return tuple(replace(a, content=texts.get(a.result_id, "")) for a in answers)


def voted_pairs(session: Session, rater: str, batch_id: int) -> set[frozenset[int]]:
    """The pairs of answers in batch ``batch_id`` that ``rater`` has voted on (either order)."""
    in_batch = sa.select(BatchCellRow.result_id).where(BatchCellRow.batch_id == batch_id)
    query = sa.select(PairwiseVoteRow.result_a_id, PairwiseVoteRow.result_b_id).where(
        PairwiseVoteRow.rater == rater, PairwiseVoteRow.result_a_id.in_(in_batch)
    )
    return {frozenset((a, b)) for a, b in session.execute(query)}


def _version_of(result_id: object, viewer: Principal | None) -> sa.ScalarSelect[str | None]:
    """The :func:`version_label` of the template version a result answered, if it is a cell."""
    return (
        sa.select(version_label(viewer))
        .select_from(BatchCellRow)
        .join(TemplateVersionRow, TemplateVersionRow.id == BatchCellRow.template_version_id)
        .join(PromptTemplateRow, PromptTemplateRow.id == TemplateVersionRow.template_id)
        .where(BatchCellRow.result_id == result_id)
        .limit(1)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class StoredVote:
    """A vote with each side's model and template version label (``None``: not a batch cell)."""

    model_a: str
    version_a: str | None
    model_b: str
    version_b: str | None
    outcome: VoteOutcome


def stored_votes(session: Session, *, viewer: Principal | None = None) -> list[StoredVote]:
    """Every stored vote on two answers ``viewer`` may see, oldest first, with the models and
    prompt versions it compared (whoever voted: the votes come with the shared work)."""
    result_a, result_b = aliased(Result), aliased(Result)
    query = (
        sa.select(
            result_a.model,
            _version_of(result_a.id, viewer),
            result_b.model,
            _version_of(result_b.id, viewer),
            PairwiseVoteRow.winner,
        )
        .join(result_a, result_a.id == PairwiseVoteRow.result_a_id)
        .join(result_b, result_b.id == PairwiseVoteRow.result_b_id)
        .where(result_visible_to(viewer, result_a), result_visible_to(viewer, result_b))
        .order_by(PairwiseVoteRow.id)
    )
    return [
        StoredVote(a, va, b, vb, cast(VoteOutcome, w)) for a, va, b, vb, w in session.execute(query)
    ]


@dataclass(frozen=True)
class StoredRating:
    """A thumbs (±1) or 1–5 score rating of an answer, with its model and prompt version."""

    model: str
    version: str | None
    kind: str
    value: float


def stored_ratings(session: Session, *, viewer: Principal | None = None) -> list[StoredRating]:
    """Every thumbs and score rating (notes left out) of an answer ``viewer`` may see,
    oldest first (whoever rated it)."""
    query = (
        sa.select(Result.model, _version_of(Result.id, viewer), RatingRow.kind, RatingRow.value)
        .join(Result, Result.id == RatingRow.result_id)
        .where(
            RatingRow.kind.in_(("thumbs", "score")),
            RatingRow.value.is_not(None),
            result_visible_to(viewer),
        )
        .order_by(RatingRow.id)
    )
    return [StoredRating(m, v, k, float(x or 0.0)) for m, v, k, x in session.execute(query)]
