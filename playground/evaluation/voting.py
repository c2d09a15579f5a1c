"""Blind rounds: 2–4 answers to one input, shuffled with hidden names, then a vote.

A round's verdict is stored as pairwise votes so win rates and Bradley–Terry use it, and
every verdict on n answers is n - 1 votes, so no verdict weighs more than another: the
best answer beats each of the others (nothing is said among the rest); "tie" and "all
bad" link the answers in their shuffled order, A–B, B–C…, the fewest equal pairs that
join them all (A = B and B = C already say A = C).
"""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from playground.errors import InvalidRequestError
from playground.results import VoteOutcome
from playground.store.eval_ratings import Answer

MAX_ROUND_SIZE = 4
Verdict = int | Literal["tie", "all_bad"]


@dataclass(frozen=True)
class BlindRound:
    """Answers by different models to one input, in shuffled order (letters A, B, C…)."""

    answers: tuple[Answer, ...]

    @property
    def letters(self) -> tuple[str, ...]:
        """The hidden names shown instead of the models: A, B, C…"""
        return tuple(string.ascii_uppercase[: len(self.answers)])

    def reveal(self, name_of: Callable[[str], str] = str) -> str:
        """ "A was **model**, B was **model**…" for after the vote (``name_of`` names a slug)."""
        return ", ".join(
            f"{letter} was **{name_of(a.model)}**"
            for letter, a in zip(self.letters, self.answers, strict=True)
        )


def pick_round(
    groups: Sequence[Sequence[Answer]],
    seen: Collection[frozenset[int]],
    rng: random.Random,
    size: int = 2,
) -> BlindRound | None:
    """A random round of up to ``size`` answers by different models to one input.

    Only inputs with a pair of answers not yet voted on (``seen``) are offered; ``None``
    when there is none left.
    """
    if not 2 <= size <= MAX_ROUND_SIZE:
        raise InvalidRequestError(f"A round has 2 to {MAX_ROUND_SIZE} answers.")
    candidates = []
    for group in groups:
        by_model: dict[str, Answer] = {}
        for answer in group:
            by_model.setdefault(answer.model, answer)
        answers = list(by_model.values())
        pairs = itertools.combinations(answers, 2)
        if any(frozenset((a.result_id, b.result_id)) not in seen for a, b in pairs):
            candidates.append(answers)
    if not candidates:
        return None
    answers = list(rng.choice(candidates))
    rng.shuffle(answers)
    return BlindRound(tuple(answers[:size]))


def round_votes(blind: BlindRound, verdict: Verdict) -> list[tuple[int, int, VoteOutcome]]:
    """The pairwise votes ``(result A, result B, outcome)`` a round's verdict stands for.

    ``verdict`` is the index of the best answer, ``"tie"`` or ``"all_bad"``. Always
    ``len(answers) - 1`` votes: the best answer over each other one, or a tie (both bad)
    between each answer and the next. Ties between every pair would give a tie round of
    n answers n(n-1)/2 votes against a clear winner's n - 1, outweighing it in win rates
    and Bradley–Terry.
    """
    ids = [a.result_id for a in blind.answers]
    if verdict == "tie" or verdict == "all_bad":
        outcome: VoteOutcome = "tie" if verdict == "tie" else "both_bad"
        return [(a, b, outcome) for a, b in itertools.pairwise(ids)]
    if not 0 <= verdict < len(ids):
        raise InvalidRequestError("Pick one of the answers shown.")
    return [(ids[verdict], other, "a") for i, other in enumerate(ids) if i != verdict]
