"""Blind rounds: 2–4 answers to one input, shuffled with hidden names, then a vote.

A round's verdict is stored as pairwise votes so Bradley–Terry uses it: the best answer
beats each of the others; "tie" ties every pair; "all bad" marks every pair both-bad.
"""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from playground.errors import InvalidRequestError
from playground.evaluation.stats import VoteOutcome
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

    def reveal(self) -> str:
        """ "A was **model**, B was **model**…" for after the vote."""
        return ", ".join(
            f"{letter} was **{a.model}**"
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

    ``verdict`` is the index of the best answer, ``"tie"`` or ``"all_bad"``.
    """
    ids = [a.result_id for a in blind.answers]
    if verdict == "tie" or verdict == "all_bad":
        outcome: VoteOutcome = "tie" if verdict == "tie" else "both_bad"
        return [(a, b, outcome) for a, b in itertools.combinations(ids, 2)]
    if not 0 <= verdict < len(ids):
        raise InvalidRequestError("Pick one of the answers shown.")
    return [(ids[verdict], other, "a") for i, other in enumerate(ids) if i != verdict]
