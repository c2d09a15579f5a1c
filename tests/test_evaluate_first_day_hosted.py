"""Hosted mode: the offline example, Results row labels, column pickers and the
Leaderboard's check sets show each person only what they may see."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from playground.datasets import parse_dataset
from playground.errors import InvalidRequestError
from playground.evaluation.assertions import parse_assertion
from playground.evaluation.plan import BatchSpec
from playground.results import ModelTarget
from playground.services import evaluate as evaluation
from playground.services import runtime
from playground.store.eval_models import BatchRow
from tests import test_app_hosted
from tests.app_harness import texts
from tests.hosted_fixtures import open_page_as
from tests.test_app_hosted import Team

# The hosted page tests' fixtures: a migrated app database and a team of four.
migrated_app_database = test_app_hosted.migrated_app_database
team = test_app_hosted.team

pytestmark = pytest.mark.usefixtures("app_env", "migrated_app_database")
PRIVATE = "Ana's private launch date"


def test_the_offline_example_is_each_members_own_and_never_a_viewers(team: Team) -> None:
    at = open_page_as("pages/evaluate.py", team.vic)
    assert not any("an example was added" in t for t in texts(at, "info"))
    assert evaluation.templates(viewer=team.vic) == {}

    at = open_page_as("pages/evaluate.py", team.ana)
    assert any("an example was added" in t for t in texts(at, "info"))
    assert list(evaluation.templates(viewer=team.ana)) == ["ticket-triage"]
    assert evaluation.templates(viewer=team.bob) == {}  # Ana's example is hers


def test_row_labels_pickers_and_check_sets_follow_visibility(team: Team) -> None:
    version = evaluation.save_template("t", "", "Say {{ secret }}.", viewer=team.ana)
    dataset_id = evaluation.store_dataset(
        "private", parse_dataset(f"secret\n{PRIVATE}\n"), viewer=team.ana
    )
    spec = BatchSpec(
        title="t",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "gpt-5-nano"),),
        assertions=(parse_assertion({"type": "contains", "value": "launch"}),),
    )
    job = evaluation.start_batch(spec, runtime.connection_from(), viewer=team.ana)
    job.wait(30)
    assert evaluation.batch_inputs(job.batch_id, viewer=team.ana) == [{"secret": PRIVATE}]
    assert evaluation.dataset_columns(dataset_id, viewer=team.ana) == ("secret",)
    assert list(evaluation.check_sets(viewer=team.ana)) == ['contains "launch"']

    with pytest.raises(InvalidRequestError):
        evaluation.batch_inputs(job.batch_id, viewer=team.bob)
    assert evaluation.dataset_columns(dataset_id, viewer=team.bob) == ()
    assert evaluation.check_sets(viewer=team.bob) == {}

    with runtime.get_store().session() as session, session.begin():
        session.execute(
            sa.update(BatchRow).values(visibility="workspace", workspace_id=team.research)
        )
    # The batch is shared, its dataset is not: rows are known by number only.
    assert evaluation.batch_inputs(job.batch_id, viewer=team.bob) == []
    assert list(evaluation.check_sets(viewer=team.bob)) == ['contains "launch"']
    assert evaluation.check_sets(viewer=team.cat) == {}
