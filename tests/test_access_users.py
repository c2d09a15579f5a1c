"""Users, roles, limits, workspaces and personal keys in a real database (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.orm import Session

from playground.access import Identity, Principal
from playground.access.keys import MIN_SECRET_CHARS, KeyVault
from playground.access.users import (
    Limits,
    clear_personal_key,
    create_workspace,
    delete_workspace,
    get_user,
    known_user_signed_in,
    limits_of,
    list_users,
    list_workspaces,
    personal_key,
    principal_of,
    save_personal_key,
    set_disabled,
    set_limits,
    set_membership,
    set_role,
    sign_in,
)
from playground.config import Role, Settings
from playground.errors import (
    AccessDeniedError,
    ConfigError,
    InvalidRequestError,
    SignInError,
)
from playground.store import Store
from playground.store.eval_models import PromptTemplateRow
from playground.store.hosted_models import UserRow, WorkspaceMemberRow, WorkspaceRow
from playground.store.models import Comparison
from tests.store_fixtures import T0, seed_comparison

ADMIN_EMAIL = "boss@example.org"
API_KEY = "nb_live_4f9c2a7e1b3d5a6c8e0f"
SERVER_SECRET = SecretStr("a-long-random-server-secret-0123456789")


def hosted_settings(**fields: object) -> Settings:
    """Settings of a hosted server, independent of the developer's environment."""
    values: dict[str, object] = {
        "auth_mode": "proxy",
        "proxy_secret": SecretStr("the-proxy-secret-of-these-tests"),
        "admin_emails": ADMIN_EMAIL,
        "default_role": "member",
        "default_daily_budget_tokens": None,
        "default_monthly_budget_tokens": None,
        "default_requests_per_minute": 60,
    }
    values.update(fields)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def person(email: str, name: str | None = None) -> Identity:
    """The identity a proxy would report for ``email``."""
    return Identity(subject=email, email=email, display_name=name or email.split("@")[0])


def user_with_role(session: Session, email: str, role: Role) -> Principal:
    """Sign ``email`` in and give them ``role`` directly (the fixture for other tests)."""
    principal = sign_in(session, person(email), hosted_settings(default_role=role))
    get_user(session, principal.user_id).role = role
    return principal_of(session, get_user(session, principal.user_id))


def refreshed(session: Session, principal: Principal) -> Principal:
    """``principal`` as a new request would see them (workspaces and role re-read)."""
    return principal_of(session, get_user(session, principal.user_id))


@pytest.fixture
def store(reused_store: Store) -> Store:
    """The session's migrated store on each backend, emptied for this test."""
    return reused_store


# --- sign_in --------------------------------------------------------------------------


def test_first_sign_in_creates_the_user_and_the_second_finds_it(session: Session) -> None:
    settings = hosted_settings()
    first = sign_in(session, person("ana@example.org", "Ana"), settings, now=T0)
    second = sign_in(
        session, person("ana@example.org", "Ana Smith"), settings, now=T0 + timedelta(hours=1)
    )
    assert second.user_id == first.user_id
    assert second.subject == "ana@example.org"
    users = session.scalars(sa.select(UserRow)).all()
    assert len(users) == 1
    assert users[0].created_utc == T0
    assert users[0].last_seen_utc == T0 + timedelta(hours=1)
    assert users[0].display_name == "Ana Smith"
    assert second.display_name == "Ana Smith"


def test_sign_in_persists_across_transactions(store: Store) -> None:
    settings = hosted_settings()
    with store.session() as s, s.begin():
        first = sign_in(s, person("ana@example.org"), settings)
    with store.session() as s, s.begin():
        second = sign_in(s, person("ana@example.org"), settings)
        assert s.scalar(sa.select(sa.func.count()).select_from(UserRow)) == 1
    assert second.user_id == first.user_id


def test_a_known_user_signs_in_outside_a_transaction_and_the_connection_comes_back_whole(
    store: Store,
) -> None:
    """What every page run does (``hosted.page_view``): the visit is committed by itself,
    and the connection goes back to the pool in its usual transactions."""
    url = store.engine.url.render_as_string(hide_password=False)
    engine = sa.create_engine(url, pool_size=1, max_overflow=0)  # the same connection each time
    try:
        with Session(engine) as session, session.begin():
            sign_in(session, person("ana@example.org", "Ana"), hosted_settings(), now=T0)
        with Session(engine) as session:
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            assert known_user_signed_in(session, person("bob@example.org")) is None
            later = T0 + timedelta(hours=1)
            found = known_user_signed_in(session, person("ana@example.org", "Ana Lima"), now=later)
            session.commit()
        assert found is not None and found.principal.display_name == "Ana Lima"

        with Session(engine) as session:
            session.execute(sa.update(UserRow).values(display_name="Not kept"))
            session.rollback()
        with Session(engine) as session:
            (user,) = session.scalars(sa.select(UserRow)).all()
        assert (user.display_name, user.last_seen_utc) == ("Ana Lima", later)
    finally:
        engine.dispose()


def test_each_person_gets_their_own_user(session: Session) -> None:
    settings = hosted_settings()
    ana = sign_in(session, person("ana@example.org"), settings)
    bob = sign_in(session, person("bob@example.org"), settings)
    assert ana.user_id != bob.user_id
    assert [u.subject for u in list_users(session)] == ["ana@example.org", "bob@example.org"]


def test_an_e_mail_in_admin_emails_signs_in_as_admin(session: Session) -> None:
    settings = hosted_settings(admin_emails=" Boss@Example.org , ops@example.org,,")
    boss = sign_in(session, person(ADMIN_EMAIL), settings)
    ops = sign_in(session, person("ops@example.org"), settings)
    ana = sign_in(session, person("ana@example.org"), settings)
    assert (boss.role, ops.role, ana.role) == ("admin", "admin", "member")
    assert boss.is_admin and boss.can_run
    assert not ana.is_admin


def test_an_identity_without_e_mail_is_never_an_admin_by_config(session: Session) -> None:
    # An IdP subject that happens to look like an admin's e-mail is not that admin.
    identity = Identity(subject=ADMIN_EMAIL, email=None, display_name="impostor")
    assert sign_in(session, identity, hosted_settings()).role == "member"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_new_users_get_the_default_role(session: Session, role: Role) -> None:
    principal = sign_in(session, person("ana@example.org"), hosted_settings(default_role=role))
    assert principal.role == role
    assert get_user(session, principal.user_id).role == role


def test_admin_emails_apply_on_first_sign_in_only(session: Session) -> None:
    member = sign_in(session, person("ana@example.org"), hosted_settings(admin_emails=""))
    again = sign_in(
        session, person("ana@example.org"), hosted_settings(admin_emails="ana@example.org")
    )
    assert (member.role, again.role) == ("member", "member")


def test_a_disabled_user_is_refused_and_can_be_re_enabled(session: Session) -> None:
    settings = hosted_settings()
    admin = sign_in(session, person(ADMIN_EMAIL), settings)
    ana = sign_in(session, person("ana@example.org"), settings)
    set_disabled(session, admin, ana.user_id, True)
    with pytest.raises(SignInError, match="disabled"):
        sign_in(session, person("ana@example.org"), settings)
    set_disabled(session, admin, ana.user_id, False)
    assert sign_in(session, person("ana@example.org"), settings).user_id == ana.user_id


def test_only_admins_disable_and_not_themselves(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    member = user_with_role(session, "ana@example.org", "member")
    with pytest.raises(AccessDeniedError):
        set_disabled(session, member, admin.user_id, True)
    with pytest.raises(AccessDeniedError, match="your own account"):
        set_disabled(session, admin, admin.user_id, True)
    assert not get_user(session, admin.user_id).disabled


# --- roles ------------------------------------------------------------------------------


def test_an_admin_sets_roles(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    set_role(session, admin, ana.user_id, "viewer")
    assert refreshed(session, ana).role == "viewer"
    assert not refreshed(session, ana).can_run
    set_role(session, admin, ana.user_id, "admin")
    assert refreshed(session, ana).is_admin


def test_users_are_listed_admins_first(session: Session) -> None:
    user_with_role(session, "zed@example.org", "admin")
    user_with_role(session, "amy@example.org", "viewer")
    user_with_role(session, "bob@example.org", "member")
    user_with_role(session, "abe@example.org", "admin")
    assert [(u.role, u.subject) for u in list_users(session)] == [
        ("admin", "abe@example.org"),
        ("admin", "zed@example.org"),
        ("member", "bob@example.org"),
        ("viewer", "amy@example.org"),
    ]


@pytest.mark.parametrize("actor_role", ["member", "viewer"])
def test_non_admins_cannot_set_roles(session: Session, actor_role: Role) -> None:
    actor = user_with_role(session, "ana@example.org", actor_role)
    target = user_with_role(session, "bob@example.org", "viewer")
    with pytest.raises(AccessDeniedError, match="Only admins"):
        set_role(session, actor, target.user_id, "admin")
    with pytest.raises(AccessDeniedError):
        set_role(session, actor, actor.user_id, "admin")  # nor promote themself
    assert refreshed(session, target).role == "viewer"
    assert refreshed(session, actor).role == actor_role


@pytest.mark.parametrize("role", ["owner", "Admin", "", "superuser"])
def test_an_unknown_role_is_refused(session: Session, role: str) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    with pytest.raises(InvalidRequestError, match="Unknown role"):
        set_role(session, admin, ana.user_id, role)
    assert refreshed(session, ana).role == "member"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_an_admin_cannot_demote_themself(session: Session, role: str) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    with pytest.raises(AccessDeniedError, match="your own admin role"):
        set_role(session, admin, admin.user_id, role)
    assert refreshed(session, admin).role == "admin"
    set_role(session, admin, admin.user_id, "admin")  # a no-op is fine


def test_setting_the_role_of_a_missing_user_is_refused(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    with pytest.raises(InvalidRequestError, match="no user"):
        set_role(session, admin, admin.user_id + 100, "member")


# --- limits -----------------------------------------------------------------------------


def test_limits_fall_back_to_the_server_defaults(session: Session) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    settings = hosted_settings(
        default_daily_budget_tokens=500,
        default_monthly_budget_tokens=5000,
        default_requests_per_minute=30,
    )
    assert limits_of(get_user(session, ana.user_id), settings) == Limits(500, 5000, 30)
    assert limits_of(get_user(session, ana.user_id), hosted_settings()) == Limits(None, None, 60)


def test_an_admin_sets_a_users_own_limits(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    settings = hosted_settings(
        default_daily_budget_tokens=500,
        default_monthly_budget_tokens=5000,
        default_requests_per_minute=30,
    )
    set_limits(
        session,
        admin,
        ana.user_id,
        daily_budget_tokens=100,
        monthly_budget_tokens=1000,
        requests_per_minute=5,
    )
    assert limits_of(get_user(session, ana.user_id), settings) == Limits(100, 1000, 5)
    assert limits_of(get_user(session, admin.user_id), settings) == Limits(500, 5000, 30)

    set_limits(
        session,
        admin,
        ana.user_id,
        daily_budget_tokens=None,
        monthly_budget_tokens=2000,
        requests_per_minute=None,
    )
    assert limits_of(get_user(session, ana.user_id), settings) == Limits(500, 2000, 30)


def test_a_limit_of_zero_is_kept_not_replaced_by_the_default(session: Session) -> None:
    # Zero is a real limit (stop this user), not "unset": only None falls back.
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    set_limits(
        session,
        admin,
        ana.user_id,
        daily_budget_tokens=0,
        monthly_budget_tokens=0,
        requests_per_minute=0,
    )
    settings = hosted_settings(
        default_daily_budget_tokens=500,
        default_monthly_budget_tokens=5000,
        default_requests_per_minute=30,
    )
    assert limits_of(get_user(session, ana.user_id), settings) == Limits(0, 0, 0)


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("daily_budget_tokens", "daily budget"),
        ("monthly_budget_tokens", "monthly budget"),
        ("requests_per_minute", "requests per minute"),
    ],
)
def test_negative_limits_are_refused(session: Session, field: str, name: str) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    values: dict[str, int | None] = {
        "daily_budget_tokens": 10,
        "monthly_budget_tokens": 10,
        "requests_per_minute": 10,
    }
    values[field] = -1
    with pytest.raises(InvalidRequestError, match=name):
        set_limits(session, admin, ana.user_id, **values)
    assert get_user(session, ana.user_id).daily_budget_tokens is None


@pytest.mark.parametrize("actor_role", ["member", "viewer"])
def test_only_admins_set_limits(session: Session, actor_role: Role) -> None:
    actor = user_with_role(session, "ana@example.org", actor_role)
    with pytest.raises(AccessDeniedError):
        set_limits(
            session,
            actor,
            actor.user_id,
            daily_budget_tokens=10**9,
            monthly_budget_tokens=None,
            requests_per_minute=None,
        )
    assert get_user(session, actor.user_id).daily_budget_tokens is None


# --- workspaces -------------------------------------------------------------------------


def test_an_admin_creates_workspaces_with_unique_names(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    research = create_workspace(session, admin, "  Research  ", now=T0)
    sales = create_workspace(session, admin, "Sales")
    assert research != sales
    assert session.get(WorkspaceRow, research).name == "Research"  # type: ignore[union-attr]
    assert session.get(WorkspaceRow, research).created_utc == T0  # type: ignore[union-attr]
    with pytest.raises(InvalidRequestError, match="already exists"):
        create_workspace(session, admin, "Research")
    with pytest.raises(InvalidRequestError, match="already exists"):
        create_workspace(session, admin, " Sales ")
    assert [(name, members) for _, name, members in list_workspaces(session)] == [
        ("Research", []),
        ("Sales", []),
    ]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_workspace_name_must_have_a_sensible_length(session: Session, name: str) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    with pytest.raises(InvalidRequestError, match="workspace name"):
        create_workspace(session, admin, name)
    assert list_workspaces(session) == []


@pytest.mark.parametrize("actor_role", ["member", "viewer"])
def test_only_admins_manage_workspaces(session: Session, actor_role: Role) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    actor = user_with_role(session, "ana@example.org", actor_role)
    workspace = create_workspace(session, admin, "Research")
    with pytest.raises(AccessDeniedError):
        create_workspace(session, actor, "Mine")
    with pytest.raises(AccessDeniedError):
        set_membership(session, actor, workspace, actor.user_id, True)
    with pytest.raises(AccessDeniedError):
        delete_workspace(session, actor, workspace)
    assert [name for _, name, _ in list_workspaces(session)] == ["Research"]
    assert refreshed(session, actor).workspace_ids == frozenset()


def test_membership_shows_in_the_principal(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    bob = user_with_role(session, "bob@example.org", "member")
    research = create_workspace(session, admin, "Research")
    sales = create_workspace(session, admin, "Sales")
    assert ana.workspace_ids == frozenset()
    assert ana.default_workspace_id is None

    set_membership(session, admin, sales, ana.user_id, True)
    set_membership(session, admin, research, ana.user_id, True)
    set_membership(session, admin, research, ana.user_id, True)  # twice is once
    set_membership(session, admin, research, bob.user_id, True)
    session.flush()
    assert refreshed(session, ana).workspace_ids == {research, sales}
    assert refreshed(session, ana).default_workspace_id == min(research, sales)
    assert refreshed(session, bob).workspace_ids == {research}
    assert dict((name, members) for _, name, members in list_workspaces(session)) == {
        "Research": ["ana@example.org", "bob@example.org"],
        "Sales": ["ana@example.org"],
    }

    set_membership(session, admin, research, ana.user_id, False)
    set_membership(session, admin, research, ana.user_id, False)  # already out: no error
    session.flush()
    assert refreshed(session, ana).workspace_ids == {sales}
    assert refreshed(session, bob).workspace_ids == {research}


def test_sign_in_returns_the_users_workspaces(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    research = create_workspace(session, admin, "Research")
    set_membership(session, admin, research, ana.user_id, True)
    session.flush()
    signed_in = sign_in(session, person("ana@example.org"), hosted_settings())
    assert signed_in.workspace_ids == {research}
    assert signed_in.default_workspace_id == research
    # Sign-in reads the user and their workspaces together: every membership, each once.
    sales = create_workspace(session, admin, "Sales")
    set_membership(session, admin, sales, ana.user_id, True)
    bob = user_with_role(session, "bob@example.org", "member")
    set_membership(session, admin, sales, bob.user_id, True)
    session.flush()
    again = sign_in(session, person("ana@example.org"), hosted_settings())
    assert again.workspace_ids == {research, sales}
    assert again.default_workspace_id == min(research, sales)
    set_membership(session, admin, research, ana.user_id, False)
    set_membership(session, admin, sales, ana.user_id, False)
    session.flush()
    alone = sign_in(session, person("ana@example.org"), hosted_settings())
    assert (alone.workspace_ids, alone.default_workspace_id) == (frozenset(), None)
    assert sign_in(session, person("bob@example.org"), hosted_settings()).workspace_ids == {sales}


def test_membership_of_a_missing_workspace_or_user_is_refused(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    research = create_workspace(session, admin, "Research")
    with pytest.raises(InvalidRequestError, match="no workspace"):
        set_membership(session, admin, research + 100, admin.user_id, True)
    with pytest.raises(InvalidRequestError, match="no user"):
        set_membership(session, admin, research, admin.user_id + 100, True)


def test_deleting_a_workspace_makes_its_objects_private(session: Session) -> None:
    admin = user_with_role(session, ADMIN_EMAIL, "admin")
    ana = user_with_role(session, "ana@example.org", "member")
    research = create_workspace(session, admin, "Research")
    sales = create_workspace(session, admin, "Sales")
    set_membership(session, admin, research, ana.user_id, True)
    set_membership(session, admin, sales, ana.user_id, True)

    shared = seed_comparison(session, prompt="shared", owner=ana.subject)
    shared.workspace_id, shared.visibility = research, "workspace"
    elsewhere = seed_comparison(session, prompt="elsewhere", owner=ana.subject)
    elsewhere.workspace_id, elsewhere.visibility = sales, "workspace"
    private = seed_comparison(session, prompt="private", owner=ana.subject)
    template = PromptTemplateRow(
        name="Greeting",
        owner=ana.subject,
        created_utc=T0,
        workspace_id=research,
        visibility="workspace",
    )
    session.add(template)
    session.flush()

    delete_workspace(session, admin, research)
    session.flush()
    session.expire_all()

    def sharing(row: Comparison | PromptTemplateRow) -> tuple[int | None, str, str | None]:
        return row.workspace_id, row.visibility, row.owner

    assert sharing(shared) == (None, "private", ana.subject)
    assert sharing(template) == (None, "private", ana.subject)
    assert sharing(elsewhere) == (sales, "workspace", ana.subject)
    assert sharing(private) == (None, "private", ana.subject)
    assert session.get(WorkspaceRow, research) is None
    # The memberships go with it (foreign key cascade), so no principal still lists it.
    assert refreshed(session, ana).workspace_ids == {sales}
    remaining = session.scalars(sa.select(WorkspaceMemberRow.workspace_id)).all()
    assert remaining == [sales]
    assert [name for _, name, _ in list_workspaces(session)] == ["Sales"]


# --- personal keys ----------------------------------------------------------------------


def users_table_dump(session: Session) -> str:
    """Every column of every users row as text, read without the ORM."""
    rows = session.execute(sa.text("SELECT * FROM users")).all()
    return "\n".join(repr(tuple(row)) for row in rows)


def test_a_saved_key_is_stored_encrypted_and_opens_again(session: Session) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    vault = KeyVault(SERVER_SECRET)
    hint = save_personal_key(session, ana, vault, SecretStr(f"  {API_KEY}\n"))
    session.flush()

    assert hint == f"nb_…{API_KEY[-4:]}"
    stored = session.execute(
        sa.text("SELECT api_key_encrypted, api_key_hint FROM users WHERE id = :id"),
        {"id": ana.user_id},
    ).one()
    assert stored.api_key_encrypted
    assert API_KEY not in stored.api_key_encrypted
    assert API_KEY[3:] not in stored.api_key_encrypted
    assert stored.api_key_hint == hint
    dump = users_table_dump(session)
    assert API_KEY not in dump
    assert API_KEY[3:] not in dump
    assert SERVER_SECRET.get_secret_value() not in dump

    opened = personal_key(session, ana, vault)
    assert isinstance(opened, SecretStr)
    assert opened.get_secret_value() == API_KEY
    assert API_KEY not in repr(opened)


def test_the_key_opens_in_a_later_transaction_with_a_new_vault(store: Store) -> None:
    with store.session() as s, s.begin():
        ana = user_with_role(s, "ana@example.org", "member")
        save_personal_key(s, ana, KeyVault(SERVER_SECRET), SecretStr(API_KEY))
    with store.session() as s, s.begin():
        opened = personal_key(s, ana, KeyVault(SecretStr(SERVER_SECRET.get_secret_value())))
    assert opened is not None
    assert opened.get_secret_value() == API_KEY


def test_saving_the_same_key_twice_gives_different_tokens(session: Session) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    vault = KeyVault(SERVER_SECRET)
    save_personal_key(session, ana, vault, SecretStr(API_KEY))
    first = get_user(session, ana.user_id).api_key_encrypted
    save_personal_key(session, ana, vault, SecretStr(API_KEY))
    assert get_user(session, ana.user_id).api_key_encrypted != first


def test_a_changed_server_secret_is_a_readable_config_error(session: Session) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    save_personal_key(session, ana, KeyVault(SERVER_SECRET), SecretStr(API_KEY))
    other = KeyVault(SecretStr("another-long-random-server-secret"))
    with pytest.raises(ConfigError) as caught:
        personal_key(session, ana, other)
    message = str(caught.value)
    assert "cannot be decrypted" in message
    assert "server secret changed" in message
    assert "enter it again" in message
    assert API_KEY not in message
    assert SERVER_SECRET.get_secret_value() not in message


@pytest.mark.parametrize("secret", [None, "", "short", "x" * (MIN_SECRET_CHARS - 1)])
def test_a_missing_or_short_server_secret_is_a_config_error(secret: str | None) -> None:
    with pytest.raises(ConfigError, match="PLAYGROUND_SECRET_KEY") as caught:
        KeyVault(None if secret is None else SecretStr(secret))
    assert f"at least {MIN_SECRET_CHARS} characters" in str(caught.value)


def test_a_secret_of_the_minimum_length_works() -> None:
    vault = KeyVault(SecretStr("s" * MIN_SECRET_CHARS))
    token, _ = vault.seal(SecretStr(API_KEY))
    assert vault.open(token).get_secret_value() == API_KEY


@pytest.mark.parametrize("key", ["", "   ", "\n"])
def test_an_empty_key_is_not_saved(session: Session, key: str) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    with pytest.raises(InvalidRequestError, match="empty"):
        save_personal_key(session, ana, KeyVault(SERVER_SECRET), SecretStr(key))
    assert personal_key(session, ana, KeyVault(SERVER_SECRET)) is None


def test_clearing_the_key_forgets_it(session: Session) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    bob = user_with_role(session, "bob@example.org", "member")
    vault = KeyVault(SERVER_SECRET)
    assert personal_key(session, ana, vault) is None
    save_personal_key(session, ana, vault, SecretStr(API_KEY))
    save_personal_key(session, bob, vault, SecretStr("nb_bobs_key_0000000000"))
    clear_personal_key(session, ana)
    session.flush()
    assert personal_key(session, ana, vault) is None
    user = get_user(session, ana.user_id)
    assert (user.api_key_encrypted, user.api_key_hint) == (None, None)
    assert personal_key(session, bob, vault).get_secret_value() == (  # type: ignore[union-attr]
        "nb_bobs_key_0000000000"
    )


def test_keys_belong_to_their_user(session: Session) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    bob = user_with_role(session, "bob@example.org", "member")
    vault = KeyVault(SERVER_SECRET)
    save_personal_key(session, ana, vault, SecretStr(API_KEY))
    assert personal_key(session, bob, vault) is None


def test_sign_in_does_not_touch_a_saved_key(session: Session) -> None:
    ana = user_with_role(session, "ana@example.org", "member")
    vault = KeyVault(SERVER_SECRET)
    save_personal_key(session, ana, vault, SecretStr(API_KEY))
    sign_in(session, person("ana@example.org"), hosted_settings(), now=datetime.now(UTC))
    assert personal_key(session, ana, vault).get_secret_value() == API_KEY  # type: ignore[union-attr]
