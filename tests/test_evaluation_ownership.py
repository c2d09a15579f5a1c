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
from playground.errors import AccessDeniedError, InvalidRequestError, SpendingLimitError
from playground.evaluation import ownership
from playground.evaluation.datasets import parse_dataset
from playground.evaluation.plan import BatchEstimate, BatchSpec, estimate, plan_batch
from playground.evaluation.templates import PromptTemplate
from playground.results import ModelTarget
from playground.store import Store, StoreRecorder
from playground.store.eval_models import BatchCellRow, BatchRow, DatasetRow, PromptTemplateRow
from playground.store.eval_ratings import can_see_result, comparable_answers
from playground.store.eval_repository import (
    get_batch,
    get_dataset,
    get_template_version,
    list_batches,
    list_datasets,
    list_templates,
    save_dataset,
    save_template_version,
)
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


def share(store: Store, model: type[PromptTemplateRow | DatasetRow | BatchRow], owner: str) -> None:
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
