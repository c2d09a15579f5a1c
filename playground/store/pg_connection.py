"""The psycopg connection class of the history store's PostgreSQL engines.

Its own module, imported only when a PostgreSQL database is opened: psycopg costs a
command line on SQLite (``eval`` in CI) a tenth of a second or more to import.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors as pg_errors


class AnsweringConnection(psycopg.Connection[Any]):
    """A psycopg connection that gives up on a server silent for ``answer_timeout_s``.

    Giving up closes the connection (its state is unknown) and raises
    ``psycopg.OperationalError``: SQLAlchemy then discards it from the pool.
    """

    answer_timeout_s: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """Consume ``gen`` as psycopg does, within ``answer_timeout_s`` unless told otherwise."""
        limit = timeout if timeout is not None else self.answer_timeout_s
        try:
            return super().wait(gen, interval, limit)
        except pg_errors._WaitTimeout as exc:  # psycopg's own signal for it
            if timeout is not None:
                raise
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"The database did not answer for {limit:g} s; the connection was closed "
                "(PLAYGROUND_DB_STATEMENT_TIMEOUT_S)."
            ) from exc
