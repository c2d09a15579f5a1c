"""Users, roles, workspaces and personal keys in the database (hosted mode).

Store functions: they take a session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from playground.access.identity import Identity
from playground.access.keys import KeyVault
from playground.config import Role, Settings
from playground.errors import AccessDeniedError, ConfigError, InvalidRequestError, SignInError
from playground.principal import Principal
from playground.store.eval_models import BatchRow, DatasetRow, PromptTemplateRow
from playground.store.hosted_models import ROLES, UserRow, WorkspaceMemberRow, WorkspaceRow
from playground.store.models import Comparison, Result
from playground.store.rollups import kept_in_step

MAX_WORKSPACE_NAME_CHARS = 200
LAST_SEEN_EVERY = timedelta(minutes=1)
_OWNED_MODELS = (Comparison, PromptTemplateRow, DatasetRow, BatchRow)


@dataclass(frozen=True)
class Limits:
    """One user's spending limits in billing tokens and requests (``None``: unlimited)."""

    daily_budget_tokens: int | None
    monthly_budget_tokens: int | None
    requests_per_minute: int


def sign_in(
    session: Session, identity: Identity, settings: Settings, *, now: datetime | None = None
) -> Principal:
    """The principal of ``identity``, creating its user on first sign-in.

    A new user is an admin when their e-mail is in ``PLAYGROUND_ADMIN_EMAILS``, else gets
    ``PLAYGROUND_DEFAULT_ROLE``. A disabled user gets :class:`SignInError`.
    """
    return signed_in(session, identity, settings, now=now).principal


@dataclass(frozen=True)
class SignedIn:
    """What :func:`signed_in` found: the principal, their stored user, and whether this
    sign-in created that user (their first one)."""

    principal: Principal
    user: UserRow
    created: bool
    joined: tuple[Any, ...] | None = None
    """The row of the ``joined`` subquery read with the user (``None`` when this sign-in
    created the user: nothing was read then)."""


def signed_in(
    session: Session,
    identity: Identity,
    settings: Settings,
    *,
    now: datetime | None = None,
    joined: sa.Subquery | None = None,
    joined_params: Mapping[str, Any] | None = None,
) -> SignedIn:
    """:func:`sign_in`, keeping the user row: the session holds loaded rows weakly, so a
    caller that reads it again later would otherwise query it again.

    ``joined``: a one-row subquery to read in the same statement as the user (their
    spend, on every page run), with the values of its parameters (``joined_params``),
    returned in :attr:`SignedIn.joined`.
    """
    now = now or datetime.now(UTC)
    found = _known_user(session, identity, joined, joined_params)
    if found is not None:
        return _signed_in_as(found, identity, now)
    admin = identity.email is not None and identity.email in settings.admin_email_set
    candidate = UserRow(
        subject=identity.subject,
        email=identity.email,
        display_name=identity.display_name,
        role="admin" if admin else settings.default_role,
        disabled=False,
        created_utc=now,
    )
    try:
        # Two first sign-ins at once (two tabs): the loser reads the winner's row.
        with session.begin_nested():
            session.add(candidate)
        user, created = candidate, True
    except IntegrityError:
        winner = _user_by_subject(session, identity.subject)
        if winner is None:
            raise
        user, created = winner, False
    _admit(user, identity, now)
    return SignedIn(principal_of(session, user), user, created)


def known_user_signed_in(
    session: Session,
    identity: Identity,
    *,
    now: datetime | None = None,
    joined: sa.Subquery | None = None,
    joined_params: Mapping[str, Any] | None = None,
) -> SignedIn | None:
    """:func:`signed_in` for a user who signed in before, or ``None`` for a first sign-in
    (which creates the user: call :func:`signed_in` in a transaction then).

    Reads in one statement and changes at most the user's own row (when they were last
    seen, their display name): a session without a transaction around it (autocommit)
    serves every page run but a user's first in one round trip, and commits that change
    by itself. A disabled user gets :class:`SignInError`.
    """
    found = _known_user(session, identity, joined, joined_params)
    if found is None:
        return None
    return _signed_in_as(found, identity, now or datetime.now(UTC))


class _Known(NamedTuple):
    user: UserRow
    workspace_ids: list[int]
    joined: tuple[Any, ...] | None


def _known_user(
    session: Session,
    identity: Identity,
    joined: sa.Subquery | None,
    joined_params: Mapping[str, Any] | None,
) -> _Known | None:
    """The user of ``identity``, their workspaces and the ``joined`` row, in one statement;
    ``None`` if they never signed in."""
    found = session.execute(
        _sign_in_statement(joined), {**(joined_params or {}), "sign_in_subject": identity.subject}
    ).all()
    if not found:
        return None
    return _Known(
        found[0][0],
        sorted(row[1] for row in found if row[1] is not None),
        tuple(found[0][2:]) if joined is not None else None,
    )


def _signed_in_as(found: _Known, identity: Identity, now: datetime) -> SignedIn:
    _admit(found.user, identity, now)
    return SignedIn(_principal(found.user, found.workspace_ids), found.user, False, found.joined)


def _admit(user: UserRow, identity: Identity, now: datetime) -> None:
    """Refuse a disabled ``user``; else note this visit on their row."""
    if user.disabled:
        raise SignInError("Your account is disabled on this server; ask an admin.")
    # Every page view signs in again; writing last_seen once a minute is precise enough.
    if user.last_seen_utc is None or now - user.last_seen_utc > LAST_SEEN_EVERY:
        user.last_seen_utc = now
    if identity.display_name and user.display_name != identity.display_name:
        user.display_name = identity.display_name


@functools.lru_cache(maxsize=8)
def _sign_in_statement(joined: sa.Subquery | None) -> sa.Select[Any]:
    """The user of the parameter ``sign_in_subject`` and their workspaces (a row per
    workspace), with ``joined``'s columns: one round trip. Built once per ``joined``: every
    page run signs in again, and building the statement cost more than running it."""
    query = (
        sa.select(
            UserRow, WorkspaceMemberRow.workspace_id, *(joined.c if joined is not None else ())
        )
        .select_from(UserRow)
        .outerjoin(WorkspaceMemberRow, WorkspaceMemberRow.user_id == UserRow.id)
    )
    if joined is not None:
        query = query.join(joined, sa.true())
    return query.where(UserRow.subject == sa.bindparam("sign_in_subject", type_=sa.String()))


def _user_by_subject(session: Session, subject: str) -> UserRow | None:
    return session.scalars(sa.select(UserRow).where(UserRow.subject == subject)).first()


def principal_of(session: Session, user: UserRow) -> Principal:
    """The :class:`Principal` of a stored user, with their workspaces."""
    workspace_ids = sorted(
        session.scalars(
            sa.select(WorkspaceMemberRow.workspace_id).where(WorkspaceMemberRow.user_id == user.id)
        )
    )
    return _principal(user, workspace_ids)


def _principal(user: UserRow, workspace_ids: list[int]) -> Principal:
    """The principal of ``user``, member of ``workspace_ids`` (sorted)."""
    role = cast(Role, user.role)  # only ROLES are ever written (sign_in, set_role)
    return Principal(
        user_id=user.id,
        subject=user.subject,
        display_name=user.display_name,
        role=role,
        workspace_ids=frozenset(workspace_ids),
        default_workspace_id=workspace_ids[0] if workspace_ids else None,
    )


def get_user(session: Session, user_id: int) -> UserRow:
    """The user with ``user_id``; :class:`InvalidRequestError` if there is none."""
    user = session.get(UserRow, user_id)
    if user is None:
        raise InvalidRequestError(f"There is no user #{user_id}.")
    return user


def list_users(session: Session) -> list[UserRow]:
    """Every user, admins first, then by e-mail/subject."""
    order = sa.case({"admin": 0, "member": 1}, value=UserRow.role, else_=2)
    return list(session.scalars(sa.select(UserRow).order_by(order, UserRow.subject)))


def set_role(session: Session, actor: Principal, user_id: int, role: str) -> None:
    """Give a user a role (admins only); an admin cannot demote themself (no lock-out)."""
    actor.require_admin()
    if role not in ROLES:
        raise InvalidRequestError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if user_id == actor.user_id and role != "admin":
        raise AccessDeniedError("You cannot remove your own admin role; ask another admin.")
    get_user(session, user_id).role = role


def set_disabled(session: Session, actor: Principal, user_id: int, disabled: bool) -> None:
    """Disable or re-enable a user's sign-in (admins only; not themself)."""
    actor.require_admin()
    if user_id == actor.user_id:
        raise AccessDeniedError("You cannot disable your own account.")
    get_user(session, user_id).disabled = disabled


def set_limits(
    session: Session,
    actor: Principal,
    user_id: int,
    *,
    daily_budget_tokens: int | None,
    monthly_budget_tokens: int | None,
    requests_per_minute: int | None,
) -> None:
    """Set a user's own limits (admins only); ``None`` falls back to the server defaults."""
    actor.require_admin()
    for name, value in (
        ("daily budget", daily_budget_tokens),
        ("monthly budget", monthly_budget_tokens),
        ("requests per minute", requests_per_minute),
    ):
        if value is not None and value < 0:
            raise InvalidRequestError(f"The {name} cannot be negative.")
    user = get_user(session, user_id)
    user.daily_budget_tokens = daily_budget_tokens
    user.monthly_budget_tokens = monthly_budget_tokens
    user.requests_per_minute = requests_per_minute


def limits_of(user: UserRow | None, settings: Settings) -> Limits:
    """The limits in force for ``user``: their own where set, else the server defaults
    (all of them for ``None``, an owner without a user record)."""
    daily, monthly, per_minute = (
        (None, None, None)
        if user is None
        else (user.daily_budget_tokens, user.monthly_budget_tokens, user.requests_per_minute)
    )
    return Limits(
        daily_budget_tokens=daily if daily is not None else settings.default_daily_budget_tokens,
        monthly_budget_tokens=(
            monthly if monthly is not None else settings.default_monthly_budget_tokens
        ),
        requests_per_minute=(
            per_minute if per_minute is not None else settings.default_requests_per_minute
        ),
    )


def limits_of_subject(session: Session, subject: str, settings: Settings) -> Limits:
    """The limits in force for the user who owns rows as ``subject`` (see :func:`limits_of`)."""
    return limits_of(_user_by_subject(session, subject), settings)


def create_workspace(
    session: Session, actor: Principal, name: str, *, now: datetime | None = None
) -> int:
    """A new workspace named ``name`` (admins only); its id."""
    actor.require_admin()
    name = name.strip()
    if not name or len(name) > MAX_WORKSPACE_NAME_CHARS:
        raise InvalidRequestError(
            f"A workspace name must be 1–{MAX_WORKSPACE_NAME_CHARS} characters."
        )
    if session.scalars(sa.select(WorkspaceRow.id).where(WorkspaceRow.name == name)).first():
        raise InvalidRequestError(f"A workspace named {name!r} already exists.")
    workspace = WorkspaceRow(name=name, created_utc=now or datetime.now(UTC))
    session.add(workspace)
    session.flush()
    return workspace.id


def list_workspaces(session: Session) -> list[tuple[int, str, list[str]]]:
    """Every workspace as ``(id, name, member subjects)``, by name."""
    members: dict[int, list[str]] = {}
    rows = session.execute(
        sa.select(WorkspaceMemberRow.workspace_id, UserRow.subject)
        .join(UserRow, UserRow.id == WorkspaceMemberRow.user_id)
        .order_by(UserRow.subject)
    )
    for workspace_id, subject in rows:
        members.setdefault(workspace_id, []).append(subject)
    return [
        (w.id, w.name, members.get(w.id, []))
        for w in session.scalars(sa.select(WorkspaceRow).order_by(WorkspaceRow.name))
    ]


def set_membership(
    session: Session, actor: Principal, workspace_id: int, user_id: int, member: bool
) -> None:
    """Add ``user_id`` to a workspace or remove them (admins only)."""
    actor.require_admin()
    if session.get(WorkspaceRow, workspace_id) is None:
        raise InvalidRequestError(f"There is no workspace #{workspace_id}.")
    get_user(session, user_id)
    row = session.get(WorkspaceMemberRow, (workspace_id, user_id))
    if member and row is None:
        session.add(WorkspaceMemberRow(workspace_id=workspace_id, user_id=user_id))
    elif not member and row is not None:
        session.delete(row)


def delete_workspace(session: Session, actor: Principal, workspace_id: int) -> None:
    """Delete a workspace (admins only); its objects become private to their owners."""
    actor.require_admin()
    shared = session.scalars(
        sa.select(Comparison.id).where(Comparison.workspace_id == workspace_id)
    ).all()
    # The usage rollups count shared comparisons per workspace: they move to private.
    with kept_in_step(session, Result.comparison_id.in_(shared)):
        for model in _OWNED_MODELS:
            session.execute(
                sa.update(model)
                .where(model.workspace_id == workspace_id)
                .values(workspace_id=None, visibility="private")
            )
    session.execute(sa.delete(WorkspaceRow).where(WorkspaceRow.id == workspace_id))


def save_personal_key(
    session: Session, principal: Principal, vault: KeyVault, api_key: SecretStr
) -> str:
    """Store the user's own API key encrypted; returns the masked hint now on file."""
    value = api_key.get_secret_value().strip()
    if not value:
        raise InvalidRequestError("The API key is empty.")
    token, hint = vault.seal(SecretStr(value))
    user = get_user(session, principal.user_id)
    user.api_key_encrypted = token
    user.api_key_hint = hint
    return hint


def clear_personal_key(session: Session, principal: Principal) -> None:
    """Forget the user's own API key."""
    user = get_user(session, principal.user_id)
    user.api_key_encrypted = None
    user.api_key_hint = None


def personal_key(session: Session, principal: Principal, vault: KeyVault) -> SecretStr | None:
    """The user's own API key, decrypted for a request; ``None`` when they saved none."""
    user = get_user(session, principal.user_id)
    return vault.open(user.api_key_encrypted) if user.api_key_encrypted else None


@dataclass(frozen=True)
class KeyRotation:
    """What :func:`rotate_personal_keys` did."""

    rotated: int
    # Users (subjects) whose saved key none of the vault's secrets opens: they re-enter it.
    unreadable: tuple[str, ...]


def rotate_personal_keys(session: Session, vault: KeyVault) -> KeyRotation:
    """Re-encrypt every saved personal key with the vault's current secret.

    A key saved again while this runs is left as saved (it is already under the secret of
    the process that saved it); a key no secret opens is left alone and reported.
    """
    rows = session.execute(
        sa.select(UserRow.id, UserRow.subject, UserRow.api_key_encrypted)
        .where(UserRow.api_key_encrypted.is_not(None))
        .order_by(UserRow.id)
    ).all()
    rotated, unreadable = 0, []
    for user_id, subject, token in rows:
        try:
            new_token = vault.rotate(str(token))
        except ConfigError:
            unreadable.append(subject)
            continue
        changed = session.execute(
            sa.update(UserRow)
            .where(UserRow.id == user_id, UserRow.api_key_encrypted == token)
            .values(api_key_encrypted=new_token)
            .execution_options(synchronize_session=False)
        )
        rotated += cast(sa.CursorResult[Any], changed).rowcount
    return KeyRotation(rotated, tuple(unreadable))
