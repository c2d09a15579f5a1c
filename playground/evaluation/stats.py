"""How sure a result is: Wilson intervals, Bradley–Terry strengths with bootstrap intervals.

Pure functions over counts and votes. A vote is ``(model_a, model_b, outcome)`` with
outcome ``"a"``, ``"b"``, ``"tie"`` or ``"both_bad"``; ties and both-bad count as half a
win for each side (neither answer was better).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

VoteOutcome = Literal["a", "b", "tie", "both_bad"]
Vote = tuple[str, str, VoteOutcome]
Z_95 = 1.959963984540054
NOT_ENOUGH_VOTES = "Not enough votes yet to tell {a} and {b} apart."


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval ``[low, high]``."""

    estimate: float
    low: float
    high: float


def wilson_interval(successes: float, total: float, z: float = Z_95) -> Interval:
    """The Wilson score interval of a proportion (95% by default); ``[0, 1]`` when ``total`` is 0.

    Sound for small samples and for proportions near 0 or 1, unlike the normal interval.
    """
    if total <= 0:
        return Interval(0.0, 0.0, 1.0)
    p = successes / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z / (1 + z2 / total) * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def overlapping(a: Interval, b: Interval) -> bool:
    """Whether two intervals share any value (then the data cannot order them yet)."""
    return a.low <= b.high and b.low <= a.high


def separation_message(name_a: str, a: Interval, name_b: str, b: Interval) -> str | None:
    """ "Not enough votes yet to tell A and B apart." when the intervals overlap, else ``None``."""
    return NOT_ENOUGH_VOTES.format(a=name_a, b=name_b) if overlapping(a, b) else None


def _scores(outcome: VoteOutcome) -> tuple[float, float]:
    if outcome == "a":
        return 1.0, 0.0
    if outcome == "b":
        return 0.0, 1.0
    return 0.5, 0.5


@dataclass(frozen=True)
class WinRecord:
    """A model's pairwise record: wins (ties count half) out of games."""

    model: str
    wins: float
    games: int

    @property
    def win_rate(self) -> Interval:
        """The win rate with its 95% Wilson interval."""
        return wilson_interval(self.wins, self.games)


def win_records(votes: Sequence[Vote]) -> dict[str, WinRecord]:
    """Each model's wins (ties and both-bad as half) and games over ``votes``."""
    wins: dict[str, float] = defaultdict(float)
    games: dict[str, int] = defaultdict(int)
    for model_a, model_b, outcome in votes:
        score_a, score_b = _scores(outcome)
        wins[model_a] += score_a
        wins[model_b] += score_b
        games[model_a] += 1
        games[model_b] += 1
    return {m: WinRecord(m, wins[m], games[m]) for m in sorted(games)}


def bradley_terry(
    votes: Sequence[Vote], *, prior: float = 0.5, iterations: int = 500, tolerance: float = 1e-9
) -> dict[str, float]:
    """Bradley–Terry strengths fitted by the MM algorithm (Hunter 2004); higher is better.

    Ties count as half a win each. ``prior`` adds that many wins and losses against a
    virtual opponent of strength 1, so a model that never won still gets a finite score and
    the scale is fixed (strength 1 = as good as the virtual average opponent).
    """
    wins: dict[str, float] = defaultdict(float)
    pair_games: dict[tuple[str, str], float] = defaultdict(float)
    for model_a, model_b, outcome in votes:
        score_a, score_b = _scores(outcome)
        wins[model_a] += score_a
        wins[model_b] += score_b
        if model_a != model_b:
            pair_games[(model_a, model_b)] += 1
            pair_games[(model_b, model_a)] += 1
    models = sorted({m for pair in pair_games for m in pair} | set(wins))
    opponents: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (i, j), n in pair_games.items():
        opponents[i].append((j, n))
    strength = dict.fromkeys(models, 1.0)
    for _ in range(iterations):
        updated = {}
        for i in models:
            denominator = 2 * prior / (strength[i] + 1.0)
            denominator += sum(n / (strength[i] + strength[j]) for j, n in opponents[i])
            updated[i] = (wins[i] + prior) / denominator if denominator > 0 else 1.0
        change = max(abs(updated[m] - strength[m]) for m in models) if models else 0.0
        strength = updated
        if change < tolerance:
            break
    return strength


def elo_scale(strength: float) -> float:
    """A Bradley–Terry strength on the familiar Elo scale (1000 = the virtual opponent)."""
    return 1000.0 + 400.0 * math.log10(strength)


def bootstrap_bradley_terry(
    votes: Sequence[Vote], *, rounds: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, Interval]:
    """Each model's Elo-scale Bradley–Terry score with a percentile bootstrap interval.

    Votes are resampled with replacement ``rounds`` times from a seeded RNG, so the same
    votes always give the same intervals.
    """
    point = {m: elo_scale(s) for m, s in bradley_terry(votes).items()}
    if not votes:
        return {}
    rng = random.Random(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        resample = [votes[rng.randrange(len(votes))] for _ in votes]
        fitted = bradley_terry(resample, iterations=200, tolerance=1e-6)
        for model in point:
            samples[model].append(elo_scale(fitted.get(model, 1.0)))
    tail = (1 - level) / 2
    out = {}
    for model, estimate in point.items():
        values = sorted(samples[model])
        low = values[int(tail * (len(values) - 1))]
        high = values[math.ceil((1 - tail) * (len(values) - 1))]
        out[model] = Interval(estimate, low, high)
    return out
