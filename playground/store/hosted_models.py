"""ORM classes of hosted team mode (migration 0004): users, workspaces, audit events.

Owned objects (comparisons, templates, datasets, batches) keep their ``owner`` string (the
user's ``subject``) and carry :class:`~playground.store.models.Shared` columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from playground.store.models import Base, JsonType, UtcDateTime

ROLES: tuple[str, ...] = ("admin", "member", "viewer")


class UserRow(Base):
    """A signed-in person: role, spending limits and an optional personal key (encrypted)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The stable identity that ``owner`` columns hold: lower-cased e-mail, else the IdP subject.
    subject: Mapped[str] = mapped_column(sa.String(320))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    display_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    disabled: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    daily_budget_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    monthly_budget_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    requests_per_minute: Mapped[int | None] = mapped_column(sa.Integer)
    # Fernet token of the personal API key; only the server secret can open it.
    api_key_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    api_key_hint: Mapped[str | None] = mapped_column(sa.String(32))
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (sa.Index("ix_users_subject", "subject", unique=True),)


class WorkspaceRow(Base):
    """A team workspace: its members see each other's workspace-visible work."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (sa.Index("ix_workspaces_name", "name", unique=True),)


class WorkspaceMemberRow(Base):
    """Membership of one user in one workspace."""

    __tablename__ = "workspace_members"

    workspace_id: Mapped[int] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (sa.Index("ix_workspace_members_user", "user_id"),)


class AuditEventRow(Base):
    """Who did what and when: runs, batches, shares, key and settings changes."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str | None] = mapped_column(sa.String(320))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(200))
    details_json: Mapped[dict[str, Any]] = mapped_column(JsonType)

    __table_args__ = (
        sa.Index("ix_audit_events_created", "created_utc"),
        sa.Index("ix_audit_events_actor_created", "actor", "created_utc"),
    )
