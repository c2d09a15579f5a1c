"""The evaluation store: template versions, datasets, ratings, votes, leaderboard inputs."""

from __future__ import annotations

import pytest

from playground.datasets import parse_dataset
from playground.errors import InvalidRequestError
from playground.evaluation.leaderboard import ModelFigures, build_leaderboard, undecided
from playground.evaluation.stats import wilson_interval
from playground.store import Store, StoreRecorder
from playground.store.eval_ratings import (
    StoredRating,
    StoredVote,
    add_rating,
    add_vote,
    model_figures,
    stored_ratings,
    stored_votes,
)
from playground.store.eval_repository import (
    get_dataset,
    get_template_version,
    list_template_names,
    save_dataset,
    save_template_version,
    template_versions,
)
from playground.templates import PromptTemplate
from tests.store_fixtures import Outcome, make_request, record_run


def test_editing_a_template_adds_a_version_and_unchanged_text_reuses_it(store: Store) -> None:
    with store.session() as session, session.begin():
        first = save_template_version(session, "qa", PromptTemplate("S", "{{ q }}"))
        again = save_template_version(session, "qa", PromptTemplate("S", "{{ q }}"))
        second = save_template_version(session, "qa", PromptTemplate("S2", "{{ q }} {{ c }}"))
        save_template_version(session, "other", PromptTemplate("", "x"))
    assert again.id == first.id and (first.version, second.version) == (1, 2)
    assert second.variables == ("c", "q")
    with store.session() as session, session.begin():
        assert [v.version for v in template_versions(session, "qa")] == [2, 1]
        loaded = get_template_version(session, first.id)
        assert loaded is not None and loaded.template == PromptTemplate("S", "{{ q }}")
        assert list_template_names(session) == ["other", "qa"]


def test_a_template_that_does_not_parse_is_not_saved(store: Store) -> None:
    with store.session() as session, session.begin(), pytest.raises(InvalidRequestError):
        save_template_version(session, "bad", PromptTemplate("", "{{ x "))


def test_dataset_round_trip_keeps_unicode_and_types(store: Store) -> None:
    dataset = parse_dataset('{"q": "Столица?", "n": 2, "ok": true}\n')
    with store.session() as session, session.begin():
        dataset_id = save_dataset(session, "ru", dataset)
    with store.session() as session, session.begin():
        assert get_dataset(session, dataset_id) == ("ru", dataset)


def test_ratings_and_blind_votes_are_stored_with_the_rater(
    store: Store, recorder: StoreRecorder
) -> None:
    _, ids = record_run(recorder, make_request(("gpt-5", "claude-haiku-4.5")), [Outcome()] * 2)
    with store.session() as session, session.begin():
        add_rating(session, ids[0], "ana", "thumbs", value=1)
        add_rating(session, ids[0], "ana", "score", value=4)
        add_rating(session, ids[1], "bo", "note", note="too long")
        add_vote(session, ids[0], ids[1], "a", "ana")
        add_vote(session, ids[1], ids[0], "tie", "bo")
        with pytest.raises(InvalidRequestError, match="between 1 and 5"):
            add_rating(session, ids[0], "ana", "score", value=6)
        with pytest.raises(InvalidRequestError, match="one of a, b, tie, both_bad"):
            add_vote(session, ids[0], ids[1], "c", "ana")
    with store.session() as session, session.begin():
        assert stored_votes(session) == [
            StoredVote("gpt-5", None, "claude-haiku-4.5", None, "a"),
            StoredVote("claude-haiku-4.5", None, "gpt-5", None, "tie"),
        ]
        assert stored_ratings(session) == [
            StoredRating("gpt-5", None, "thumbs", 1.0),
            StoredRating("gpt-5", None, "score", 4.0),
        ]
        figures = model_figures(session)
    assert figures["gpt-5"] == (1.0, 1000.0)


def test_leaderboard_orders_by_rating_and_says_when_it_cannot_tell() -> None:
    votes = [("a", "b", "a")] * 40 + [("a", "b", "b")] * 10 + [("b", "c", "a"), ("c", "b", "a")]
    rows = build_leaderboard(
        votes,  # type: ignore[arg-type]
        {"a": wilson_interval(9, 10)},
        {"a": ModelFigures(2.0, 900.0)},
    )
    assert [r.entrant for r in rows] == ["a", "c", "b"]
    assert rows[0].pass_rate == wilson_interval(9, 10) and rows[0].avg_tokens == 2.0
    assert rows[0].win_rate is not None and rows[0].win_rate.estimate == 0.8
    # c has only two votes: its interval is wide, so neither neighbour can be told apart.
    assert undecided(rows) == [
        "Not enough votes yet to tell a and c apart.",
        "Not enough votes yet to tell c and b apart.",
    ]
