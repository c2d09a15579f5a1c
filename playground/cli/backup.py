"""``python -m playground backup FILE`` and ``restore FILE --to URL``: the history database
to a file readable only by its owner, and back into a new database.

PostgreSQL goes through ``pg_dump --format=custom`` and ``pg_restore`` (the client tools of
the server's major version or newer), given the app's own URL turned into one libpq reads:
no ``+psycopg`` driver suffix, and the password in ``PGPASSWORD`` rather than on a command
line other users can see. SQLite goes through SQLite's online backup, consistent while the
app writes. Every file written is mode 600 (a dump holds every prompt and answer) and
appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from playground.errors import PlaygroundError
from playground.redact import mask_url

PRIVATE_UMASK = 0o077
MAINTENANCE_DATABASE = "postgres"


class BackupError(PlaygroundError):
    """A backup or restore could not be made; the message says why (no password in it)."""


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """The ``postgresql://`` URL pg_dump and pg_restore read for the app's ``url``, without
    its password, and the environment that carries the password (``PGPASSWORD``)."""
    parsed = make_url(url)
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    env = {"PGPASSWORD": str(parsed.password)} if parsed.password else {}
    return plain.render_as_string(hide_password=False), env


def backup(url: str, target: Path) -> str:
    """Write the database at ``url`` to ``target`` (mode 600; refused if it exists).

    Returns a one-line summary. Raises :class:`BackupError` saying why it failed, leaving
    no partial file behind.
    """
    if target.exists():
        raise BackupError(f"{target} exists already: back up to a new file.")
    partial = target.with_name(target.name + ".partial")
    with _private_files():
        try:
            if _is_sqlite(url):
                _sqlite_copy(_sqlite_path(url), partial)
            else:
                _run(["pg_dump", "--format=custom", f"--file={partial}"], url)
            partial.chmod(0o600)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return f"Backed up {mask_url(url)} to {target} ({target.stat().st_size:,} bytes, mode 600)."


def restore(source: Path, url: str) -> str:
    """Restore the backup ``source`` into the new database at ``url``.

    PostgreSQL: the database is created when it does not exist; an existing one must be
    empty (e.g. made by ``createdb -O <role>`` as a superuser). SQLite: the file must not
    exist. Returns a one-line summary; raises :class:`BackupError` saying why not.
    """
    if not source.is_file():
        raise BackupError(f"No backup file at {source}.")
    with _private_files():
        if _is_sqlite(url):
            target = _sqlite_path(url)
            if target.exists():
                raise BackupError(f"{target} exists already: restore into a new file.")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            try:
                _sqlite_copy(source, partial)
                partial.chmod(0o600)
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
        else:
            _create_empty_database(url)
            # Objects belong to whoever restores: the new database's role, not the dump's.
            _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"], url, source)
    return f"Restored {source} into {mask_url(url)}."


@contextlib.contextmanager
def _private_files() -> Iterator[None]:
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url} is not a SQLite file.")
    return Path(database).expanduser()


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"No SQLite database at {source}.")
    try:
        reading = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        with contextlib.closing(reading) as src, contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"Cannot copy {source}: {exc}.") from exc


def _run(command: list[str], url: str, *args: Path) -> None:
    address, password_env = libpq_url(url)
    try:
        done = subprocess.run(  # noqa: S603 (fixed tools; the URL is one argument)
            [*command, f"--dbname={address}", *map(str, args)],
            env={**os.environ, **password_env},
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BackupError(
            f"{command[0]} is not installed: install PostgreSQL's client tools "
            "(Debian: apt-get install postgresql-client)."
        ) from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{command[0]} failed: {lines[0] if lines else 'no message'}")


def _create_empty_database(url: str) -> None:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    name = parsed.database
    if not name:
        raise BackupError(f"{mask_url(url)} names no database to restore into.")
    maintenance = sa.create_engine(
        parsed.set(database=MAINTENANCE_DATABASE), isolation_level="AUTOCOMMIT"
    )
    try:
        with maintenance.connect() as connection:
            exists = connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                connection.execute(sa.text(f"CREATE DATABASE {_quoted(name)}"))
                return
        _require_empty(parsed)
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupError(
            f"Cannot create {mask_url(url)}: {detail}. Create it as a superuser "
            f"(createdb -O <role> {name}) and restore again."
        ) from exc
    finally:
        maintenance.dispose()


def _require_empty(url: URL) -> None:
    engine = sa.create_engine(url)
    try:
        tables = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"{mask_url(url.render_as_string(hide_password=False))} already has tables: "
            "restore into a new (or empty) database."
        )


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
