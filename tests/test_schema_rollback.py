"""Rolling back: this release started on a database a newer release already migrated.

A newer release is simulated by stamping the migrated database with a revision this code
does not have (``0099_future``), as the newer release's migration would leave it. Every way
in (the store, the app, the CLI, the worker) must refuse with one line naming the revision,
this release and what to do, change nothing, and never show a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from playground import __version__
from playground.errors import SchemaNewerThanCodeError
from playground.services import runtime
from playground.store import db, open_store
from tests.app_harness import APP, texts
from tests.fake_elumenta.process import run_playground
from tests.store_fixtures import postgres_schema_url

FUTURE = "0099_future"


def head() -> str:
    """The newest revision this release's migrations reach."""
    return db.schema_version(sa.create_engine("sqlite://")).head


def migrate_as_a_newer_release(url: str) -> None:
    """Migrate ``url`` to this release's head, then as a newer release would: a new table
    and the version row moved on to :data:`FUTURE`."""
    open_store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE future_feature (id INTEGER PRIMARY KEY)")
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": FUTURE})
    engine.dispose()


def stored_revision(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(sa.text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def assert_one_line_explanation(message: str) -> None:
    assert FUTURE in message
    assert f"playground {__version__}, newest revision {head()!r}" in message
    assert "restore the backup taken before the upgrade" in message
    assert "Traceback" not in message
    assert "Can't locate revision" not in message


@pytest.fixture
def newer_url(store_url: str) -> str:
    """A database (SQLite and PostgreSQL) a newer release migrated."""
    migrate_as_a_newer_release(store_url)
    return store_url


def test_the_schema_version_says_current_pending_or_newer(store_url: str) -> None:
    engine = db.create_store_engine(store_url)
    try:
        assert db.schema_version(engine).state == "pending"  # empty: nothing migrated yet
        db.upgrade_to_head(engine)
        assert db.schema_version(engine) == db.SchemaVersion(head(), head(), known=True)
        assert db.schema_version(engine).state == "current"
    finally:
        engine.dispose()
    migrate_as_a_newer_release(store_url)
    engine = db.create_store_engine(store_url)
    try:
        assert db.schema_version(engine) == db.SchemaVersion(FUTURE, head(), known=False)
        assert db.schema_version(engine).state == "newer"
    finally:
        engine.dispose()


def test_this_releases_migrations_refuse_a_newer_schema_and_change_nothing(
    newer_url: str,
) -> None:
    with pytest.raises(SchemaNewerThanCodeError) as caught:
        open_store(newer_url)

    assert_one_line_explanation(str(caught.value))
    assert "\n" not in str(caught.value)
    assert stored_revision(newer_url) == [FUTURE]
    engine = sa.create_engine(newer_url)
    try:
        assert "future_feature" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_the_app_says_so_instead_of_any_page(
    newer_url: str, app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", newer_url)
    runtime.reset()
    try:
        at = AppTest.from_file(str(APP), default_timeout=10).run()
    finally:
        runtime.reset()

    assert not at.exception
    (error,) = texts(at, "error")
    assert_one_line_explanation(error)
    assert not at.text_area  # app.py stops before any page is drawn


def test_the_cli_says_so_in_one_line_with_exit_3(newer_url: str, tmp_path: Path) -> None:
    done = run_playground("history", database_url=newer_url, data_dir=tmp_path)

    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: The history database ")
    assert_one_line_explanation(line)


@pytest.mark.postgres
def test_the_worker_says_so_in_one_line_with_exit_3(tmp_path: Path) -> None:
    with postgres_schema_url("test_rollback") as url:
        migrate_as_a_newer_release(url)
        done = run_playground("worker", "--concurrency", "1", database_url=url, data_dir=tmp_path)

    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.splitlines()
    assert_one_line_explanation(line)
