"""Who sees and steers evaluation work in hosted mode, on both backends.

Templates, datasets and batches are listed and read only when visible (own, or
workspace-visible in one's workspaces); answers are visible with their comparison or their
batch; only owners steer batches; viewers create nothing; a batch start fits the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from playground.access import Principal
from playground.access.audit import list_events
from playground.datasets import parse_dataset
from playground.errors import AccessDeniedError, InvalidRequestError, SpendingLimitError
from playground.evaluation.plan import BatchEstimate, BatchSpec, estimate, plan_batch
from playground.results import ModelTarget
from playground.services import ownership
from playground.store import Store, StoreRecorder
from playground.store.eval_models import BatchCellRow, BatchRow, DatasetRow, PromptTemplateRow
from playground.store.eval_ratings import (
    StoredRating,
    StoredVote,
    add_rating,
    add_vote,
    can_see_result,
    comparable_answers,
    model_figures,
    stored_ratings,
    stored_votes,
)
from playground.store.eval_repository import (
    CellKey,
    all_cells,
    batch_cells,
    create_batch,
    get_batch,
    get_dataset,
    get_template_version,
    list_batches,
    list_datasets,
    list_templates,
    save_dataset,
    save_template_version,
    update_cells,
    version_labels,
)
from playground.store.models import Comparison
from playground.templates import PromptTemplate
from tests.hosted_fixtures import make_workspace, refreshed, set_daily_budget, signed_in
from tests.store_fixtures import Outcome, make_request, record_run

RESEARCH = 1
ANA = Principal(1, "ana@example.org", "Ana", "member", frozenset({RESEARCH}))
BOB = Principal(2, "bob@example.org", "Bob", "member", frozenset({RESEARCH}))
CAT = Principal(3, "cat@example.org", "Cat", "member")
TEMPLATE = PromptTemplate("Be terse.", "Capital of {{ country }}?")


@dataclass(frozen=True)
class Owned:
    """One template version, dataset and batch id per owner (``None``: the local user)."""

    versions: dict[str | None, int]
    datasets: dict[str | None, int]
    batches: dict[str | None, int]


@pytest.fixture
def store(reused_store: Store) -> Store:
    """The session's migrated store on each backend, emptied for this test."""
    return reused_store


def share(
    store: Store,
    model: type[PromptTemplateRow | DatasetRow | BatchRow | Comparison],
    owner: str,
) -> None:
    with store.session() as session, session.begin():
        session.execute(
            sa.update(model)
            .where(model.owner == owner)
            .values(visibility="workspace", workspace_id=RESEARCH)
        )


@pytest.fixture
def owned(store: Store) -> Owned:
    """Ana's, Bob's (shared with Research), Cat's and the local user's work, all named alike."""
    found = Owned({}, {}, {})
    with store.session() as session, session.begin():
        for owner in (ANA.subject, BOB.subject, CAT.subject, None):
            version = save_template_version(session, "capitals", TEMPLATE, owner=owner)
            dataset_id = save_dataset(
                session, "countries", parse_dataset("country\nFrance\n"), owner=owner
            )
            spec = BatchSpec("capitals", (version.id,), dataset_id, (ModelTarget("demo", "gpt-5"),))
            found.versions[owner] = version.id
            found.datasets[owner] = dataset_id
            found.batches[owner] = plan_batch(session, spec, owner=owner)
    for model in (PromptTemplateRow, DatasetRow, BatchRow):
        share(store, model, BOB.subject)
    return found


def test_listings_show_own_and_workspace_shared_work(store: Store, owned: Owned) -> None:
    with store.session() as session, session.begin():
        assert list_templates(session, viewer=ANA) == [
            ("capitals", ANA.subject),
            ("capitals", BOB.subject),
        ]
        assert list_templates(session, viewer=CAT) == [("capitals", CAT.subject)]
        assert list_templates(session) == [("capitals", None)]  # local: the unowned ones
        for listing, ids in ((list_datasets, owned.datasets), (list_batches, owned.batches)):
            assert [row[0] for row in listing(session, viewer=ANA)] == [
                ids[BOB.subject],
                ids[ANA.subject],
            ]
            assert [row[0] for row in listing(session, viewer=CAT)] == [ids[CAT.subject]]
            assert [row[0] for row in listing(session)] == [ids[None]]


def test_a_hidden_template_dataset_or_batch_reads_like_a_missing_one(
    store: Store, owned: Owned
) -> None:
    with store.session() as session, session.begin():
        for viewer, visible in ((ANA, True), (CAT, False), (None, True)):
            for get, ids in (
                (get_template_version, owned.versions),
                (get_dataset, owned.datasets),
                (get_batch, owned.batches),
            ):
                assert (get(session, ids[BOB.subject], viewer=viewer) is not None) is visible
        assert get_dataset(session, owned.datasets[ANA.subject], viewer=BOB) is None
        spec = BatchSpec("x", (owned.versions[CAT.subject],), owned.datasets[ANA.subject], ())
        with pytest.raises(InvalidRequestError, match=r"^No template version #\d+\.$"):
            ownership.require_visible_inputs(session, spec, ANA)
        ownership.require_visible_inputs(session, spec, None)


def test_only_the_owner_steers_a_batch(store: Store, owned: Owned) -> None:
    with store.session() as session, session.begin():
        assert ownership.owned_batch(session, owned.batches[ANA.subject], ANA).owner == ANA.subject
        with pytest.raises(AccessDeniedError, match="owner"):
            ownership.owned_batch(session, owned.batches[BOB.subject], ANA)
        with pytest.raises(InvalidRequestError, match="No batch"):
            ownership.owned_batch(session, owned.batches[CAT.subject], ANA)
        ownership.owned_batch(session, owned.batches[CAT.subject], None)


def test_an_answer_is_visible_with_its_comparison_or_its_batch(store: Store, owned: Owned) -> None:
    recorder = StoreRecorder(store.engine)
    _, (anas,) = record_run(recorder, make_request(("gpt-5",), owner=ANA.subject), [Outcome()])
    _, (in_bobs_batch,) = record_run(recorder, make_request(("gpt-5",)), [Outcome()])
    with store.session() as session, session.begin():
        session.execute(
            sa.update(BatchCellRow)
            .where(BatchCellRow.batch_id == owned.batches[BOB.subject])
            .values(result_id=in_bobs_batch, status="completed")
        )
    with store.session() as session, session.begin():
        assert can_see_result(session, anas, ANA)
        assert not can_see_result(session, anas, BOB)
        assert can_see_result(session, anas, None)
        assert can_see_result(session, in_bobs_batch, ANA)  # shared with Bob's batch
        assert not can_see_result(session, in_bobs_batch, CAT)
        assert comparable_answers(session, owned.batches[ANA.subject], viewer=CAT) == []


def test_viewers_create_nothing_and_ratings_are_by_the_signed_in_user() -> None:
    viewer = Principal(4, "vic@example.org", "Vic", "viewer", frozenset({RESEARCH}))
    with pytest.raises(AccessDeniedError, match="viewer"):
        ownership.creator(viewer)
    assert (ownership.creator(ANA), ownership.creator(None)) == (ANA.subject, None)
    assert ownership.rater("typed", ANA) == ANA.subject
    assert ownership.rater("typed", None) == "typed"


def test_a_batch_is_planned_only_within_the_owners_budget(store: Store) -> None:
    ana = signed_in(store, "ana@example.org")
    vic = signed_in(store, "vic@example.org", "viewer")
    make_workspace(store, "Research", [ana])
    ana = refreshed(store, ana)
    set_daily_budget(store, ana, 10)
    with store.session() as session, session.begin():
        version = save_template_version(session, "capitals", TEMPLATE, owner=ana.subject)
        dataset_id = save_dataset(
            session, "c", parse_dataset("country\nFrance\n"), owner=ana.subject
        )
    spec = BatchSpec("capitals", (version.id,), dataset_id, (ModelTarget("demo", "gpt-5"),))

    over_budget = pytest.raises(SpendingLimitError, match="daily budget is 10 billing tokens")
    with store.session() as session, session.begin(), over_budget:
        ownership.plan_owned_batch(session, spec, ana, _costing(11))
    with store.session() as session, session.begin(), pytest.raises(AccessDeniedError):
        ownership.plan_owned_batch(session, spec, vic, _costing(1))
    with store.session() as session, session.begin():
        batch_id = ownership.plan_owned_batch(session, spec, ana, _costing(10))
    with store.session() as session, session.begin():
        batch = get_batch(session, batch_id)
        assert batch is not None and batch.owner == ana.subject
        (event,) = list_events(session, action="batch.start")
        assert (event.actor, event.target) == (ana.subject, f"batch:{batch_id}")
        assert event.details == {"models": ["gpt-5"], "requests": 1, "estimated_tokens": 10}
        assert session.scalar(sa.select(sa.func.count()).select_from(BatchRow)) == 1


def _costing(tokens: int) -> BatchEstimate:
    """The estimate of a one-request batch costing ``tokens``."""
    return estimate(["gpt-5"], lambda _: tokens)


# --- Leaderboard inputs ------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """Ana's private work as the leaderboard reads it: a batch of two answers, a vote on
    them and a rating, from a template named like a secret, plus one private comparison."""

    version_id: int
    batch_id: int
    comparison_id: int


@pytest.fixture
def judged(store: Store) -> Judged:
    recorder = StoreRecorder(store.engine)
    request = make_request(("gpt-5", "gpt-5-nano"), owner=ANA.subject)
    _, (answer, other) = record_run(recorder, request, [Outcome(tokens_used=4)] * 2)
    comparison_id, (alone,) = record_run(
        recorder,
        make_request(("claude-haiku-4.5",), owner=ANA.subject),
        [Outcome(tokens_used=8, latency_ms=50.0)],
    )
    with store.session() as session, session.begin():
        version = save_template_version(session, "Project Falcon", TEMPLATE, owner=ANA.subject)
        cells = [CellKey(version.id, 0, "demo", m) for m in ("gpt-5", "gpt-5-nano")]
        batch_id = create_batch(session, title="falcon", spec={}, cells=cells, owner=ANA.subject)
        for cell, result_id in zip(batch_cells(session, batch_id), (answer, other), strict=True):
            update_cells(session, [cell.id], status="completed", result_id=result_id, passed=True)
        add_vote(session, answer, other, "a", ANA.subject)
        add_rating(session, answer, ANA.subject, "score", value=5)
        add_rating(session, alone, ANA.subject, "thumbs", value=1)
    return Judged(version.id, batch_id, comparison_id)


def leaderboard_inputs(store: Store, viewer: Principal | None) -> dict[str, object]:
    """Everything the Leaderboard page reads from the store, as ``viewer`` may read it."""
    with store.session() as session, session.begin():
        return {
            "votes": stored_votes(session, viewer=viewer),
            "ratings": stored_ratings(session, viewer=viewer),
            "cells": [(c.key.model, c.passed) for c in all_cells(session, viewer=viewer)],
            "labels": version_labels(session, viewer=viewer),
            "figures": sorted(model_figures(session, viewer=viewer)),
        }


NOTHING: dict[str, object] = {"votes": [], "ratings": [], "cells": [], "labels": {}, "figures": []}


def test_leaderboard_inputs_are_empty_for_a_member_nothing_was_shared_with(
    store: Store, judged: Judged
) -> None:
    everything = {
        "votes": [StoredVote("gpt-5", "Project Falcon v1", "gpt-5-nano", "Project Falcon v1", "a")],
        "ratings": [
            StoredRating("gpt-5", "Project Falcon v1", "score", 5.0),
            StoredRating("claude-haiku-4.5", None, "thumbs", 1.0),
        ],
        "cells": [("gpt-5", True), ("gpt-5-nano", True)],
        "labels": {judged.version_id: "Project Falcon v1"},
        "figures": ["claude-haiku-4.5", "gpt-5", "gpt-5-nano"],
    }
    assert leaderboard_inputs(store, ANA) == everything
    assert leaderboard_inputs(store, None) == everything  # local mode: unchanged
    assert leaderboard_inputs(store, BOB) == NOTHING  # same workspace, nothing shared
    assert leaderboard_inputs(store, CAT) == NOTHING


def test_leaderboard_inputs_follow_what_was_shared(store: Store, judged: Judged) -> None:
    hidden = f"version #{judged.version_id}"
    share(store, BatchRow, ANA.subject)
    assert leaderboard_inputs(store, BOB) == {
        # The batch's answers, votes and ratings, but not the private template's name.
        "votes": [StoredVote("gpt-5", hidden, "gpt-5-nano", hidden, "a")],
        "ratings": [StoredRating("gpt-5", hidden, "score", 5.0)],
        "cells": [("gpt-5", True), ("gpt-5-nano", True)],
        "labels": {judged.version_id: hidden},
        "figures": ["gpt-5", "gpt-5-nano"],
    }
    share(store, PromptTemplateRow, ANA.subject)
    share(store, Comparison, ANA.subject)
    assert leaderboard_inputs(store, BOB) == leaderboard_inputs(store, ANA)
    assert leaderboard_inputs(store, CAT) == NOTHING  # not in Research
