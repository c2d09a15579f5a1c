"""PostgreSQL connections that cannot hang on a silent server.

A server that stops answering without closing the connection (a network partition, a
stopped VM, a stalled proxy) would leave a query waiting forever: libpq has no read
timeout. Every connection therefore gets, unless the URL sets them itself:

- ``connect_timeout``: a connection attempt gives up after :data:`CONNECT_TIMEOUT_S`;
- TCP keepalives and ``tcp_user_timeout``: the kernel drops a connection whose peer is
  gone (idle, or with data unacknowledged) instead of keeping it open for hours;
- ``statement_timeout`` (:data:`DEFAULT_STATEMENT_TIMEOUT_S`, the
  ``PLAYGROUND_DB_STATEMENT_TIMEOUT_S`` setting): the server cancels a statement that runs
  longer;
- a client-side answer timeout a little longer than that
  (:class:`~playground.store.pg_connection.AnsweringConnection`): a connection that has
  not answered a statement or commit by then is closed and the call fails with
  ``OperationalError``, which the write path treats as an outage (it retries, then
  spools: :mod:`playground.store.outage`). A proxy that keeps the TCP connection alive
  while forwarding nothing is only caught by this one.

Migrations may run longer (a back-fill on a large history): :func:`unbounded` lifts both
timeouts for one connection's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import URL, Connection

CONNECT_TIMEOUT_S = 10
DEFAULT_STATEMENT_TIMEOUT_S = 30.0
# The libpq parameters every connection gets unless its URL sets them.
DEFAULTS = {
    "connect_timeout": str(CONNECT_TIMEOUT_S),
    # Idle 30 s, then a probe every 10 s, 3 unanswered: a vanished peer is dropped in ~60 s.
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    # Data sent and not acknowledged for this long: the peer is gone (Linux; libpq >= 12).
    "tcp_user_timeout": "30000",
}
# A statement the server would cancel at statement_timeout gets this long more to say so.
MAX_ANSWER_GRACE_S = 5.0


def connect_args(url: URL, statement_timeout_s: float) -> dict[str, Any]:
    """The libpq parameters to add to ``url``'s: the defaults above, except those the URL
    sets (``?connect_timeout=…&options=-c statement_timeout=…``). ``statement_timeout_s``
    0 means none."""
    args: dict[str, Any] = {k: v for k, v in DEFAULTS.items() if k not in url.query}
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    if statement_timeout_s > 0 and "statement_timeout" not in options:
        ours = f"-c statement_timeout={round(statement_timeout_s * 1000)}"
        args["options"] = f"{options} {ours}".strip()
    return args


def answer_timeout_s(statement_timeout_s: float) -> float | None:
    """How long the client waits for any answer on a connection (``None``: forever)."""
    if statement_timeout_s <= 0:
        return None
    return statement_timeout_s + min(MAX_ANSWER_GRACE_S, statement_timeout_s)


@contextmanager
def unbounded(connection: Connection) -> Iterator[None]:
    """Lift the statement and answer timeouts for ``connection``'s current transaction
    (PostgreSQL; a no-op elsewhere). Call inside a transaction."""
    if connection.dialect.name != "postgresql":
        yield
        return
    from playground.store.pg_connection import AnsweringConnection

    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    raw = connection.connection.dbapi_connection
    kept = getattr(raw, "answer_timeout_s", None)
    if isinstance(raw, AnsweringConnection):
        raw.answer_timeout_s = None
    try:
        yield
    finally:
        if isinstance(raw, AnsweringConnection):
            raw.answer_timeout_s = kept
