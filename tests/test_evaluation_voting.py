"""Blind rounds of 2–4 answers: picking, and verdicts as pairwise votes."""

from __future__ import annotations

import random

import pytest

from playground.errors import InvalidRequestError
from playground.evaluation.stats import Vote, bradley_terry, win_records
from playground.evaluation.voting import BlindRound, Verdict, pick_round, round_votes
from playground.store.eval_ratings import Answer

ROUND = BlindRound((Answer(1, "m1", "x"), Answer(2, "m2", "y"), Answer(3, "m3", "z")))


def _round(size: int) -> BlindRound:
    return BlindRound(tuple(Answer(i, f"m{i}", "") for i in range(1, size + 1)))


def test_best_beats_each_other_and_tie_or_all_bad_link_neighbours() -> None:
    assert round_votes(ROUND, 2) == [(3, 1, "a"), (3, 2, "a")]
    assert round_votes(ROUND, "tie") == [(1, 2, "tie"), (2, 3, "tie")]
    assert round_votes(_round(4), "all_bad") == [
        (1, 2, "both_bad"),
        (2, 3, "both_bad"),
        (3, 4, "both_bad"),
    ]
    with pytest.raises(InvalidRequestError, match="Pick one"):
        round_votes(ROUND, 3)
    assert ROUND.letters == ("A", "B", "C")
    assert ROUND.reveal() == "A was **m1**, B was **m2**, C was **m3**"


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("verdict", [0, 1, "tie", "all_bad"])
def test_every_verdict_on_n_answers_is_n_minus_one_votes(size: int, verdict: Verdict) -> None:
    votes = round_votes(_round(size), verdict)
    assert len(votes) == size - 1
    # every answer takes part, so a round's games add up to 2(n - 1) whatever the verdict
    assert {r for a, b, _ in votes for r in (a, b)} == set(range(1, size + 1))


def test_an_all_bad_round_weighs_no_more_than_a_clear_winner_in_win_rates() -> None:
    four = _round(4)
    votes: list[Vote] = [
        (f"m{a}", f"m{b}", outcome)
        for verdict in (0, "all_bad")
        for a, b, outcome in round_votes(four, verdict)
    ]
    records = {m: (r.wins, r.games) for m, r in win_records(votes).items()}
    # Ties between every pair made this m1 3 + 1.5 wins of 6 games and m2 1.5 of 4.
    assert records == {"m1": (3.5, 4), "m2": (1.0, 3), "m3": (1.0, 3), "m4": (0.5, 2)}
    assert sum(games for _, games in records.values()) == 2 * (3 + 3)


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
