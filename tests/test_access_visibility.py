"""The one visibility rule, in Python (``can_view``) and in SQL (``visible_to``), on real rows."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.access import Principal, can_view, owns, visible_to
from playground.access.users import create_workspace, set_membership
from playground.store import Store, StoreRecorder
from playground.store.eval_models import PromptTemplateRow
from playground.store.models import Comparison
from tests.store_fixtures import T0, make_request
from tests.test_access_users import refreshed, user_with_role


@dataclass(frozen=True)
class Team:
    """Four people, two workspaces and one comparison id per sharing situation."""

    ana: Principal  # in Research
    bob: Principal  # in Research
    cat: Principal  # in Sales
    dan: Principal  # in no workspace
    rows: dict[str, int]


def record(recorder: StoreRecorder, name: str, owner: str | None) -> int:
    """A comparison recorded the way the runner records one, owned by ``owner``."""
    return recorder.start_comparison(make_request(("gpt-5",), prompt=name, owner=owner))


@pytest.fixture
def store(reused_store: Store) -> Store:
    """The session's migrated store on each backend, emptied for this test."""
    return reused_store


@pytest.fixture
def team(store: Store) -> Team:
    """Comparisons of every sharing situation, recorded and shared in separate transactions."""
    with store.session() as s, s.begin():
        admin = user_with_role(s, "boss@example.org", "admin")
        people = {
            n: user_with_role(s, f"{n}@example.org", "member") for n in ("ana", "bob", "cat", "dan")
        }
        research = create_workspace(s, admin, "Research")
        sales = create_workspace(s, admin, "Sales")
        set_membership(s, admin, research, people["ana"].user_id, True)
        set_membership(s, admin, research, people["bob"].user_id, True)
        set_membership(s, admin, sales, people["cat"].user_id, True)
        s.flush()
        people = {n: refreshed(s, p) for n, p in people.items()}

    recorder = StoreRecorder(store.engine)
    # name: (owner, visibility, workspace)
    situations: dict[str, tuple[str | None, str, int | None]] = {
        "ana private": ("ana@example.org", "private", None),
        "ana to research": ("ana@example.org", "workspace", research),
        "ana to sales": ("ana@example.org", "workspace", sales),  # not her workspace (any more)
        "bob private": ("bob@example.org", "private", None),
        "bob to research": ("bob@example.org", "workspace", research),
        "bob private in research": ("bob@example.org", "private", research),
        "bob workspace without one": ("bob@example.org", "workspace", None),
        "cat to sales": ("cat@example.org", "workspace", sales),
        "local, no owner": (None, "private", None),
        "local, no owner, in research": (None, "workspace", research),
    }
    rows = {name: record(recorder, name, owner) for name, (owner, _, _) in situations.items()}
    with store.session() as s, s.begin():
        for name, (_, visibility, workspace_id) in situations.items():
            comparison = s.get_one(Comparison, rows[name])
            comparison.visibility = visibility
            comparison.workspace_id = workspace_id
    return Team(**people, rows=rows)


def seen_by_sql(session: Session, principal: Principal | None) -> set[int]:
    query = sa.select(Comparison.id).where(visible_to(Comparison, principal))
    return set(session.scalars(query))


def seen_by_python(session: Session, principal: Principal | None) -> set[int]:
    return {c.id for c in session.scalars(sa.select(Comparison)) if can_view(c, principal)}


EXPECTED = {
    "ana": {
        "ana private",
        "ana to research",
        "ana to sales",
        "bob to research",
        "local, no owner, in research",
    },
    "bob": {
        "bob private",
        "bob to research",
        "bob private in research",
        "bob workspace without one",
        "ana to research",
        "local, no owner, in research",
    },
    "cat": {"ana to sales", "cat to sales"},
    "dan": set(),
}


def test_sql_and_python_agree_on_who_sees_what(store: Store, team: Team) -> None:
    name_of = {row: name for name, row in team.rows.items()}
    with store.session() as s, s.begin():
        for seen_by in (seen_by_sql, seen_by_python):
            seen: dict[str, set[str]] = {}
            for who in EXPECTED:
                seen[who] = {name_of[row] for row in seen_by(s, getattr(team, who))}
            assert seen == EXPECTED, seen_by.__name__


def test_the_owner_sees_their_private_row_and_nobody_else_does(store: Store, team: Team) -> None:
    row = team.rows["ana private"]
    with store.session() as s, s.begin():
        comparison = s.get_one(Comparison, row)
        assert can_view(comparison, team.ana)
        for other in (team.bob, team.cat, team.dan):
            assert not can_view(comparison, other)
            assert row not in seen_by_sql(s, other)


def test_a_workspace_row_is_seen_by_members_only(store: Store, team: Team) -> None:
    row = team.rows["ana to research"]
    with store.session() as s, s.begin():
        comparison = s.get_one(Comparison, row)
        assert can_view(comparison, team.bob)
        assert row in seen_by_sql(s, team.bob)
        for outsider in (team.cat, team.dan):
            assert not can_view(comparison, outsider)
            assert row not in seen_by_sql(s, outsider)


def test_leaving_a_workspace_hides_its_rows(store: Store, team: Team) -> None:
    row = team.rows["ana to research"]
    with store.session() as s, s.begin():
        research = s.get_one(Comparison, row).workspace_id
        assert research is not None
        admin = user_with_role(s, "boss@example.org", "admin")
        set_membership(s, admin, research, team.bob.user_id, False)
        s.flush()
        bob = refreshed(s, team.bob)
        assert row not in seen_by_sql(s, bob)
        assert not can_view(s.get_one(Comparison, row), bob)


def test_only_the_owner_owns_what_others_may_see(store: Store, team: Team) -> None:
    with store.session() as s, s.begin():
        shared = s.get_one(Comparison, team.rows["ana to research"])
        assert can_view(shared, team.bob)
        assert not owns(shared.owner, team.bob)
        assert owns(shared.owner, team.ana)
        assert owns(shared.owner, None)  # the local user owns everything
        ownerless = s.get_one(Comparison, team.rows["local, no owner, in research"])
        assert can_view(ownerless, team.ana)
        assert not owns(ownerless.owner, team.ana)
        assert owns(ownerless.owner, None)


def test_the_local_user_sees_everything(store: Store, team: Team) -> None:
    with store.session() as s, s.begin():
        everything = set(s.scalars(sa.select(Comparison.id)))
        assert everything == set(team.rows.values())
        assert seen_by_sql(s, None) == everything
        assert seen_by_python(s, None) == everything


def test_visible_to_combines_with_other_conditions(store: Store, team: Team) -> None:
    with store.session() as s, s.begin():
        query = sa.select(Comparison.prompt_text).where(
            visible_to(Comparison, team.ana), Comparison.prompt_text.like("%research%")
        )
        assert sorted(s.scalars(query)) == [
            "ana to research",
            "bob to research",
            "local, no owner, in research",
        ]


def test_the_rule_applies_to_every_owned_table(store: Store, team: Team) -> None:
    research = min(team.ana.workspace_ids)
    with store.session() as s, s.begin():
        for name, owner, visibility, workspace_id in [
            ("ana private", "ana@example.org", "private", None),
            ("ana shared", "ana@example.org", "workspace", research),
            ("cat private", "cat@example.org", "private", None),
        ]:
            s.add(
                PromptTemplateRow(
                    name=name,
                    owner=owner,
                    created_utc=T0,
                    visibility=visibility,
                    workspace_id=workspace_id,
                )
            )
    with store.session() as s, s.begin():
        for principal, expected in [
            (team.ana, ["ana private", "ana shared"]),
            (team.bob, ["ana shared"]),
            (team.cat, ["cat private"]),
            (team.dan, []),
        ]:
            query = sa.select(PromptTemplateRow).where(visible_to(PromptTemplateRow, principal))
            templates = list(s.scalars(query))
            assert sorted(t.name for t in templates) == expected
            everything = s.scalars(sa.select(PromptTemplateRow))
            assert sorted(t.name for t in everything if can_view(t, principal)) == expected


def test_new_recordings_are_private(store: Store, team: Team) -> None:
    row = record(StoreRecorder(store.engine), "fresh", "ana@example.org")
    with store.session() as s, s.begin():
        comparison = s.get_one(Comparison, row)
        assert (comparison.visibility, comparison.workspace_id) == ("private", None)
        assert row in seen_by_sql(s, team.ana)
        assert row not in seen_by_sql(s, team.bob)
