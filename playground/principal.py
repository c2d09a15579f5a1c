"""The signed-in user as every query sees them, and the one visibility rule.

A row is visible to a principal when they own it, or it is ``workspace``-visible in one of
their workspaces. Admins manage users and see spend, not other people's private prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from playground.config import Role
from playground.errors import AccessDeniedError


@dataclass(frozen=True)
class Principal:
    """A signed-in user: id, the ``owner`` string of their rows, role and workspaces."""

    user_id: int
    subject: str
    display_name: str
    role: Role
    workspace_ids: frozenset[int] = frozenset()
    default_workspace_id: int | None = None

    @property
    def can_run(self) -> bool:
        """Members and admins run and spend; viewers only look."""
        return self.role != "viewer"

    @property
    def is_admin(self) -> bool:
        """Admins manage users, roles, budgets and workspaces."""
        return self.role == "admin"

    def require_run(self) -> None:
        """Raise :class:`AccessDeniedError` unless this user may run models and spend."""
        if not self.can_run:
            raise AccessDeniedError(
                "Your role is viewer: you can browse shared work but not run models. "
                "Ask an admin for the member role."
            )

    def require_admin(self) -> None:
        """Raise :class:`AccessDeniedError` unless this user is an admin."""
        if not self.is_admin:
            raise AccessDeniedError("Only admins can do this.")


class Owned(Protocol):
    """A row with an owner and :class:`~playground.store.models.Shared` columns."""

    owner: str | None
    workspace_id: int | None
    visibility: str


def owns(owner: str | None, principal: Principal | None) -> bool:
    """Whether ``principal`` may change, share, delete or steer a row owned by ``owner``.

    Only the owner may; ``None``, the local user, owns everything.
    """
    return principal is None or owner == principal.subject


def can_view(row: Owned, principal: Principal | None) -> bool:
    """Whether ``principal`` may see ``row`` (``None``, the local user, sees everything)."""
    if principal is None or owns(row.owner, principal):
        return True
    return row.visibility == "workspace" and row.workspace_id in principal.workspace_ids


def visible_to(model: Any, principal: Principal | None) -> sa.ColumnElement[bool]:
    """The SQL form of :func:`can_view` for the ORM class ``model`` (owned rows)."""
    if principal is None:
        return sa.true()
    return visible_to_viewer(model, principal.subject, sorted(principal.workspace_ids) or None)


def visible_to_viewer(
    model: Any, subject: Any, workspace_ids: Any | None
) -> sa.ColumnElement[bool]:
    """:func:`visible_to` for a viewer given as its ``subject`` and ``workspace_ids``, values
    or bound parameters (a statement built once for every viewer); ``workspace_ids`` is
    ``None`` when the viewer belongs to no workspace."""
    if workspace_ids is None:
        return model.owner == subject  # type: ignore[no-any-return]
    shared = sa.and_(model.visibility == "workspace", model.workspace_id.in_(workspace_ids))
    return sa.or_(model.owner == subject, shared)
