"""The leaderboard by model and by prompt version: known values, and votes read from a store."""

from __future__ import annotations

import pytest

from playground.evaluation.leaderboard import (
    HumanRatings,
    ModelFigures,
    build_leaderboard,
    cell_entrant,
    cell_figures,
    entrant_votes,
    human_ratings,
    undecided,
)
from playground.evaluation.report import pass_rates
from playground.evaluation.stats import wilson_interval
from playground.store import Store, StoreRecorder
from playground.store.eval_ratings import (
    StoredRating,
    StoredVote,
    add_rating,
    add_vote,
    stored_ratings,
    stored_votes,
)
from playground.store.eval_repository import (
    CellKey,
    CellState,
    batch_cells,
    create_batch,
    save_template_version,
    update_cells,
    version_labels,
)
from playground.templates import PromptTemplate
from tests.store_fixtures import Outcome, make_request, record_run

LABELS = {1: "qa v1", 2: "qa v2"}


def _cell(version: int, model: str, *, passed: bool | None, tokens: int, ms: float) -> CellState:
    return CellState(
        id=0,
        key=CellKey(version, 0, "demo", model),
        status="completed",
        attempts=1,
        result_id=None,
        passed=passed,
        assertions=(),
        error_message=None,
        latency_ms=ms,
        tokens_used=tokens,
    )


def test_by_prompt_version_each_model_and_version_is_its_own_line() -> None:
    votes = [StoredVote("m", "qa v2", "m", "qa v1", "a")] * 3 + [
        StoredVote("m", "qa v2", "m", "qa v1", "b")
    ] * 2
    votes.append(StoredVote("m", None, "n", None, "a"))  # outside a batch: by model only
    cells = [
        _cell(1, "m", passed=True, tokens=2, ms=100.0),
        _cell(1, "m", passed=False, tokens=4, ms=300.0),
        _cell(2, "m", passed=True, tokens=3, ms=200.0),
    ]
    ratings = [
        StoredRating("m", "qa v2", "thumbs", 1.0),
        StoredRating("m", "qa v2", "thumbs", 1.0),
        StoredRating("m", "qa v2", "thumbs", 1.0),
        StoredRating("m", "qa v2", "thumbs", -1.0),
        StoredRating("m", "qa v2", "score", 4.0),
        StoredRating("m", "qa v2", "score", 5.0),
        StoredRating("m", "qa v1", "score", 2.0),
    ]
    key = cell_entrant(LABELS, "version")
    rows = build_leaderboard(
        entrant_votes(votes, "version"),
        pass_rates(cells, key),
        cell_figures(cells, key),
        human_ratings(ratings, "version"),
    )

    assert [r.entrant for r in rows] == ["m · qa v2", "m · qa v1"]
    best, other = rows
    assert (best.games, other.games) == (5, 5)
    assert best.win_rate == wilson_interval(3, 5)
    assert best.win_rate.low == pytest.approx(0.2307, abs=1e-4)
    assert best.win_rate.high == pytest.approx(0.8824, abs=1e-4)
    assert best.rating is not None and other.rating is not None
    assert best.rating.estimate == pytest.approx(1031.92, abs=0.01)  # Elo scale, prior 0.5
    assert best.rating.low < best.rating.estimate < best.rating.high
    assert other.pass_rate == wilson_interval(1, 2)
    assert (other.avg_tokens, other.avg_latency_ms) == (3.0, 200.0)
    assert best.human == HumanRatings(
        thumbs=4, thumbs_up=wilson_interval(3, 4), scores=2, mean_score=4.5
    )
    assert other.human == HumanRatings(thumbs=0, thumbs_up=None, scores=1, mean_score=2.0)
    # 3 wins of 5: the bootstrap intervals overlap.
    assert undecided(rows) == ["Not enough votes yet to tell m · qa v2 and m · qa v1 apart."]


def test_by_model_the_versions_of_a_model_are_pooled() -> None:
    votes = [StoredVote("m", "qa v2", "n", "qa v1", "a")] * 60
    votes += [StoredVote("m", None, "n", None, "b")] * 5
    rows = build_leaderboard(
        entrant_votes(votes, "model"), {}, {}, human_ratings([], "model"), bootstrap_rounds=100
    )
    assert [(r.entrant, r.games) for r in rows] == [("m", 65), ("n", 65)]
    assert rows[0].win_rate == wilson_interval(60, 65)
    assert undecided(rows) == []  # 60 of 65 separates them


def test_stored_votes_and_ratings_name_the_prompt_version_of_batch_answers(
    store: Store, recorder: StoreRecorder
) -> None:
    _, ids = record_run(recorder, make_request(("gpt-5", "gpt-5-nano")), [Outcome()] * 2)
    with store.session() as session, session.begin():
        v1 = save_template_version(session, "qa", PromptTemplate("", "Q1 {{ q }}"))
        v2 = save_template_version(session, "qa", PromptTemplate("", "Q2 {{ q }}"))
        batch_id = create_batch(
            session,
            title="qa",
            spec={},
            cells=[CellKey(v1.id, 0, "demo", "gpt-5"), CellKey(v2.id, 0, "demo", "gpt-5-nano")],
        )
        first, second = batch_cells(session, batch_id)
        update_cells(session, [first.id], status="completed", result_id=ids[0])
        update_cells(session, [second.id], status="completed", result_id=ids[1])
        add_vote(session, ids[1], ids[0], "a", "ana")
        add_rating(session, ids[0], "ana", "score", value=3)
    with store.session() as session, session.begin():
        assert stored_votes(session) == [StoredVote("gpt-5-nano", "qa v2", "gpt-5", "qa v1", "a")]
        assert stored_ratings(session) == [StoredRating("gpt-5", "qa v1", "score", 3.0)]
        assert version_labels(session) == {v1.id: "qa v1", v2.id: "qa v2"}


def test_figures_leave_out_cached_and_unversioned_answers() -> None:
    cached = CellState(
        id=0,
        key=CellKey(1, 1, "demo", "m"),
        status="completed",
        attempts=1,
        result_id=None,
        passed=None,
        assertions=(),
        error_message=None,
        tokens_used=99,
        cached=True,
    )
    cells = [
        _cell(1, "m", passed=None, tokens=2, ms=10.0),
        cached,
        _cell(9, "m", passed=None, tokens=5, ms=1.0),
    ]
    assert cell_figures(cells, cell_entrant(LABELS, "version")) == {
        "m · qa v1": ModelFigures(2.0, 10.0)
    }
