"""The Admin page (hosted mode): only admins open it; edits of roles and budgets are audited."""

from __future__ import annotations

import pytest

from playground import hosted, services
from playground.access.audit import list_events
from playground.access.users import get_user
from tests.app_harness import click, texts
from tests.hosted_fixtures import ADMIN_EMAIL, open_page_as, signed_in

pytestmark = pytest.mark.usefixtures("app_env")
ADMINS_ONLY = "Only admins of a hosted playground can open this page."


def test_a_member_or_the_local_user_cannot_open_the_admin_page() -> None:
    member = signed_in(services.get_store(), "ben@example.org")
    for principal in (member, None):
        at = open_page_as("pages/admin.py", principal)
        assert not at.exception
        assert texts(at, "error") == [ADMINS_ONLY]
        assert len(at.tabs) == 0


def test_an_admin_changes_a_role_and_a_budget_and_the_change_is_audited() -> None:
    store = services.get_store()
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
    store = services.get_store()
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
    store = services.get_store()
    admin = signed_in(store, ADMIN_EMAIL, "admin")
    signed_in(store, "ben@example.org")
    at = open_page_as("pages/admin.py", admin)
    at.text_input(key="admin.workspace_name").input("Search team")
    click(at, "Create workspace")
    assert not at.exception
    ((workspace_id, name, members),) = hosted.workspaces()
    assert (name, members) == ("Search team", [])
    at.multiselect(key=f"admin.members.{workspace_id}").set_value(["ben@example.org"])
    click(at, "Save members")
    assert hosted.workspaces() == [(workspace_id, "Search team", ["ben@example.org"])]
