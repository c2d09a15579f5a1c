"""Statistics against known values: Wilson intervals and Bradley–Terry on synthetic votes."""

from __future__ import annotations

import math
import random

import pytest

from playground.evaluation.stats import (
    Interval,
    Vote,
    bootstrap_bradley_terry,
    bradley_terry,
    elo_scale,
    overlapping,
    separation_message,
    wilson_interval,
    win_records,
)


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [(8, 10, 0.4902, 0.9433), (0, 10, 0.0, 0.2775), (50, 100, 0.4038, 0.5962), (1, 1, 0.2065, 1.0)],
)
def test_wilson_interval_known_values(successes: int, total: int, low: float, high: float) -> None:
    interval = wilson_interval(successes, total)
    assert interval.estimate == pytest.approx(successes / total)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_wilson_with_no_data_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == Interval(0.0, 0.0, 1.0)


def test_overlap_and_the_plain_message() -> None:
    a, b, c = Interval(0.5, 0.4, 0.6), Interval(0.55, 0.45, 0.7), Interval(0.9, 0.8, 0.95)
    assert overlapping(a, b) and not overlapping(a, c)
    assert separation_message("x", a, "y", b) == "Not enough votes yet to tell x and y apart."
    assert separation_message("x", a, "y", c) is None


def test_bradley_terry_two_models_matches_the_closed_form() -> None:
    votes: list[Vote] = [("a", "b", "a")] * 30 + [("a", "b", "b")] * 10
    strength = bradley_terry(votes, prior=0.0)
    # With two models, BT gives p_a / p_b = wins_a / wins_b exactly.
    assert strength["a"] / strength["b"] == pytest.approx(3.0, rel=1e-4)


def test_ties_count_as_half_wins() -> None:
    votes: list[Vote] = [("a", "b", "tie")] * 10 + [("a", "b", "a")] * 10
    records = win_records(votes)
    assert records["a"].wins == 15 and records["a"].games == 20
    strength = bradley_terry(votes, prior=0.0)
    assert strength["a"] / strength["b"] == pytest.approx(3.0, rel=1e-4)


def test_bradley_terry_recovers_a_known_order_from_synthetic_votes() -> None:
    true = {"m1": 8.0, "m2": 4.0, "m3": 2.0, "m4": 1.0}
    rng = random.Random(7)
    votes: list[Vote] = []
    models = list(true)
    for _ in range(3000):
        a, b = rng.sample(models, 2)
        votes.append((a, b, "a" if rng.random() < true[a] / (true[a] + true[b]) else "b"))
    fitted = bradley_terry(votes)
    assert sorted(fitted, key=fitted.__getitem__, reverse=True) == models
    ratio = fitted["m1"] / fitted["m4"]
    assert math.log(ratio) == pytest.approx(math.log(8.0), abs=0.25)


def test_a_model_that_never_won_gets_a_finite_lowest_score() -> None:
    fitted = bradley_terry([("a", "b", "a")] * 5)
    assert 0 < fitted["b"] < fitted["a"]


def test_bootstrap_is_seeded_and_separates_only_with_enough_votes() -> None:
    few: list[Vote] = [("a", "b", "a"), ("a", "b", "a"), ("a", "b", "b")]
    many: list[Vote] = [("a", "b", "a")] * 80 + [("a", "b", "b")] * 20
    first = bootstrap_bradley_terry(few, seed=1)
    assert first == bootstrap_bradley_terry(few, seed=1)
    assert overlapping(first["a"], first["b"])
    separated = bootstrap_bradley_terry(many, seed=1)
    assert not overlapping(separated["a"], separated["b"])
    assert separated["a"].low <= separated["a"].estimate <= separated["a"].high


def test_a_model_missing_from_a_resample_is_not_scored_as_the_virtual_opponent() -> None:
    # "c" played once and lost: it is below 1000 whenever it plays; the resamples without
    # it (about a third) say nothing about it and must not pull its interval up to 1000.
    votes: list[Vote] = [("a", "b", "a")] * 60 + [("a", "b", "b")] * 40 + [("c", "a", "b")]
    rating = bootstrap_bradley_terry(votes, seed=3)["c"]
    assert rating.low <= rating.estimate <= rating.high < 1000


def test_bootstrap_fits_every_resample_alike_to_the_one_at_a_time_fit() -> None:
    votes: list[Vote] = [("a", "b", "a")] * 7 + [("b", "c", "tie")] * 3 + [("c", "a", "b")] * 2
    ratings = bootstrap_bradley_terry(votes)
    assert {m: r.estimate for m, r in ratings.items()} == pytest.approx(
        {m: elo_scale(s) for m, s in bradley_terry(votes).items()}
    )
