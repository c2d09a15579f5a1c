"""Signed-in people for hosted-mode tests: users, roles, budgets and workspaces in a store.

Everything goes through the real functions an admin's actions call (``sign_in``,
``set_role``, ``set_limits``, ``create_workspace``, ``set_membership``), on any
:class:`~playground.store.Store`: the app's (AppTest) or a separate app process's (browser).

AppTest cannot send a reverse proxy's identity header, and ``app.py`` signs the user in on
every run; so page tests run one page script directly with the principal already in the
session, where :func:`ui.auth.current_principal` reads it (:func:`open_page_as`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from playground.access import Identity, Principal
from playground.access.users import (
    create_workspace,
    get_user,
    principal_of,
    set_limits,
    set_membership,
    set_role,
    sign_in,
)
from playground.config import Role, Settings
from playground.store import Store
from ui.auth import PRINCIPAL_KEY

ROOT = Path(__file__).resolve().parents[1]
ADMIN_EMAIL = "admin@example.org"
PROXY_SECRET = "the-proxy-secret-of-the-test-server"
PAGE_TIMEOUT_S = 10.0


def team_settings() -> Settings:
    """A hosted server's settings: proxy sign-in, :data:`ADMIN_EMAIL` the first admin."""
    return Settings(
        _env_file=None,
        auth_mode="proxy",
        proxy_secret=SecretStr(PROXY_SECRET),
        admin_emails=ADMIN_EMAIL,
        default_role="member",
    )


def signed_in(store: Store, email: str, role: Role = "member") -> Principal:
    """``email`` signed in (created on first use) with ``role``, as the admin set it."""
    with store.session() as session, session.begin():
        person = sign_in(session, Identity(email, email, email.split("@")[0]), team_settings())
        if person.role != role:
            set_role(session, _admin(session), person.user_id, role)
        return principal_of(session, get_user(session, person.user_id))


def refreshed(store: Store, principal: Principal) -> Principal:
    """``principal`` as their next page run sees them (role and workspaces re-read)."""
    with store.session() as session, session.begin():
        return principal_of(session, get_user(session, principal.user_id))


def set_daily_budget(store: Store, principal: Principal, tokens: int | None) -> None:
    """The admin gives ``principal`` a daily budget of ``tokens`` billing tokens."""
    set_user_limits(store, principal, daily_budget_tokens=tokens)


def set_user_limits(
    store: Store,
    principal: Principal,
    *,
    daily_budget_tokens: int | None = None,
    monthly_budget_tokens: int | None = None,
    requests_per_minute: int | None = None,
) -> None:
    """The admin sets ``principal``'s own limits (``None``: the server default)."""
    with store.session() as session, session.begin():
        set_limits(
            session,
            _admin(session),
            principal.user_id,
            daily_budget_tokens=daily_budget_tokens,
            monthly_budget_tokens=monthly_budget_tokens,
            requests_per_minute=requests_per_minute,
        )


def make_workspace(store: Store, name: str, members: Iterable[Principal]) -> int:
    """A workspace named ``name`` with ``members``; its id (members must be :func:`refreshed`)."""
    with store.session() as session, session.begin():
        admin = _admin(session)
        workspace_id = create_workspace(session, admin, name)
        for member in members:
            set_membership(session, admin, workspace_id, member.user_id, True)
        return workspace_id


def open_page_as(
    page: str, principal: Principal | None, query_params: dict[str, str] | None = None
) -> AppTest:
    """Run ``page`` (e.g. ``pages/history.py``) once as ``principal`` signed in.

    ``query_params`` are the URL's, e.g. ``{"comparison": "12", "token": "…"}``.
    """
    at = AppTest.from_file(str(ROOT / page), default_timeout=PAGE_TIMEOUT_S)
    at.session_state[PRINCIPAL_KEY] = principal
    for name, value in (query_params or {}).items():
        at.query_params[name] = value
    return at.run()


def _admin(session: Session) -> Principal:
    admin = sign_in(session, Identity(ADMIN_EMAIL, ADMIN_EMAIL, "admin"), team_settings())
    assert admin.is_admin
    return admin
