"""The task queue batches run through: procrastinate on the history's PostgreSQL database.

One queue, ``batches``, and one task, a batch *shard*: a worker runs it by claiming the
batch's cells until none is left (:class:`~playground.evaluation.batch.BatchJob`).
Starting a batch queues several shards so as many workers can work on it at once; each
shard has its own queueing lock, so queueing again never piles up shards that still wait.
Procrastinate's tables live beside the history's and are created on first use.
"""

from __future__ import annotations

import psycopg
from procrastinate import App, PsycopgConnector, SyncPsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.jobs import JobDeferrer
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

from playground.errors import ConfigError
from playground.redact import mask_url

QUEUE = "batches"
SHARD_TASK = "playground.batch_shard"
# Any constant works: it only has to be the same in every process creating the schema.
_SCHEMA_LOCK_KEY = 7_301_946_119
_schema_ready: set[str] = set()


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (``+psycopg`` dropped)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"The task queue needs PostgreSQL; {mask_url(database_url)} is not a PostgreSQL URL."
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_queue_schema(database_url: str) -> None:
    """Create procrastinate's tables unless they exist; safe when processes start together.

    Raises :class:`ConfigError` when the database cannot be reached.
    """
    if database_url in _schema_ready:
        return
    try:
        with psycopg.connect(conninfo(database_url)) as connection, connection.transaction():
            # Serialize creators: the second one waits, then finds the tables there.
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            found = connection.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if found is None or found[0] is None:
                # Without parameters psycopg sends the script as is (several statements).
                connection.execute(SchemaManager.get_schema())
    except psycopg.Error as exc:
        raise _unreachable(database_url, exc) from exc
    _schema_ready.add(database_url)


def queue_app(database_url: str, *, sync: bool = False, max_connections: int = 2) -> App:
    """A procrastinate app on the database (``sync``: for deferring from plain threads)."""
    info = conninfo(database_url)
    if sync:
        return App(
            connector=SyncPsycopgConnector(conninfo=info, min_size=1, max_size=max_connections)
        )
    return App(connector=PsycopgConnector(conninfo=info, min_size=1, max_size=max_connections))


def _shard(app: App, batch_id: int, shard: int) -> JobDeferrer:
    return app.configure_task(
        SHARD_TASK, queue=QUEUE, queueing_lock=f"batch-{batch_id}-shard-{shard}"
    )


def enqueue_shards(database_url: str, batch_id: int, shards: int) -> int:
    """Queue ``shards`` shards of a batch (those still waiting are not queued twice).

    Returns how many were queued; raises :class:`ConfigError` when the queue is unreachable.
    """
    ensure_queue_schema(database_url)
    queued = 0
    try:
        with queue_app(database_url, sync=True).open() as app:
            for shard in range(shards):
                try:
                    _shard(app, batch_id, shard).defer(batch_id=batch_id, shard=shard)
                except AlreadyEnqueued:
                    continue
                queued += 1
    except ConnectorException as exc:
        raise _unreachable(database_url, exc) from exc
    return queued


async def enqueue_shards_async(app: App, batch_id: int, shards: range) -> int:
    """Queue these shards of a batch on an open app (a worker's); returns how many were queued."""
    queued = 0
    for shard in shards:
        try:
            await _shard(app, batch_id, shard).defer_async(batch_id=batch_id, shard=shard)
        except AlreadyEnqueued:
            continue
        queued += 1
    return queued


def _unreachable(database_url: str, exc: Exception) -> ConfigError:
    return ConfigError(
        f"The task queue in {mask_url(database_url)} is unreachable ({type(exc).__name__})."
    )
