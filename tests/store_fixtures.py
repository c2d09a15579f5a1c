"""Fixtures for the history store: a fresh database per test on SQLite and PostgreSQL.

PostgreSQL runs when ``PLAYGROUND_TEST_POSTGRES_URL`` is set; each test gets its own
schema (via ``search_path``) so tests and benchmarks can share one database. Under
``CI=true`` a missing URL fails the PostgreSQL tests instead of skipping them.

Migrating a new database costs about a second per test on PostgreSQL; tests that only read
and write rows can use ``reused_store`` instead: one migrated store per backend for the
whole session, emptied before each test. A module whose tests all can overrides ``store``
with a fixture returning ``reused_store``; its ``session`` is then on the reused store too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from playground.catalog import load_catalog
from playground.providers.base import GenerationParams, Message
from playground.results import CompareRequest, ModelResult, ModelTarget, ResultStatus
from playground.store import Store, StoreRecorder, open_store
from playground.store.models import Base, Comparison, Result
from playground.store.rollups import kept_in_step

POSTGRES_URL_ENV = "PLAYGROUND_TEST_POSTGRES_URL"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def postgres_base_url() -> str:
    """The test PostgreSQL URL; skips (or under CI fails) when it is not configured."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {POSTGRES_URL_ENV} is not set: PostgreSQL tests must run.")
    pytest.skip(f"{POSTGRES_URL_ENV} is not set")


@pytest.fixture(params=BACKENDS)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of an empty database: a SQLite file not yet created, or a fresh PG schema."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path_factory)
        return
    with postgres_schema_url() as url:
        yield url


def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a SQLite file not yet created, in a new temporary directory."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'data' / 'history.sqlite3'}"


@contextmanager
def postgres_schema_url(prefix: str = "test_store") -> Iterator[str]:
    """A URL on the test PostgreSQL whose ``search_path`` is a new, empty schema.

    The schema is dropped on exit. Skips (or under CI fails) without a configured server.
    """
    base = postgres_base_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def new_postgres_store() -> Iterator[Store]:
    """A store opened (migrated) on a new, empty PostgreSQL schema; closed, and the
    schema dropped, on exit."""
    with postgres_schema_url() as url:
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def store(store_url: str, migrated_templates: MigratedTemplates) -> Iterator[Store]:
    """An opened (migrated) store on each backend.

    The empty database starts as a copy of one migrated at the start of the session, so
    ``open_store`` finds nothing to migrate (its upgrade and recovery still run).
    """
    migrated_templates.copy_into(store_url)
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def session(store: Store) -> Iterator[Session]:
    """One open transaction on the test's ``store``, committed when the test ends."""
    with store.session() as s, s.begin():
        yield s


class MigratedTemplates:
    """A migrated database per backend, made once and copied into a test's empty one.

    Migrating costs about a second per test on PostgreSQL (~110 DDL statements, one round
    trip each) and ~0.3 s on SQLite; a copy costs a fraction. SQLite: a ``VACUUM INTO``
    copy of a migrated file. PostgreSQL: ``pg_dump`` of a migrated schema (tables, indexes,
    constraints, sequences and the ``alembic_version`` row), replayed into the test's new
    schema in one statement; without ``pg_dump`` the test's schema is migrated as before.
    """

    _SCHEMA_HOLE = "{schema}"

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._sqlite: Path | None = None
        self._postgres: str | None = None
        self._postgres_made = False

    def copy_into(self, url: str) -> None:
        """Make the empty database at ``url`` (from :func:`store_url`) a migrated one."""
        if make_url(url).get_backend_name() == "sqlite":
            target = Path(str(make_url(url).database))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.sqlite_file(), target)
            return
        ddl = self._postgres_ddl()
        if ddl is None:
            return
        schema = _search_path_of(url)
        admin = sa.create_engine(postgres_base_url())
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(ddl.replace(self._SCHEMA_HOLE, schema))
        finally:
            admin.dispose()

    def sqlite_file(self) -> Path:
        """An empty SQLite history file at the newest schema (made on first use)."""
        if self._sqlite is None:
            copy = self._tmp_path_factory.mktemp("migrated-template") / "history.sqlite3"
            migrated = open_store(sqlite_url(self._tmp_path_factory))
            try:
                with migrated.engine.connect() as connection:
                    connection.exec_driver_sql("VACUUM INTO ?", (str(copy),))
            finally:
                migrated.close()
            self._sqlite = copy
        return self._sqlite

    def _postgres_ddl(self) -> str | None:
        if not self._postgres_made:
            self._postgres_made = True
            self._postgres = _migrated_schema_dump()
        return self._postgres


def _search_path_of(url: str) -> str:
    """The schema a :func:`postgres_schema_url` URL puts on its ``search_path``."""
    options = str(make_url(url).query["options"])
    return options.removeprefix("-csearch_path=")


def _migrated_schema_dump() -> str | None:
    """SQL recreating a freshly migrated schema in the (existing) schema ``{schema}``, or
    ``None`` when ``pg_dump`` is not installed."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return None
    base = make_url(postgres_base_url())
    with postgres_schema_url("test_template") as url:
        open_store(url).close()
        schema = _search_path_of(url)
        command = [pg_dump, "--schema", schema, "--inserts", "--no-owner", "--no-privileges"]
        command += ["--host", base.host or "127.0.0.1", "--port", str(base.port or 5432)]
        command += ["--username", base.username or "postgres", "--dbname", base.database or ""]
        env = {**os.environ, "PGPASSWORD": base.password or ""}
        dump = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    kept = [
        line
        for line in dump.stdout.splitlines()
        # Comments, psql meta-commands (\restrict) and the schema itself (the test's exists).
        if line and not line.startswith(("--", "\\", "CREATE SCHEMA "))
    ]
    return "\n".join(kept).replace(f"{schema}.", f"{MigratedTemplates._SCHEMA_HOLE}.")


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> MigratedTemplates:
    """The session's migrated databases to copy (see :class:`MigratedTemplates`)."""
    return MigratedTemplates(tmp_path_factory)


class ReusedStores:
    """One migrated store per backend, opened on first use and kept until :meth:`close`."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._stores: dict[str, Store] = {}
        self._opened = ExitStack()

    def emptied(self, backend: str) -> Store:
        """``backend``'s store with no rows and ids counting from 1, like a new one."""
        if backend not in self._stores:
            if backend == "sqlite":
                url = sqlite_url(self._tmp_path_factory)
            else:
                url = self._opened.enter_context(postgres_schema_url("test_reused"))
            store = open_store(url)
            self._opened.callback(store.close)
            self._stores[backend] = store
        store = self._stores[backend]
        empty_store(store)
        return store

    def close(self) -> None:
        """Close the stores (and drop the PostgreSQL schema)."""
        self._opened.close()


def empty_store(store: Store) -> None:
    """Delete every row of every table and restart the ids, in one transaction."""
    deletes = [f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)]
    with store.engine.begin() as connection:
        if store.backend == "sqlite":
            # One statement per call; rowids restart by themselves once a table is empty.
            for delete in deletes:
                connection.exec_driver_sql(delete)
            return
        sequences = connection.exec_driver_sql(
            "SELECT sequence_name FROM information_schema.sequences "
            "WHERE sequence_schema = current_schema()"
        ).scalars()
        restarts = [f"SELECT setval('\"{name}\"', 1, false)" for name in sequences]
        # One round trip: on PostgreSQL TRUNCATE ... RESTART IDENTITY takes ~150 ms, this ~2 ms.
        connection.exec_driver_sql("; ".join([*deletes, *restarts]))


@pytest.fixture(scope="session")
def reused_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReusedStores]:
    """The session's migrated stores (prefer ``reused_store``, which empties them)."""
    stores = ReusedStores(tmp_path_factory)
    try:
        yield stores
    finally:
        stores.close()


@pytest.fixture(params=BACKENDS)
def reused_store(request: pytest.FixtureRequest, reused_stores: ReusedStores) -> Store:
    """A migrated store on each backend, shared by the session and emptied for this test.

    Reads and writes like ``store`` at a fraction of the cost; use ``store`` for tests of
    opening, migrating or recovering a database.
    """
    return reused_stores.emptied(request.param)


@pytest.fixture(scope="session")
def migrated_sqlite_file(migrated_templates: MigratedTemplates) -> Path:
    """An empty SQLite history file at the newest schema, to copy where an app opens one.

    Opening a copy finds nothing to migrate: ~0.05 s instead of ~0.3 s.
    """
    return migrated_templates.sqlite_file()


@contextmanager
def engine_events(store: Store, event: str) -> Iterator[list[tuple[Any, ...]]]:
    """The arguments of every ``event`` (e.g. ``"commit"``, ``"before_cursor_execute"``) the
    store's engine fires inside the block, one tuple each, to count queries or transactions."""
    fired: list[tuple[Any, ...]] = []

    def record(*args: Any) -> None:
        fired.append(args)

    sa.event.listen(store.engine, event, record)
    try:
        yield fired
    finally:
        sa.event.remove(store.engine, event, record)


@pytest.fixture
def recorder(store: Store) -> StoreRecorder:
    """A recorder pricing results from the packaged catalog."""
    return StoreRecorder(store.engine, load_catalog().cost_of)


def make_request(
    models: Sequence[str] = ("gpt-5", "claude-haiku-4.5"),
    prompt: str = "Explain WAL mode in one sentence.",
    *,
    provider: str = "demo",
    **fields: object,
) -> CompareRequest:
    """A comparison of ``models`` on one user message."""
    return CompareRequest(
        messages=(Message("user", prompt),),
        targets=tuple(ModelTarget(provider, m) for m in models),
        **fields,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Outcome:
    """How one target's run should end in :func:`record_run`."""

    content: str = "An answer."
    status: ResultStatus = "completed"
    tokens_used: int | None = 1
    balance_remaining: int | None = 100
    latency_ms: float | None = 1000.0
    ttft_ms: float | None = 200.0
    error_code: str | None = None
    error_message: str | None = None


def running_result(
    request: CompareRequest, index: int, result_id: int | None = None
) -> ModelResult:
    """Target ``index`` of ``request`` as the runner reports it when its stream starts."""
    generation = request.generation_request(index)
    provider = request.targets[index].provider
    return ModelResult(
        index=index,
        provider=provider,
        model=generation.model,
        params=generation.params,
        request_hash=generation.request_hash(provider),
        status="running",
        started_at=datetime.now(UTC),
        result_id=result_id,
    )


def record_run(
    recorder: StoreRecorder, request: CompareRequest, outcomes: Sequence[Outcome]
) -> tuple[int, list[int]]:
    """Drive the recorder like the runner: start, a progress flush, finish per target."""
    comparison_id = recorder.start_comparison(request)
    ids = []
    for index, outcome in enumerate(outcomes):
        running = running_result(request, index)
        result_id = recorder.record_started(comparison_id, running)
        half = outcome.content[: len(outcome.content) // 2]
        running = replace(running, result_id=result_id, content=half)
        recorder.record_progress(running)
        recorder.record_finished(
            replace(
                running,
                content=outcome.content,
                status=outcome.status,
                tokens_used=outcome.tokens_used,
                balance_remaining=outcome.balance_remaining,
                latency_ms=outcome.latency_ms,
                ttft_ms=outcome.ttft_ms,
                error_code=outcome.error_code,
                error_message=outcome.error_message,
                finished_at=datetime.now(UTC),
            )
        )
        ids.append(result_id)
    return comparison_id, ids


def seed_comparison(
    session: Session,
    *,
    created: datetime = T0,
    prompt: str = "Seeded prompt",
    owner: str | None = None,
    batch_id: int | None = None,
) -> Comparison:
    """A comparison row written directly (for analytics tests that need exact times);
    ``batch_id``: the evaluation batch that ran it, as its recorder would store it."""
    comparison = Comparison(
        created_utc=created,
        owner=owner,
        title="",
        system_prompt="",
        messages_json=[{"role": "user", "content": prompt}],
        params_json={},
        note="",
        use_cache=False,
        prompt_text=prompt,
        prompt_hash=f"hash-{prompt}",
        batch_id=batch_id,
    )
    session.add(comparison)
    session.flush()
    return comparison


def seed_result(
    session: Session,
    comparison: Comparison,
    model: str,
    *,
    status: str = "completed",
    created: datetime | None = None,
    finished_after: timedelta = timedelta(seconds=2),
    content: str = "",
    tokens_used: int | None = None,
    balance_remaining: int | None = None,
    latency_ms: float | None = None,
    ttft_ms: float | None = None,
    cached: bool = False,
    provider: str = "elumenta",
) -> Result:
    """A result row written directly with exactly these figures."""
    created = created or comparison.created_utc
    result = Result(
        comparison_id=comparison.id,
        position=len(comparison.results),
        provider=provider,
        model=model,
        params_json=GenerationParams().to_dict(),
        request_hash=f"{provider}-{model}-{comparison.prompt_hash}",
        status=status,
        content=content,
        chars=len(content),
        tokens_used=tokens_used,
        balance_remaining=balance_remaining,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        cached=cached,
        created_utc=created,
        started_utc=created,
        finished_utc=created + finished_after,
        updated_utc=created + finished_after,
    )
    position = len(comparison.results)
    # As the recorder's final write does: the usage rollups count the row in the same step.
    with kept_in_step(
        session, (Result.comparison_id == comparison.id) & (Result.position == position)
    ):
        comparison.results.append(result)
        session.flush()
    return result


class Gate:
    """A recorder-like object whose ``hold`` call keeps the writer thread busy until opened."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.open = threading.Event()

    def hold(self) -> None:
        self.held.set()
        assert self.open.wait(10)


@contextmanager
def statements_of(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the store's engine runs meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def results_plan(store: Store, statement: str, parameters: Any) -> str:
    """How the database reads ``results`` for ``statement``: its plan's lines about it
    (on PostgreSQL with sequential and bitmap scans, sorts, merge and hash joins off, which
    a table this small would otherwise prefer to walking an index in order)."""
    with store.engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if store.backend == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            lines = [str(row[-1]) for row in cursor.fetchall()]
        else:
            for setting in ("seqscan", "bitmapscan", "sort", "mergejoin", "hashjoin"):
                cursor.execute(f"SET LOCAL enable_{setting} = off")
            cursor.execute(f"EXPLAIN {statement}", parameters)
            lines = [str(row[0]) for row in cursor.fetchall()]
        connection.rollback()
    return "\n".join(line for line in lines if "results" in line)


def stored_comparisons(store: Store) -> tuple[list[int], list[tuple[int, int, int, str]]]:
    """Every comparison id, and every result row as (id, comparison id, position, status)
    in position order: what a test of a start stored exactly once compares."""
    with store.session() as session:
        comparisons = list(session.execute(sa.select(Comparison.id)).scalars())
        rows = session.execute(
            sa.select(Result.id, Result.comparison_id, Result.position, Result.status).order_by(
                Result.position
            )
        ).all()
    return comparisons, [(r.id, r.comparison_id, r.position, r.status) for r in rows]
