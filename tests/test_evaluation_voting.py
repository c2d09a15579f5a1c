"""Blind rounds of 2–4 answers: picking, and verdicts as pairwise votes."""

from __future__ import annotations

import random

import pytest

from playground.errors import InvalidRequestError
from playground.evaluation.stats import bradley_terry
from playground.evaluation.voting import BlindRound, pick_round, round_votes
from playground.store.eval_ratings import Answer

ROUND = BlindRound((Answer(1, "m1", "x"), Answer(2, "m2", "y"), Answer(3, "m3", "z")))


def test_best_beats_each_other_and_tie_or_all_bad_covers_every_pair() -> None:
    assert round_votes(ROUND, 2) == [(3, 1, "a"), (3, 2, "a")]
    assert round_votes(ROUND, "tie") == [(1, 2, "tie"), (1, 3, "tie"), (2, 3, "tie")]
    assert round_votes(ROUND, "all_bad") == [
        (1, 2, "both_bad"),
        (1, 3, "both_bad"),
        (2, 3, "both_bad"),
    ]
    with pytest.raises(InvalidRequestError, match="Pick one"):
        round_votes(ROUND, 3)
    assert ROUND.letters == ("A", "B", "C")
    assert ROUND.reveal() == "A was **m1**, B was **m2**, C was **m3**"


def test_round_votes_feed_bradley_terry() -> None:
    by_model = {1: "m1", 2: "m2", 3: "m3"}
    votes = [(by_model[a], by_model[b], o) for a, b, o in round_votes(ROUND, 0)] * 3
    strength = bradley_terry(votes)
    assert strength["m1"] > strength["m2"] == pytest.approx(strength["m3"])


def test_pick_round_uses_distinct_models_and_skips_inputs_fully_voted() -> None:
    done = [Answer(1, "a", ""), Answer(2, "b", "")]
    fresh = [Answer(3, "a", ""), Answer(4, "a", ""), Answer(5, "b", ""), Answer(6, "c", "")]
    seen = {frozenset((1, 2))}
    picked = pick_round([done, fresh], seen, random.Random(1), size=4)
    assert picked is not None
    assert sorted(a.model for a in picked.answers) == ["a", "b", "c"]
    assert {a.result_id for a in picked.answers} <= {3, 5, 6}
    assert pick_round([done], seen, random.Random(1)) is None
    with pytest.raises(InvalidRequestError, match="2 to 4"):
        pick_round([fresh], set(), random.Random(1), size=5)
