"""``python -m playground backup`` / ``restore``: a real dump of a real database (SQLite, and
PostgreSQL through pg_dump/pg_restore in a scratch database), restored into a new database
with the same rows, every file written mode 600."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from playground.catalog import load_catalog
from playground.cli.backup import libpq_url
from playground.store import StoreRecorder, open_store
from playground.store.models import Base
from tests.fake_elumenta.process import run_playground
from tests.store_fixtures import Outcome, make_request, postgres_base_url, record_run

PASSWORD = "pw-in-the-app-url-0123"


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every history table, in primary-key order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: [
                    tuple(row)
                    for row in connection.execute(
                        sa.select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for name, table in Base.metadata.tables.items()
            }
    finally:
        engine.dispose()


def filled(url: str) -> None:
    """Migrate ``url`` and record two comparisons in it."""
    store = open_store(url)
    try:
        recorder = StoreRecorder(store.engine, load_catalog().cost_of)
        for prompt in ("first prompt", "второй prompt"):
            record_run(recorder, make_request(prompt=prompt), [Outcome(), Outcome("Ответ.")])
    finally:
        store.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def scratch_databases() -> Iterator[tuple[str, str]]:
    """Two new database names on the test server (the second not created: the restore
    target), dropped afterwards, and the base URL's app form."""
    base = make_url(postgres_base_url())
    source, target = (f"pg_backup_{uuid.uuid4().hex[:10]}{suffix}" for suffix in ("", "_restored"))
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{source}"')
    try:
        yield (
            base.set(database=source).render_as_string(hide_password=False),
            base.set(database=target).render_as_string(hide_password=False),
        )
    finally:
        with admin.connect() as connection:
            for name in (source, target):
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_the_app_url_becomes_a_libpq_url_with_the_password_in_the_environment() -> None:
    url = f"postgresql+psycopg://playground:{PASSWORD}@db.internal:5433/playground"
    assert libpq_url(url) == (
        "postgresql://playground@db.internal:5433/playground",
        {"PGPASSWORD": PASSWORD},
    )
    assert libpq_url("postgresql+psycopg://postgres@127.0.0.1/x") == (
        "postgresql://postgres@127.0.0.1/x",
        {},
    )


@pytest.mark.postgres
def test_a_postgresql_backup_restores_into_a_new_database(
    scratch_databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = scratch_databases
    filled(source)
    dump = tmp_path / "backups" / "playground.dump"
    dump.parent.mkdir()

    done = run_playground("backup", str(dump), database_url=source, data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mode 600" in done.stdout
    assert mode(dump) == 0o600
    assert not list(dump.parent.glob("*.partial"))

    done = run_playground(
        "restore", str(dump), "--to", target, database_url=source, data_dir=tmp_path
    )
    assert done.returncode == 0, done.stderr

    assert rows(target) == rows(source)
    assert sum(len(table) for table in rows(target).values()) > 0
    open_store(target).close()  # the restored database is current: the app opens it as is


@pytest.mark.postgres
def test_a_postgresql_restore_refuses_a_database_with_tables(
    scratch_databases: tuple[str, str], tmp_path: Path
) -> None:
    source, _ = scratch_databases
    filled(source)
    dump = tmp_path / "playground.dump"
    assert (
        run_playground("backup", str(dump), database_url=source, data_dir=tmp_path).returncode == 0
    )

    done = run_playground(
        "restore", str(dump), "--to", source, database_url=source, data_dir=tmp_path
    )

    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "already has tables" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_sqlite_backup_restores_into_a_new_file(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'data' / 'history.sqlite3'}"
    target = f"sqlite:///{tmp_path / 'restored' / 'history.sqlite3'}"
    filled(source)
    backup = tmp_path / "history-backup.sqlite3"

    done = run_playground("backup", str(backup), database_url=source, data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert mode(backup) == 0o600

    done = run_playground(
        "restore", str(backup), "--to", target, database_url=source, data_dir=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "restored" / "history.sqlite3") == 0o600
    assert rows(target) == rows(source)
    assert sum(len(table) for table in rows(target).values()) > 0


def test_a_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    filled(source)
    backup = tmp_path / "yesterday.sqlite3"
    backup.write_text("yesterday's backup")

    done = run_playground("backup", str(backup), database_url=source, data_dir=tmp_path)

    assert done.returncode == 1
    assert "exists already" in done.stderr
    assert backup.read_text() == "yesterday's backup"


@pytest.mark.postgres
def test_a_failed_dump_says_why_without_the_password(tmp_path: Path) -> None:
    base = make_url(postgres_base_url())
    url = base.set(password=PASSWORD, database=f"missing_{uuid.uuid4().hex[:8]}")
    dump = tmp_path / "x.dump"

    done = run_playground(
        "backup",
        str(dump),
        database_url=url.render_as_string(hide_password=False),
        data_dir=tmp_path,
    )

    assert done.returncode == 1
    assert done.stderr.startswith("error: pg_dump failed: ") and "does not exist" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    assert not dump.exists() and not list(tmp_path.glob("*.partial"))
