"""Opening the history database: engine settings, migrations at start-up, crash recovery.

SQLite (the default) runs in WAL mode with a busy timeout so several processes (app, CLI,
batch workers) can write at once; PostgreSQL is used when the URL says so.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session

from playground import __version__
from playground.config import Settings
from playground.errors import ConfigError, SchemaNewerThanCodeError
from playground.redact import mask_url
from playground.store.dialects import register_sqlite_functions
from playground.store.fresh import SNAPSHOT, create_from_snapshot, schema_statements
from playground.store.outage import DEFAULT_OUTAGE_WAIT_S, WritePolicy, run_write
from playground.store.postgres import (
    DEFAULT_STATEMENT_TIMEOUT_S,
    answer_timeout_s,
    connect_args,
    unbounded,
)
from playground.store.recovery import DEFAULT_STALE_AFTER, recover_interrupted
from playground.store.rollups import build_sqlite_row_adder, sqlite_row_adder
from playground.store.spool import Spool

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

T = TypeVar("T")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works: it only has to be the same in every process migrating this database.
_PG_MIGRATION_LOCK_KEY = 7_301_946_118
# A PostgreSQL connection idle in the pool for longer is pinged before use (a server restart
# or idle timeout may have closed it); a busy one is not (see _ping_idle_connections).
IDLE_PING_AFTER_S = 10.0


@dataclass(frozen=True)
class Store:
    """An open history database: hand ``engine`` to a recorder, use ``session()`` to query.

    ``writes``: how long writes wait for the database when it goes away, and the spool
    file for answers when it stays away longer (give it to recorders).
    """

    engine: Engine
    writes: WritePolicy = field(default_factory=WritePolicy)

    def session(self) -> Session:
        """A new session; use it as ``with store.session() as s, s.begin(): ...``."""
        return Session(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def retrying(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in one transaction, retried while the database is away
        (see :func:`~playground.store.outage.run_write`)."""
        return run_write(self.engine, work, self.writes)


def open_store(
    url: str,
    *,
    recover: bool = True,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    spool_dir: Path | None = None,
    outage_wait_s: float = DEFAULT_OUTAGE_WAIT_S,
    statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S,
) -> Store:
    """Open (creating if needed) the database at ``url``, migrate it to head, recover crashes.

    A SQLite file's directory is created on first use. With ``spool_dir``, answers spooled
    there during an earlier outage are written first, then (with ``recover``) results left
    ``pending``/``running`` by a process that no longer exists become ``interrupted``
    (their partial text is kept); see :func:`recover_interrupted`. Writes wait up to
    ``outage_wait_s`` for a database that goes away; on PostgreSQL a statement gets
    ``statement_timeout_s`` (see :mod:`playground.store.postgres`). Raises
    :class:`ConfigError` saying why when the database cannot be opened (its password
    masked).
    """
    try:
        engine = create_store_engine(url, statement_timeout_s=statement_timeout_s)
    except OSError as exc:
        raise _cannot_open(url, f"{exc.strerror or exc} ({exc.filename})") from exc
    spool = None if spool_dir is None else Spool(spool_dir, url)
    try:
        upgrade_to_head(engine)
        if spool is not None:
            spool.replay(engine)
        if recover:
            with Session(engine) as session, session.begin():
                recover_interrupted(session, stale_after=stale_after)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise _cannot_open(url, str(getattr(exc, "orig", None) or exc)) from exc
    except Exception:
        engine.dispose()
        raise
    return Store(engine, WritePolicy(outage_wait_s, spool))


def open_configured_store(settings: Settings, **options: Any) -> Store:
    """:func:`open_store` on the configured database, with its spool and outage wait."""
    return open_store(
        settings.resolved_database_url,
        spool_dir=settings.spool_dir,
        outage_wait_s=settings.db_outage_wait_s,
        statement_timeout_s=settings.db_statement_timeout_s,
        **options,
    )


def _cannot_open(url: str, detail: str) -> ConfigError:
    password = make_url(url).password
    first_line = detail.strip().splitlines()[0] if detail.strip() else "no details"
    if password:
        first_line = first_line.replace(str(password), "***")
    return ConfigError(
        f"Cannot open the history database {mask_url(url)}: {first_line}. "
        "Check PLAYGROUND_DATABASE_URL and that the database is reachable."
    )


def create_store_engine(
    url: str, *, statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S
) -> Engine:
    """An engine tuned for the history store: WAL, busy timeout and foreign keys on SQLite;
    on PostgreSQL connections that time out instead of hanging on a silent server
    (:mod:`playground.store.postgres`; parameters in the URL win)."""
    parsed = _normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_dir(parsed)
        engine = sa.create_engine(
            parsed,
            json_serializer=_json_dumps,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        sa.event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    from playground.store.pg_connection import AnsweringConnection

    engine = sa.create_engine(
        parsed,
        json_serializer=_json_dumps,
        pool_size=5,
        max_overflow=10,
        connect_args=connect_args(parsed, statement_timeout_s),
    )
    wait_s = answer_timeout_s(statement_timeout_s)

    def answering_connection(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        connection = AnsweringConnection.connect(*cargs, **cparams)
        connection.answer_timeout_s = wait_s
        return connection

    sa.event.listen(engine, "do_connect", answering_connection)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle for ``IDLE_PING_AFTER_S``.

    A server restart or idle timeout must not fail the next write, but ``pool_pre_ping``
    pings on every checkout: a round trip more for each of a batch's short transactions
    (~0.1 ms of 0.45 ms on a local server), for connections used milliseconds ago. A dead
    one found here invalidates the pool, as pre_ping does: after a restart none is alive.
    """

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_AFTER_S:
            return  # new, or used moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.InvalidatePoolError(f"Idle connection is gone: {exc}") from exc

    sa.event.listen(engine, "checkin", checked_in)
    sa.event.listen(engine, "checkout", checked_out)


@dataclass(frozen=True)
class SchemaVersion:
    """Where a database's schema stands against this release's migrations."""

    current: str | None  # the database's alembic revision; None before the first migration
    head: str  # the newest revision this release has
    known: bool  # False: a newer release migrated the database

    @property
    def state(self) -> str:
        """``"current"``, ``"pending"`` (migrations to apply) or ``"newer"`` (see ``known``)."""
        if not self.known:
            return "newer"
        return "current" if self.current == self.head else "pending"

    def newer_error(self, url: str) -> SchemaNewerThanCodeError:
        """The one-line explanation for a database a newer release migrated."""
        return SchemaNewerThanCodeError(
            f"The history database {mask_url(url)} is at schema revision {self.current!r}, "
            f"newer than this release knows (playground {__version__}, newest revision "
            f"{self.head!r}): a newer release migrated it. Run that release again, or restore "
            "the backup taken before the upgrade (docs/deploy.md, Rolling back)."
        )


def _migrations() -> tuple[Config, ScriptDirectory]:
    # Alembic (and every migration script) loads only when a database is not at head.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config, ScriptDirectory.from_config(config)


def head_revision() -> str:
    """This release's newest migration, read from the script file names (``NNNN_*.py``, the
    revision being ``NNNN``) without loading Alembic or the scripts."""
    return max(path.name[:4] for path in (MIGRATIONS_DIR / "versions").glob("[0-9]" * 4 + "_*.py"))


def _at_head(engine: Engine) -> bool:
    """Whether the database's recorded revision is this release's head: one read of the
    version table (absent on a new database)."""
    try:
        with engine.connect() as connection:
            current: str | None = connection.scalar(
                sa.text("SELECT version_num FROM alembic_version")
            )
    except sa.exc.DatabaseError:
        return False
    return current == head_revision()


def schema_version(engine: Engine) -> SchemaVersion:
    """The database's schema revision against this release's (reads, changes nothing)."""
    from alembic.runtime.migration import MigrationContext

    _, scripts = _migrations()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    known = current is None or current in {script.revision for script in scripts.walk_revisions()}
    return SchemaVersion(current, scripts.get_current_head() or "", known)


def read_schema_version(url: str) -> tuple[SchemaVersion, bool]:
    """The schema version of the database at ``url`` and whether its user may create tables
    there (what migrations need; PostgreSQL 15 no longer lets every role create in
    ``public``). Writes nothing; raises :class:`ConfigError` (password masked) if unreachable.
    """
    engine = create_store_engine(url)
    try:
        version = schema_version(engine)
        may_create = True
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                may_create = bool(
                    connection.scalar(
                        sa.text(
                            "SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), "
                            "false)"
                        )
                    )
                )
        return version, may_create
    except sa.exc.SQLAlchemyError as exc:
        raise _cannot_open(url, str(getattr(exc, "orig", None) or exc)) from exc
    finally:
        engine.dispose()


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration; safe when several processes start at once.

    Raises :class:`SchemaNewerThanCodeError` instead when a newer release migrated the
    database: this release cannot run on its schema, and must not try to migrate it.
    """
    if _at_head(engine):
        return
    if engine.dialect.name == "sqlite" and create_from_snapshot(engine, head_revision()):
        return
    migrate_with_alembic(engine)


def migrate_with_alembic(engine: Engine) -> None:
    """:func:`upgrade_to_head` by running the pending migrations (never the snapshot of a
    new SQLite database's schema)."""
    from alembic import command

    version = schema_version(engine)
    if version.state == "newer":
        raise version.newer_error(engine.url.render_as_string(hide_password=True))
    if version.state == "current":
        return
    config, _ = _migrations()
    with engine.begin() as connection:
        # Serialize migrators: the second one waits, then finds the schema already at head.
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        with unbounded(connection):  # a back-fill on a large history may take a while
            command.upgrade(config, "head")


def write_sqlite_snapshot(path: Path = SNAPSHOT) -> None:
    """Migrate a new SQLite file to head with Alembic and store its schema at ``path``, for
    :func:`~playground.store.fresh.create_from_snapshot`, with the rollups' per-connection
    statements (:func:`~playground.store.rollups.sqlite_row_adder`). Run after adding a
    migration or changing the rollups' upserts."""
    with tempfile.TemporaryDirectory() as folder:
        engine = create_store_engine(f"sqlite:///{Path(folder) / 'migrated.sqlite3'}")
        try:
            migrate_with_alembic(engine)
            with engine.connect() as connection:
                statements = schema_statements(connection)
        finally:
            engine.dispose()
    document = {
        "revision": head_revision(),
        "statements": statements,
        "row_adder": list(build_sqlite_row_adder()),
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def check_database_url(url: str) -> None:
    """Raise :class:`ConfigError` unless ``url`` names a database the store supports.

    Connects to nothing: a cheap check of the configuration, not of the server.
    """
    _normalize_url(url)


def _normalize_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"The database URL is not valid: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"Unsupported database {backend!r}: use a sqlite:/// path or postgresql+psycopg://."
        )
    if parsed.drivername == "postgresql":
        # psycopg (v3) is the installed driver; plain postgresql:// would look for psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _create_sqlite_dir(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL survives application crashes; only a power cut can drop the last
    # commits, and writes no longer wait for an fsync each.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    register_sqlite_functions(dbapi_connection)
    for statement in sqlite_row_adder():
        cursor.execute(statement)
    cursor.close()


def _json_dumps(value: Any) -> str:
    # Readable UTF-8 in the file instead of \u escapes (Cyrillic prompts stay greppable).
    return json.dumps(value, ensure_ascii=False)
