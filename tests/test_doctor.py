"""``python -m playground doctor``: a good server passes every check; each mistake an
operator makes is named on its own line, with exit code 1, and no secret is printed."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from playground.cli.main import main
from playground.store import open_store
from tests.fake_elumenta import FakeElumenta
from tests.store_fixtures import postgres_base_url
from tests.test_schema_rollback import FUTURE, migrate_as_a_newer_release

PROXY_SECRET = "proxy-secret-for-the-doctor-0123456789"
SERVER_SECRET = "server-secret-for-the-doctor-0123456789"


def doctor(*args: str) -> tuple[int, dict[str, str]]:
    """Run ``doctor``; its exit code and each check's line by check name."""
    out = io.StringIO()
    code = main(["doctor", *args], out=out, err=out)
    lines = {line.split(":")[0].split(maxsplit=1)[1]: line for line in out.getvalue().splitlines()}
    return code, lines


def problems(lines: dict[str, str]) -> list[str]:
    return [name for name, line in lines.items() if line.startswith("PROBLEM")]


@pytest.fixture
def team_server(
    store_url: str, app_env: Path, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A correctly configured team server (proxy mode) on SQLite and PostgreSQL."""
    for name, value in {
        "PLAYGROUND_AUTH": "proxy",
        "PLAYGROUND_PROXY_SECRET": PROXY_SECRET,
        "FORWARDED_ALLOW_IPS": "",
        "PLAYGROUND_SECRET_KEY": SERVER_SECRET,
        "PLAYGROUND_ADMIN_EMAILS": "ana@example.org",
        "PLAYGROUND_DATABASE_URL": store_url,
        "ELUMENTA_BASE_URL": fake_elumenta.base_url,
        "ELUMENTA_API_KEY": fake_elumenta.api_key,
    }.items():
        monkeypatch.setenv(name, value)
    return store_url


def test_a_good_team_server_passes_every_check(
    team_server: str, fake_elumenta: FakeElumenta
) -> None:
    code, lines = doctor()

    assert code == 0, lines
    assert list(lines) == [
        "settings",
        "data dir",
        "database",
        "sign-in",
        "personal keys",
        "model catalog",
        "team key",
    ]
    assert problems(lines) == []
    assert "the migrations to" in lines["database"]  # a new database: migrated at first start
    assert "accepts it" in lines["team key"]
    printed = "\n".join(lines.values())
    for secret in (PROXY_SECRET, SERVER_SECRET, fake_elumenta.api_key, fake_elumenta.api_key[-4:]):
        assert secret not in printed


def test_a_migrated_database_is_current(team_server: str) -> None:
    open_store(team_server).close()
    code, lines = doctor("--no-api")
    assert code == 0, lines
    assert "(current)" in lines["database"]


@pytest.mark.parametrize(
    ("env", "problem", "says"),
    [
        ({"PLAYGROUND_PROXY_SECRET": None}, "settings", "needs PLAYGROUND_PROXY_SECRET"),
        ({"PLAYGROUND_MAX_STREAMS": "lots"}, "settings", "PLAYGROUND_MAX_STREAMS='lots'"),
        ({"FORWARDED_ALLOW_IPS": None}, "sign-in", "FORWARDED_ALLOW_IPS= (set and empty)"),
        ({"FORWARDED_ALLOW_IPS": "*"}, "sign-in", "FORWARDED_ALLOW_IPS= (set and empty)"),
        ({"PLAYGROUND_TRUSTED_PROXIES": "10.0.0.0/33"}, "sign-in", "'10.0.0.0/33'"),
        ({"PLAYGROUND_SECRET_KEY": None}, "personal keys", "PLAYGROUND_SECRET_KEY"),
        ({"PLAYGROUND_SECRET_KEY": "short"}, "personal keys", "at least 16 characters"),
        ({"ELUMENTA_API_KEY": None}, "team key", "ELUMENTA_API_KEY is not set"),
        ({"ELUMENTA_API_KEY": "nb_wrong_key_0123456789"}, "team key", "answered"),
        (
            {"PLAYGROUND_DATABASE_URL": "postgresql+psycopg://app:hunter2@127.0.0.1:1/x"},
            "database",
            "Cannot open the history database postgresql+psycopg://app:***@127.0.0.1:1/x",
        ),
    ],
    ids=lambda value: str(value)[:40] if not isinstance(value, dict) else ",".join(value),
)
def test_each_mistake_is_named_with_exit_1(
    team_server: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str | None],
    problem: str,
    says: str,
) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    code, lines = doctor()

    assert code == 1
    assert problems(lines) == [problem], lines
    assert says in lines[problem]
    assert "hunter2" not in "\n".join(lines.values())
    assert "nb_wrong_key_0123456789"[-6:] not in "\n".join(lines.values())


def test_an_unwritable_data_dir_is_named(
    team_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "a-file" / "data"))
    code, lines = doctor("--no-api")
    assert code == 1
    assert problems(lines) == ["data dir"]
    assert "cannot write to" in lines["data dir"]


def test_a_database_a_newer_release_migrated_is_named(team_server: str) -> None:
    migrate_as_a_newer_release(team_server)
    code, lines = doctor("--no-api")
    assert code == 1
    assert problems(lines) == ["database"]
    assert FUTURE in lines["database"]


def test_the_local_app_needs_no_team_settings(app_env: Path) -> None:
    code, lines = doctor()
    assert code == 0, lines
    assert "local single-user app" in lines["sign-in"]


@pytest.fixture
def database_and_role() -> Iterator[tuple[str, str, sa.Engine]]:
    """A new database and a login role that does not own it (PostgreSQL 15's default: no
    CREATE on schema public), both dropped afterwards; the role's URL and a superuser engine
    on the new database."""
    base = make_url(postgres_base_url())
    name = f"doctor_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    owner_engine = sa.create_engine(base.set(database=name), isolation_level="AUTOCOMMIT")
    role_url = base.set(username=name, database=name).render_as_string(hide_password=False)
    try:
        yield role_url, name, owner_engine
    finally:
        owner_engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_a_role_that_may_not_create_tables_is_named_until_it_owns_the_database(
    database_and_role: tuple[str, str, sa.Engine],
    team_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role_url, name, owner_engine = database_and_role
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", role_url)

    code, lines = doctor("--no-api")
    assert code == 1
    assert problems(lines) == ["database"]
    assert "may not create tables" in lines["database"]

    with owner_engine.connect() as connection:  # the fix docs/deploy.md gives
        connection.exec_driver_sql(f'ALTER DATABASE "{name}" OWNER TO "{name}"')
    code, lines = doctor("--no-api")
    assert code == 0, lines
    open_store(role_url).close()  # and the migrations do run as that role
    code, lines = doctor("--no-api")
    assert "(current)" in lines["database"]
