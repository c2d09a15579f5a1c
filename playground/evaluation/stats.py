"""How sure a result is: Wilson intervals, Bradley–Terry strengths with bootstrap intervals.

Pure functions over counts and votes. A vote is ``(model_a, model_b, outcome)`` with
outcome ``"a"``, ``"b"``, ``"tie"`` or ``"both_bad"``; ties and both-bad count as half a
win for each side (neither answer was better).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from playground.results import VoteOutcome

if TYPE_CHECKING:
    # numpy is imported by the Bradley–Terry fits that use it: pass rates (what an eval
    # prints) need only math, and numpy takes ~0.1 s to import.
    import numpy as np

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
    tally = _Tally.of(tuple(votes))
    fitted = _fit(tally, tally.counts[None, :], prior, iterations, tolerance)[0]
    return {m: float(s) for m, s in zip(tally.models, fitted, strict=True)}


@dataclass(frozen=True)
class _Tally:
    """Votes grouped into distinct (model a, model b, a's score) kinds, with their counts."""

    models: tuple[str, ...]
    first: np.ndarray  # per kind: index of model a
    second: np.ndarray  # per kind: index of model b
    score: np.ndarray  # per kind: a's score (1, 0.5 or 0); b's is 1 - score
    counts: np.ndarray  # per kind: how many votes

    @classmethod
    def of(cls, votes: tuple[Vote, ...]) -> _Tally:
        models = tuple(sorted({m for a, b, _ in votes for m in (a, b)}))
        index = {m: i for i, m in enumerate(models)}
        kinds: dict[tuple[int, int, float], int] = defaultdict(int)
        for model_a, model_b, outcome in votes:
            kinds[(index[model_a], index[model_b], _scores(outcome)[0])] += 1
        import numpy as np

        keys = np.array(list(kinds), float).reshape(-1, 3)
        first, second = keys[:, 0].astype(int), keys[:, 1].astype(int)
        return cls(models, first, second, keys[:, 2], np.array(list(kinds.values()), float))


def _fit(
    tally: _Tally, counts: np.ndarray, prior: float, iterations: int, tolerance: float
) -> np.ndarray:
    """Strengths per row of ``counts`` (rows: resamples, columns: vote kinds), all rows
    fitted at once; a model without games in a row comes out as NaN."""
    import numpy as np

    size = len(tally.models)
    rows = counts.shape[0]
    wins = np.zeros((rows, size))
    np.add.at(wins.T, tally.first, (counts * tally.score).T)
    np.add.at(wins.T, tally.second, (counts * (1 - tally.score)).T)
    games = np.zeros((rows, size, size))
    between = tally.first != tally.second
    for i, j in ((tally.first, tally.second), (tally.second, tally.first)):
        np.add.at(games.transpose(1, 2, 0), (i[between], j[between]), counts[:, between].T)
    played = np.zeros((rows, size), bool)
    np.logical_or.at(played.T, tally.first, (counts > 0).T)
    np.logical_or.at(played.T, tally.second, (counts > 0).T)
    strength = np.ones((rows, size))
    for _ in range(iterations):
        pairs = strength[:, :, None] + strength[:, None, :]
        denominator = 2 * prior / (strength + 1.0) + (games / pairs).sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            updated = np.where(denominator > 0, (wins + prior) / denominator, 1.0)
        change = float(np.abs(updated - strength).max()) if updated.size else 0.0
        strength = updated
        if change < tolerance:
            break
    return np.where(played, strength, np.nan)


def elo_scale(strength: float) -> float:
    """A Bradley–Terry strength on the familiar Elo scale (1000 = the virtual opponent)."""
    return 1000.0 + 400.0 * math.log10(strength)


def bootstrap_bradley_terry(
    votes: Sequence[Vote], *, rounds: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, Interval]:
    """Each model's Elo-scale Bradley–Terry score with a percentile bootstrap interval.

    Votes are resampled with replacement ``rounds`` times from a seeded RNG, so the same
    votes always give the same intervals; all resamples are fitted in one array pass, and
    the answer is cached for the same votes. A resample in which a model has no game says
    nothing about it: it is left out of that model's interval (not scored as 1000).
    """
    return dict(_bootstrap(tuple(votes), rounds, seed, level))


@lru_cache(maxsize=16)
def _bootstrap(
    votes: tuple[Vote, ...], rounds: int, seed: int, level: float
) -> tuple[tuple[str, Interval], ...]:
    if not votes:
        return ()
    import numpy as np

    tally = _Tally.of(votes)
    point = _fit(tally, tally.counts[None, :], 0.5, 500, 1e-9)[0]
    # Resampling votes with replacement = drawing how many of each kind, multinomially.
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(len(votes), tally.counts / len(votes), size=rounds).astype(float)
    samples = _fit(tally, drawn, 0.5, 200, 1e-6)
    tail = (1 - level) / 2
    out = []
    for index, model in enumerate(tally.models):
        values = np.sort(samples[:, index][~np.isnan(samples[:, index])])
        scores = [elo_scale(float(v)) for v in (values if values.size else point[[index]])]
        low = scores[int(tail * (len(scores) - 1))]
        high = scores[math.ceil((1 - tail) * (len(scores) - 1))]
        out.append((model, Interval(elo_scale(float(point[index])), low, high)))
    return tuple(out)
