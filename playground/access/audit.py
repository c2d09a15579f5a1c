"""The audit log: who ran, shared or changed what, and when (hosted mode).

Details are plain JSON the caller chooses; never pass a key, a prompt or an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.store.hosted_models import AuditEventRow

MAX_EVENTS = 1000


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the audit log."""

    created_at: datetime
    actor: str | None
    action: str
    target: str | None
    details: dict[str, Any]


def record_event(
    session: Session,
    actor: str | None,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Append an event, e.g. ``record_event(s, "ana@x.org", "run.start", "comparison:12")``."""
    session.add(
        AuditEventRow(
            created_utc=now or datetime.now(UTC),
            actor=actor,
            action=action,
            target=target,
            details_json=details or {},
        )
    )


def list_events(
    session: Session, *, actor: str | None = None, action: str | None = None, limit: int = 200
) -> list[AuditEvent]:
    """The newest events first, optionally of one actor or one action (at most MAX_EVENTS)."""
    query = sa.select(AuditEventRow).order_by(
        AuditEventRow.created_utc.desc(), AuditEventRow.id.desc()
    )
    if actor:
        query = query.where(AuditEventRow.actor == actor)
    if action:
        query = query.where(AuditEventRow.action == action)
    rows = session.scalars(query.limit(min(limit, MAX_EVENTS)))
    return [AuditEvent(r.created_utc, r.actor, r.action, r.target, r.details_json) for r in rows]
