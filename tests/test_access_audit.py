"""The audit log: events appended and read back newest first, filtered (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.access.audit import MAX_EVENTS, AuditEvent, list_events, record_event
from playground.store import Store
from playground.store.hosted_models import AuditEventRow
from tests.store_fixtures import T0

ANA = "ana@example.org"
BOB = "bob@example.org"


@pytest.fixture
def store(reused_store: Store) -> Store:
    """The session's migrated store on each backend, emptied for this test."""
    return reused_store


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def log(store: Store) -> None:
    """Six events of two people and the system, written out of time order and committed."""
    with store.session() as s, s.begin():
        record_event(s, ANA, "run.start", "comparison:1", {"models": 2}, now=at(1))
        record_event(s, BOB, "run.start", "comparison:2", now=at(3))
        record_event(s, ANA, "key.save", now=at(5))
        record_event(s, None, "workspace.delete", "workspace:7", {"by": "cleanup"}, now=at(2))
        record_event(s, ANA, "share.link", "comparison:1", {"visibility": "workspace"}, now=at(4))
        record_event(s, BOB, "key.clear", now=at(0))


def actions(events: list[AuditEvent]) -> list[str]:
    return [e.action for e in events]


def test_events_come_back_newest_first(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        events = list_events(s)
    assert actions(events) == [
        "key.save",
        "share.link",
        "run.start",
        "workspace.delete",
        "run.start",
        "key.clear",
    ]
    assert [e.created_at for e in events] == [at(m) for m in (5, 4, 3, 2, 1, 0)]


def test_an_event_keeps_every_field(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        newest_of_ana = list_events(s, actor=ANA, action="share.link")
    assert newest_of_ana == [
        AuditEvent(
            created_at=at(4),
            actor=ANA,
            action="share.link",
            target="comparison:1",
            details={"visibility": "workspace"},
        )
    ]
    assert newest_of_ana[0].created_at.tzinfo is not None


def test_events_without_target_or_details(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        (event,) = list_events(s, action="key.clear")
    assert (event.actor, event.target, event.details) == (BOB, None, {})


def test_filter_by_actor(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        assert actions(list_events(s, actor=ANA)) == ["key.save", "share.link", "run.start"]
        assert actions(list_events(s, actor=BOB)) == ["run.start", "key.clear"]
        assert list_events(s, actor="nobody@example.org") == []
        assert {e.actor for e in list_events(s, actor=ANA)} == {ANA}


def test_filter_by_action(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        events = list_events(s, action="run.start")
        assert [(e.actor, e.target) for e in events] == [
            (BOB, "comparison:2"),
            (ANA, "comparison:1"),
        ]
        assert list_events(s, action="run") == []  # an exact action, not a prefix


def test_filter_by_actor_and_action(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        events = list_events(s, actor=BOB, action="run.start")
    assert [(e.actor, e.action, e.target) for e in events] == [(BOB, "run.start", "comparison:2")]


def test_no_filter_includes_system_events(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        system = [e for e in list_events(s) if e.actor is None]
    assert [(e.action, e.details) for e in system] == [("workspace.delete", {"by": "cleanup"})]


def test_limit_keeps_the_newest(store: Store, log: None) -> None:
    with store.session() as s, s.begin():
        assert actions(list_events(s, limit=2)) == ["key.save", "share.link"]
        assert actions(list_events(s, actor=ANA, limit=1)) == ["key.save"]
        assert list_events(s, limit=0) == []


def test_at_most_max_events_are_returned(session: Session) -> None:
    session.execute(
        sa.insert(AuditEventRow),
        [
            {
                "created_utc": T0 + timedelta(seconds=i),
                "actor": ANA,
                "action": "run.start",
                "target": None,
                "details_json": {"i": i},
            }
            for i in range(MAX_EVENTS + 5)
        ],
    )
    events = list_events(session, limit=MAX_EVENTS * 10)
    assert len(events) == MAX_EVENTS
    assert events[0].details == {"i": MAX_EVENTS + 4}
    assert events[-1].details == {"i": 5}


def test_the_default_time_is_now_in_utc(session: Session) -> None:
    before = datetime.now(UTC)
    record_event(session, ANA, "run.start")
    session.flush()
    after = datetime.now(UTC)
    (event,) = list_events(session)
    assert before <= event.created_at <= after
    assert event.created_at.utcoffset() == timedelta(0)


def test_a_time_in_another_zone_is_stored_as_the_same_instant(session: Session) -> None:
    moscow = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=3)))
    record_event(session, ANA, "run.start", now=moscow)
    record_event(session, BOB, "run.start", now=datetime(2026, 3, 1, 12, 30, tzinfo=UTC))
    session.flush()
    events = list_events(session)
    assert [e.actor for e in events] == [BOB, ANA]  # 12:30 UTC is after 15:00+03 (12:00 UTC)
    assert events[1].created_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_nested_details_round_trip(session: Session) -> None:
    details = {"models": ["gpt-5", "claude-haiku-4.5"], "budget": {"tokens": 120}, "ok": True}
    record_event(session, ANA, "batch.start", "batch:4", details, now=T0)
    session.flush()
    session.expire_all()
    (event,) = list_events(session)
    assert event.details == details


def test_recording_is_part_of_the_callers_transaction(store: Store) -> None:
    with store.session() as s:
        s.begin()
        record_event(s, ANA, "run.start", now=T0)
        s.flush()
        assert len(list_events(s)) == 1
        s.rollback()
    with store.session() as s, s.begin():
        assert list_events(s) == []
