"""The leaderboard: per model (or per model and prompt version) every figure with its doubt.

Win rate (Wilson), Bradley–Terry rating (bootstrap), pass rate, human ratings, cost and
latency. Adjacent entrants whose rating intervals overlap get a plain "not enough votes
yet to tell these apart".
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from playground.evaluation.assertions import parse_assertion
from playground.evaluation.stats import (
    Interval,
    Vote,
    bootstrap_bradley_terry,
    separation_message,
    wilson_interval,
    win_records,
)
from playground.store.eval_ratings import StoredRating, StoredVote
from playground.store.eval_repository import CellState

Grouping = Literal["model", "version"]


def entrant(model: str, version: str | None, by: Grouping) -> str | None:
    """The leaderboard line an answer counts for: ``model``, or ``"model · name vN"``.

    By prompt version, an answer outside any batch (no version) counts for no line.
    """
    if by == "model":
        return model
    return None if version is None else f"{model} · {version}"


def cell_entrant(labels: Mapping[int, str], by: Grouping) -> Callable[[CellState], str | None]:
    """The :func:`entrant` of a batch cell, given the template versions' labels."""

    def key(cell: CellState) -> str | None:
        return entrant(cell.key.model, labels.get(cell.key.template_version_id), by)

    return key


def entrant_votes(votes: Sequence[StoredVote], by: Grouping) -> list[Vote]:
    """The votes between two entrants of this grouping (others, e.g. unversioned, dropped)."""
    out: list[Vote] = []
    for vote in votes:
        a = entrant(vote.model_a, vote.version_a, by)
        b = entrant(vote.model_b, vote.version_b, by)
        if a is not None and b is not None:
            out.append((a, b, vote.outcome))
    return out


def check_sets(batches: Sequence[tuple[int, Sequence[Mapping[str, Any]]]]) -> dict[str, list[int]]:
    """The batches grouped by the checks they ran: ``{"label; label": [batch ids]}``.

    A pass rate only means something among batches with the same checks, so the
    leaderboard pools pass rates within one group. Groups keep the order of ``batches``
    (newest first from the store); batches without assertions are in none.
    """
    groups: dict[str, list[int]] = {}
    for batch_id, assertions in batches:
        if assertions:
            label = "; ".join(parse_assertion(a).label() for a in assertions)
            groups.setdefault(label, []).append(batch_id)
    return groups


def named(rows: Sequence[LeaderboardRow], name_of: Callable[[str], str]) -> list[LeaderboardRow]:
    """``rows`` with each entrant's model (before any " · version") by its display name."""
    out = []
    for row in rows:
        model, sep, version = row.entrant.partition(" · ")
        out.append(replace(row, entrant=f"{name_of(model)}{sep}{version}"))
    return out


@dataclass(frozen=True)
class HumanRatings:
    """An entrant's human ratings: thumbs-up share (Wilson) and mean 1–5 score, with counts."""

    thumbs: int
    thumbs_up: Interval | None
    scores: int
    mean_score: float | None


def human_ratings(ratings: Sequence[StoredRating], by: Grouping) -> dict[str, HumanRatings]:
    """Per entrant: how many thumbs (and the share up) and scores (and their mean)."""
    ups: dict[str, int] = defaultdict(int)
    thumbs: dict[str, int] = defaultdict(int)
    scores: dict[str, list[float]] = defaultdict(list)
    for rating in ratings:
        name = entrant(rating.model, rating.version, by)
        if name is None:
            continue
        if rating.kind == "thumbs":
            thumbs[name] += 1
            ups[name] += rating.value > 0
        elif rating.kind == "score":
            scores[name].append(rating.value)
    return {
        name: HumanRatings(
            thumbs=thumbs[name],
            thumbs_up=wilson_interval(ups[name], thumbs[name]) if thumbs[name] else None,
            scores=len(scores[name]),
            mean_score=sum(scores[name]) / len(scores[name]) if scores[name] else None,
        )
        for name in sorted(set(thumbs) | set(scores))
    }


@dataclass(frozen=True)
class ModelFigures:
    """Average billing tokens and latency of an entrant's completed answers."""

    avg_tokens: float | None
    avg_latency_ms: float | None


def cell_figures(
    cells: Sequence[CellState], key: Callable[[CellState], str | None]
) -> dict[str, ModelFigures]:
    """Per ``key``: average billing tokens and latency of completed, non-cached answers."""
    tokens: dict[str, list[float]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    for cell in cells:
        name = key(cell)
        if name is None or cell.status != "completed" or cell.cached:
            continue
        if cell.tokens_used is not None:
            tokens[name].append(cell.tokens_used)
        if cell.latency_ms is not None:
            latency[name].append(cell.latency_ms)
    return {
        name: ModelFigures(_mean(tokens[name]), _mean(latency[name]))
        for name in sorted(set(tokens) | set(latency))
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class LeaderboardRow:
    """One entrant's line (a model, or model · prompt version); ``None`` where no data."""

    entrant: str
    games: int
    win_rate: Interval | None
    rating: Interval | None
    pass_rate: Interval | None
    avg_tokens: float | None
    avg_latency_ms: float | None
    human: HumanRatings | None = None


def build_leaderboard(
    votes: Sequence[Vote],
    pass_rates: Mapping[str, Interval],
    figures: Mapping[str, ModelFigures],
    human: Mapping[str, HumanRatings] | None = None,
    *,
    bootstrap_rounds: int = 200,
    seed: int = 0,
) -> list[LeaderboardRow]:
    """Rows for every entrant with votes, pass rates, figures or ratings; best rating first."""
    human = human or {}
    records = win_records(votes)
    ratings = bootstrap_bradley_terry(votes, rounds=bootstrap_rounds, seed=seed)
    names = sorted(set(records) | set(pass_rates) | set(figures) | set(human))
    rows = [
        LeaderboardRow(
            entrant=name,
            games=records[name].games if name in records else 0,
            win_rate=records[name].win_rate if name in records else None,
            rating=ratings.get(name),
            pass_rate=pass_rates.get(name),
            avg_tokens=figures[name].avg_tokens if name in figures else None,
            avg_latency_ms=figures[name].avg_latency_ms if name in figures else None,
            human=human.get(name),
        )
        for name in names
    ]

    def order(row: LeaderboardRow) -> tuple[float, float]:
        rating = row.rating.estimate if row.rating else float("-inf")
        passing = row.pass_rate.estimate if row.pass_rate else float("-inf")
        return (-rating, -passing)

    return sorted(rows, key=order)


def undecided(rows: Sequence[LeaderboardRow]) -> list[str]:
    """For each pair of neighbours whose rating intervals overlap, the plain message."""
    rated = [r for r in rows if r.rating is not None]
    messages = []
    for upper, lower in itertools.pairwise(rated):
        assert upper.rating is not None and lower.rating is not None
        message = separation_message(upper.entrant, upper.rating, lower.entrant, lower.rating)
        if message:
            messages.append(message)
    return messages
