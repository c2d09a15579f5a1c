"""Hosted team mode on top of :mod:`playground.services.runtime`: sign-in, keys, spending, audit.

Every function takes the :class:`~playground.access.Principal` the page resolved; local mode
(no sign-in) passes ``None`` and keeps today's single-user behaviour. Checks happen here,
on the server, before anything is sent or spent; the pages only show the messages.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.orm import Session

from playground.access import Identity, Principal, identity_from_oidc, identity_from_proxy
from playground.access.audit import AuditEvent, list_events, record_event
from playground.access.keys import KeyVault
from playground.access.spending import (
    Spend,
    SpendQuery,
    check_spending,
    spend_from,
    spend_of,
    spend_query,
)
from playground.access.users import (
    Limits,
    SignedIn,
    clear_personal_key,
    create_workspace,
    delete_workspace,
    get_user,
    known_user_signed_in,
    limits_of,
    list_users,
    list_workspaces,
    personal_key,
    save_personal_key,
    set_disabled,
    set_limits,
    set_membership,
    set_role,
    signed_in,
)
from playground.errors import ConfigError, InvalidRequestError
from playground.evaluation.plan import BatchSpec
from playground.services import runtime
from playground.store.eval_models import BatchCellRow, BatchRow

# The roles the Admin page offers; named here so pages need no store import.
from playground.store.hosted_models import ROLES as ROLES
from playground.store.hosted_models import UserRow
from playground.store.models import Comparison, Result

TEAM_KEY = "team"
PERSONAL_KEY = "personal"


def proxy_identity(headers: Mapping[str, str], peer_ip: str | None) -> Identity:
    """The user named by the reverse proxy's header, if the peer is a trusted proxy.

    Refuses to sign anyone in while the web server rewrites the peer address from
    ``X-Forwarded-For`` (uvicorn's default): then the peer check would see the browser's
    claimed address, not the proxy's.
    """
    if os.environ.get("FORWARDED_ALLOW_IPS", None) != "":
        raise ConfigError(
            "Proxy sign-in needs the app started with FORWARDED_ALLOW_IPS= (empty), so the "
            "peer address is the proxy's own; see docs/deploy.md."
        )
    settings = runtime.get_settings()
    if settings.proxy_secret is None:  # Settings refuse proxy mode without one
        raise ConfigError("PLAYGROUND_PROXY_SECRET is not set.")
    return identity_from_proxy(
        headers,
        peer_ip,
        header=settings.identity_header,
        trusted_proxies=settings.trusted_proxy_list,
        secret=settings.proxy_secret,
    )


def oidc_identity(user_info: Mapping[str, Any]) -> Identity:
    """The user Streamlit's OIDC login (``st.user``) signed in."""
    return identity_from_oidc(user_info)


def sign_in_user(identity: Identity) -> Principal:
    """The principal for ``identity`` (created on first sign-in; see :func:`sign_in`)."""
    with runtime.get_store().session() as session, session.begin():
        return _sign_in(session, identity).principal


@dataclass(frozen=True)
class PageView:
    """What every hosted page run needs of its user: who they are, the connection they run
    with, and their limits and spend (the sidebar)."""

    principal: Principal
    connection: runtime.Connection
    limits: Limits
    spend: Spend


def page_view(identity: Identity) -> PageView:
    """Sign ``identity`` in and read everything a page run shows of them (a page run is on
    the way to every live answer: each round trip counts): their spend is read in the
    sign-in's statement.

    A user who signed in before is read with no transaction around the statement (BEGIN
    and COMMIT were two more round trips on every page run); what their sign-in changes
    of their own row (when last seen, once a minute) is one statement, committed by
    itself. A first sign-in creates the user, and audits the server's first, in one
    transaction.
    """
    spend = spend_query(identity.subject)
    store = runtime.get_store()
    with store.session() as session:
        session.connection(execution_options=_WITHOUT_TRANSACTION)
        known = known_user_signed_in(
            session, identity, joined=spend.subquery, joined_params=spend.params
        )
        if known is not None:
            view = _page_view(session, known)
            session.commit()
            return view
    with store.session() as session, session.begin():
        return _page_view(session, _sign_in(session, identity, joined=spend))


_WITHOUT_TRANSACTION = {"isolation_level": "AUTOCOMMIT"}


def _page_view(session: Session, found: SignedIn) -> PageView:
    principal = found.principal
    return PageView(
        principal,
        _connection(session, principal, found.user),
        limits_of(found.user, runtime.get_settings()),
        spend_from(found.joined)
        if found.joined is not None
        else spend_of(session, principal.subject),
    )


def _sign_in(session: Session, identity: Identity, *, joined: SpendQuery | None = None) -> SignedIn:
    """Sign ``identity`` in (see :func:`signed_in`, ``joined`` included); the server's very
    first user's sign-in is audited.

    The users are counted only when this sign-in created its user: every page run signs in
    again, and a count per page run is a round trip spent on a question settled long ago.
    """
    found = signed_in(
        session,
        identity,
        runtime.get_settings(),
        joined=None if joined is None else joined.subquery,
        joined_params=None if joined is None else joined.params,
    )
    if found.created and session.scalar(sa.select(sa.func.count()).select_from(UserRow)) == 1:
        record_event(
            session, found.principal.subject, "user.first_sign_in", found.principal.subject
        )
    return found


def key_vault() -> KeyVault:
    """The vault for personal keys (a :class:`ConfigError` without a server secret)."""
    settings = runtime.get_settings()
    return KeyVault(settings.secret_key, settings.old_secret_key_list)


def connection_for(principal: Principal) -> runtime.Connection:
    """The connection a signed-in user runs with: their personal key, else the team key.

    Hosted users cannot point the server at another base URL or type a session key: the
    server's settings decide where requests go.
    """
    with runtime.get_store().session() as session, session.begin():
        return _connection(session, principal, get_user(session, principal.user_id))


def _connection(session: Session, principal: Principal, user: UserRow) -> runtime.Connection:
    settings = runtime.get_settings()
    api_key: SecretStr | None = None
    source = None
    if user.api_key_encrypted:
        api_key = personal_key(session, principal, key_vault())
        source = PERSONAL_KEY
    if api_key is None and settings.elumenta_api_key is not None:
        api_key, source = settings.elumenta_api_key, TEAM_KEY
    provider = settings.provider or ("elumenta" if api_key else "demo")
    return runtime.Connection(
        provider,
        settings.elumenta_base_url,
        api_key,
        "session" if source == PERSONAL_KEY else ("environment" if source else None),
    )


def key_hint(principal: Principal) -> str | None:
    """The masked hint of the user's personal key, or ``None`` when they saved none."""
    with runtime.get_store().session() as session, session.begin():
        return get_user(session, principal.user_id).api_key_hint


def store_personal_key(principal: Principal, api_key: SecretStr) -> str:
    """Encrypt and save the user's own key (audited); returns its masked hint."""
    vault = key_vault()
    with runtime.get_store().session() as session, session.begin():
        hint = save_personal_key(session, principal, vault, api_key)
        record_event(session, principal.subject, "key.saved", principal.subject, {"hint": hint})
    return hint


def forget_personal_key(principal: Principal) -> None:
    """Delete the user's own key (audited); runs fall back to the team key."""
    with runtime.get_store().session() as session, session.begin():
        clear_personal_key(session, principal)
        record_event(session, principal.subject, "key.cleared", principal.subject)


def limits_and_spend(principal: Principal) -> tuple[Limits, Spend]:
    """The user's limits in force and what they spent so far (for the sidebar and Settings)."""
    with runtime.get_store().session() as session, session.begin():
        return _limits_and_spend(session, principal)


def _limits_and_spend(session: Session, principal: Principal) -> tuple[Limits, Spend]:
    """The user's limits in force and their spend, read in one statement (Run's callback
    waits for the transaction that checks them: each round trip is on the way to every
    first answer). :class:`InvalidRequestError` if the user is gone."""
    spend = spend_query(principal.subject)
    found = session.execute(
        _user_with_spend(spend.subquery), {**spend.params, "limits_user_id": principal.user_id}
    ).first()
    if found is None:
        raise InvalidRequestError(f"There is no user #{principal.user_id}.")
    return limits_of(found[0], runtime.get_settings()), spend_from(tuple(found[1:]))


@functools.lru_cache(maxsize=4)
def _user_with_spend(spend: sa.Subquery) -> sa.Select[Any]:
    """The user of the parameter ``limits_user_id`` and the columns of ``spend``: built once,
    as Run's callback reads them for every comparison."""
    return (
        sa.select(UserRow, *spend.c)
        .join(spend, sa.true())
        .where(UserRow.id == sa.bindparam("limits_user_id", type_=sa.Integer()))
    )


def check_limits(
    session: Session, principal: Principal, *, requests: int, estimated_tokens: int
) -> None:
    """Refuse (``AccessDeniedError``, ``SpendingLimitError``) what would pass the user's limits.

    ``requests`` more model requests costing about ``estimated_tokens`` billing tokens,
    against the limits in force for ``principal`` (theirs, else the server's defaults).
    """
    limits, spent = _limits_and_spend(session, principal)
    check_spending(
        session,
        principal,
        limits,
        requests=requests,
        estimated_tokens=estimated_tokens,
        spend_so_far=spent,
    )


def spend_by_user_and_model(principal: Principal) -> list[dict[str, Any]]:
    """Billing tokens and requests per user and model, all time (admins only; no content).

    A batch's LLM judge is its own row, ``<model> (judge)``, under the batch's owner: it
    counts toward their budget like their answers do.
    """
    principal.require_admin()
    totals: dict[tuple[str, str], list[int]] = {}
    with runtime.get_store().session() as session, session.begin():
        answers = session.execute(
            sa.select(
                Comparison.owner,
                Result.model,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(Result.tokens_used), 0),
            )
            .join(Comparison, Comparison.id == Result.comparison_id)
            .where(Result.cached.is_(False))
            .group_by(Comparison.owner, Result.model)
        )
        for owner, model, n, tokens in answers:
            totals[(owner or "(local)", model)] = [n, int(tokens or 0)]
        judged = session.execute(
            sa.select(
                BatchRow.owner,
                BatchRow.spec_json,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(BatchCellRow.judge_tokens), 0),
            )
            .join(BatchRow, BatchRow.id == BatchCellRow.batch_id)
            .where(BatchCellRow.judged_utc.is_not(None))
            .group_by(BatchRow.id)
        )
        for owner, spec_json, cells, tokens in judged:
            spec = BatchSpec.from_json(spec_json)
            rubrics = sum(a.kind == "llm_judge" for a in spec.assertions)
            model = f"{spec.judge.model if spec.judge else '?'} (judge)"
            total = totals.setdefault((owner or "(local)", model), [0, 0])
            total[0] += cells * max(1, rubrics)
            total[1] += int(tokens or 0)
    return [
        {"user": user, "model": model, "requests": n, "tokens": tokens}
        for (user, model), (n, tokens) in sorted(totals.items())
    ]


def audit_log(principal: Principal, *, actor: str | None = None) -> list[AuditEvent]:
    """The newest audit events (admins only)."""
    principal.require_admin()
    with runtime.get_store().session() as session, session.begin():
        return list_events(session, actor=actor or None)


@dataclass(frozen=True)
class UserSummary:
    """One row of the admin page's user table: who, role, limits, spend, key on file."""

    user_id: int
    subject: str
    display_name: str
    role: str
    disabled: bool
    daily_budget_tokens: int | None
    monthly_budget_tokens: int | None
    requests_per_minute: int | None
    spent_today: int
    spent_month: int
    key_hint: str | None
    last_seen: datetime | None


def user_summaries(principal: Principal) -> list[UserSummary]:
    """Every user with their limits and this day's/month's spend (admins only)."""
    principal.require_admin()
    with runtime.get_store().session() as session, session.begin():
        summaries = []
        for user in list_users(session):
            spend = spend_of(session, user.subject)
            summaries.append(
                UserSummary(
                    user_id=user.id,
                    subject=user.subject,
                    display_name=user.display_name,
                    role=user.role,
                    disabled=user.disabled,
                    daily_budget_tokens=user.daily_budget_tokens,
                    monthly_budget_tokens=user.monthly_budget_tokens,
                    requests_per_minute=user.requests_per_minute,
                    spent_today=spend.today_tokens,
                    spent_month=spend.month_tokens,
                    key_hint=user.api_key_hint,
                    last_seen=user.last_seen_utc,
                )
            )
        return summaries


def update_user(principal: Principal, before: UserSummary, after: UserSummary) -> list[str]:
    """Apply an admin's edits of one user row; returns what changed (each change audited)."""
    changes: list[str] = []
    with runtime.get_store().session() as session, session.begin():
        if after.role != before.role:
            set_role(session, principal, before.user_id, after.role)
            changes.append(f"role {before.role} → {after.role}")
        if after.disabled != before.disabled:
            set_disabled(session, principal, before.user_id, after.disabled)
            changes.append("disabled" if after.disabled else "enabled")
        limits = (after.daily_budget_tokens, after.monthly_budget_tokens, after.requests_per_minute)
        if limits != (
            before.daily_budget_tokens,
            before.monthly_budget_tokens,
            before.requests_per_minute,
        ):
            set_limits(
                session,
                principal,
                before.user_id,
                daily_budget_tokens=after.daily_budget_tokens,
                monthly_budget_tokens=after.monthly_budget_tokens,
                requests_per_minute=after.requests_per_minute,
            )
            changes.append("limits")
        if changes:
            record_event(
                session,
                principal.subject,
                "user.update",
                before.subject,
                {
                    "changes": changes,
                    "role": after.role,
                    "disabled": after.disabled,
                    "daily_budget_tokens": after.daily_budget_tokens,
                    "monthly_budget_tokens": after.monthly_budget_tokens,
                    "requests_per_minute": after.requests_per_minute,
                },
            )
    return changes


def workspaces(principal: Principal) -> list[tuple[int, str, list[str]]]:
    """Every workspace with its members' subjects for an admin; for anyone else only the
    workspaces they belong to (what they can share with)."""
    with runtime.get_store().session() as session, session.begin():
        found = list_workspaces(session)
    if principal.is_admin:
        return found
    return [w for w in found if w[0] in principal.workspace_ids]


def add_workspace(principal: Principal, name: str) -> int:
    """Create a workspace (admins only, audited)."""
    with runtime.get_store().session() as session, session.begin():
        workspace_id = create_workspace(session, principal, name)
        record_event(session, principal.subject, "workspace.create", f"workspace:{workspace_id}")
    return workspace_id


def set_workspace_members(principal: Principal, workspace_id: int, subjects: list[str]) -> None:
    """Make ``subjects`` exactly the members of a workspace (admins only, audited)."""
    with runtime.get_store().session() as session, session.begin():
        wanted = set(subjects)
        for user in list_users(session):
            set_membership(session, principal, workspace_id, user.id, user.subject in wanted)
        record_event(
            session,
            principal.subject,
            "workspace.members",
            f"workspace:{workspace_id}",
            {"members": sorted(wanted)},
        )


def remove_workspace(principal: Principal, workspace_id: int) -> None:
    """Delete a workspace; its work becomes private to each owner (admins only, audited)."""
    with runtime.get_store().session() as session, session.begin():
        delete_workspace(session, principal, workspace_id)
        record_event(session, principal.subject, "workspace.delete", f"workspace:{workspace_id}")
