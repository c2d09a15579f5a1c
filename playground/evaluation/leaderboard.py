"""The leaderboard: per model, win rate, Bradley–Terry rating, pass rate, cost and latency.

Every figure carries its uncertainty, and adjacent models whose rating intervals overlap
get a plain "not enough votes yet to tell these apart".
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from playground.evaluation.stats import (
    Interval,
    Vote,
    bootstrap_bradley_terry,
    separation_message,
    win_records,
)


@dataclass(frozen=True)
class ModelFigures:
    """Average billing tokens and latency of a model's completed answers."""

    avg_tokens: float | None
    avg_latency_ms: float | None


@dataclass(frozen=True)
class LeaderboardRow:
    """One model's line on the leaderboard (``None`` where there is no data)."""

    model: str
    games: int
    win_rate: Interval | None
    rating: Interval | None
    pass_rate: Interval | None
    avg_tokens: float | None
    avg_latency_ms: float | None


def build_leaderboard(
    votes: Sequence[Vote],
    pass_rates: Mapping[str, Interval],
    figures: Mapping[str, ModelFigures],
    *,
    bootstrap_rounds: int = 200,
    seed: int = 0,
) -> list[LeaderboardRow]:
    """Rows for every model with votes, pass rates or figures; best rating first."""
    records = win_records(votes)
    ratings = bootstrap_bradley_terry(votes, rounds=bootstrap_rounds, seed=seed)
    models = sorted(set(records) | set(pass_rates) | set(figures))
    rows = [
        LeaderboardRow(
            model=m,
            games=records[m].games if m in records else 0,
            win_rate=records[m].win_rate if m in records else None,
            rating=ratings.get(m),
            pass_rate=pass_rates.get(m),
            avg_tokens=figures[m].avg_tokens if m in figures else None,
            avg_latency_ms=figures[m].avg_latency_ms if m in figures else None,
        )
        for m in models
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
        message = separation_message(upper.model, upper.rating, lower.model, lower.rating)
        if message:
            messages.append(message)
    return messages
