"""The Admin page (hosted mode): only admins open it; edits of roles and budgets are audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from playground.access.audit import list_events
from playground.access.users import get_user
from playground.errors import AccessDeniedError
from playground.evaluation.assertions import AssertionSpec
from playground.services import hosted, runtime
from playground.store.eval_models import BatchCellRow, BatchRow
from tests.app_harness import click, texts
from tests.evaluation_fixtures import plan
from tests.hosted_fixtures import ADMIN_EMAIL, make_workspace, open_page_as, refreshed, signed_in
from tests.store_fixtures import seed_comparison, seed_result

pytestmark = pytest.mark.usefixtures("app_env")
ADMINS_ONLY = "Only admins of a hosted playground can open this page."


def test_a_member_or_the_local_user_cannot_open_the_admin_page() -> None:
    member = signed_in(runtime.get_store(), "ben@example.org")
    for principal in (member, None):
        at = open_page_as("pages/admin.py", principal)
        assert not at.exception
        assert texts(at, "error") == [ADMINS_ONLY]
        assert len(at.tabs) == 0


def test_a_member_reaches_no_admin_read_and_sees_only_their_own_workspaces() -> None:
    store = runtime.get_store()
    admin = signed_in(store, ADMIN_EMAIL, "admin")
    ben = signed_in(store, "ben@example.org")
    ours = make_workspace(store, "Search team", [ben])
    make_workspace(store, "Board", [admin])
    ben = refreshed(store, ben)
    for admin_read in (
        hosted.spend_by_user_and_model,
        hosted.user_summaries,
        hosted.audit_log,
    ):
        with pytest.raises(AccessDeniedError, match="Only admins"):
            admin_read(ben)
    assert hosted.workspaces(ben) == [(ours, "Search team", ["ben@example.org"])]
    assert [name for _, name, _ in hosted.workspaces(admin)] == ["Board", "Search team"]


def test_the_catalog_and_the_database_on_settings_are_for_admins_only() -> None:
    store = runtime.get_store()
    admin = signed_in(store, ADMIN_EMAIL, "admin")
    ben = signed_in(store, "ben@example.org")
    server_parts = {"Model catalog", "Storage"}
    for person, shown in ((admin, True), (ben, False)):
        at = open_page_as("pages/settings.py", person)
        assert not at.exception
        assert (server_parts <= {h.value for h in at.subheader}) is shown
        assert ("Refresh model catalog" in {b.label for b in at.button}) is shown


def test_an_admin_changes_a_role_and_a_budget_and_the_change_is_audited() -> None:
    store = runtime.get_store()
    admin = signed_in(store, ADMIN_EMAIL, "admin")
    member = signed_in(store, "ben@example.org")
    at = open_page_as("pages/admin.py", admin)
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Users", "Workspaces", "Spend", "Audit log"]
    users = at.data_editor(key="admin.users").value
    assert list(users["subject"]) == [ADMIN_EMAIL, "ben@example.org"]

    # What the grid sends when the admin edits Ben's row (AppTest cannot type into cells).
    at.session_state["admin.users"] = {
        "edited_rows": {1: {"role": "viewer", "daily_budget_tokens": 50}},
        "added_rows": [],
        "deleted_rows": [],
    }
    click(at, "Save user changes")
    assert not at.exception
    with store.session() as session, session.begin():
        ben = get_user(session, member.user_id)
        assert (ben.role, ben.daily_budget_tokens) == ("viewer", 50)
        events = list_events(session, action="user.update")
    assert [(e.actor, e.target) for e in events] == [(ADMIN_EMAIL, "ben@example.org")]
    assert events[0].details["changes"] == ["role member → viewer", "limits"]


def test_an_admin_cannot_demote_themself_and_is_told_why() -> None:
    store = runtime.get_store()
    admin = signed_in(store, ADMIN_EMAIL, "admin")
    at = open_page_as("pages/admin.py", admin)
    at.session_state["admin.users"] = {
        "edited_rows": {0: {"role": "member"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    click(at, "Save user changes")
    assert not at.exception
    assert any("cannot remove your own admin role" in t for t in texts(at, "error"))
    assert hosted.user_summaries(admin)[0].role == "admin"


def test_workspaces_are_created_and_filled_from_the_admin_page() -> None:
    store = runtime.get_store()
    admin = signed_in(store, ADMIN_EMAIL, "admin")
    signed_in(store, "ben@example.org")
    at = open_page_as("pages/admin.py", admin)
    at.text_input(key="admin.workspace_name").input("Search team")
    click(at, "Create workspace")
    assert not at.exception
    ((workspace_id, name, members),) = hosted.workspaces(admin)
    assert (name, members) == ("Search team", [])
    at.multiselect(key=f"admin.members.{workspace_id}").set_value(["ben@example.org"])
    click(at, "Save members")
    assert hosted.workspaces(admin) == [(workspace_id, "Search team", ["ben@example.org"])]


def test_spend_shows_each_users_answers_per_model_and_their_batch_judge_as_its_own_row() -> None:
    store = runtime.get_store()
    admin = signed_in(store, ADMIN_EMAIL, "admin")
    rubric = AssertionSpec("llm_judge", value="Names a capital.")
    batch_id = plan(store, ["gpt-5-nano"], rows=3, assertions=[rubric], judge="gpt-5")
    with store.session() as session, session.begin():
        comparison = seed_comparison(session, owner="ana@example.org")
        seed_result(session, comparison, "gpt-5", tokens_used=2)
        seed_result(session, comparison, "gpt-5", tokens_used=2, cached=True)  # not billed
        seed_result(session, comparison, "gpt-5-nano", tokens_used=1)
        session.get(BatchRow, batch_id).owner = "ana@example.org"  # type: ignore[union-attr]
        cells = session.scalars(sa.select(BatchCellRow).order_by(BatchCellRow.row_index)).all()
        for cell in cells[:2]:  # the judge graded two of the three answers
            cell.judge_tokens, cell.judged_utc = 2, datetime.now(UTC)

    assert hosted.spend_by_user_and_model(admin) == [
        {"user": "ana@example.org", "model": "gpt-5", "requests": 1, "tokens": 2},
        {"user": "ana@example.org", "model": "gpt-5 (judge)", "requests": 2, "tokens": 4},
        {"user": "ana@example.org", "model": "gpt-5-nano", "requests": 1, "tokens": 1},
    ]
    at = open_page_as("pages/admin.py", admin)
    assert not at.exception
    (shown,) = [d.value for d in at.dataframe if "model" in d.value.columns]
    assert list(shown["model"]) == ["gpt-5", "gpt-5 (judge)", "gpt-5-nano"]
