"""Writes that outlive a database outage: retried on a fresh connection until it is back.

A PostgreSQL restart or failover, or a SQLite file locked by another process, must only
delay history writes. :func:`run_write` runs one transaction and, when it fails because the
connection was lost (or SQLite stayed locked past its busy timeout), runs it again on a
fresh connection with backoff until the database answers, for up to
``WritePolicy.wait_s`` seconds counted from the start of the outage (process-wide, so
writes queued behind the first one don't each wait the whole time again). Then it raises
:class:`StoreUnavailableError`; a finished answer is spooled instead
(:mod:`playground.store.spool`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from playground.errors import PlaygroundError
from playground.unsaved import TALLY

if TYPE_CHECKING:
    from playground.store.spool import Spool

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_OUTAGE_WAIT_S = 60.0
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0


class StoreUnavailableError(PlaygroundError):
    """The history database stayed unreachable for longer than the outage wait."""


@dataclass(frozen=True)
class WritePolicy:
    """How long writes wait for a database that went away, and where answers go then."""

    wait_s: float = DEFAULT_OUTAGE_WAIT_S
    spool: Spool | None = None


class _Outage:
    """When this process first saw the database away (``None``: it answers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def began(self) -> float:
        with self._lock:
            if self._since is None:
                self._since = time.monotonic()
                TALLY.set_down(True)
                log.warning("The history database is unreachable; writes wait for it.")
            return self._since

    def ended(self) -> bool:
        """Record that a write went through; whether an outage just ended."""
        if self._since is None:  # the hot path takes no lock
            return False
        with self._lock:
            was_down, self._since = self._since is not None, None
        TALLY.set_down(False)
        if was_down:
            log.warning("The history database is back; waiting writes are being written.")
        return was_down

    @property
    def down(self) -> bool:
        return self._since is not None


OUTAGE = _Outage()


def is_outage(exc: BaseException, dialect: str) -> bool:
    """Whether ``exc`` means the database is away for now, not that the write is wrong.

    A lost or refused connection (SQLAlchemy's disconnect detection, or any
    ``OperationalError`` from PostgreSQL: connect failures, an administrator's shutdown, a
    serialization failure), or SQLite's ``database is locked`` after its busy timeout.
    """
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    if dialect == "sqlite":
        # Other operational errors (no such table, disk I/O) don't go away by waiting.
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text
    return True


def run_write(engine: Engine, work: Callable[[Session], T], policy: WritePolicy | None = None) -> T:
    """Run ``work(session)`` in one transaction, retried while the database is away.

    Returns what ``work`` returned, once committed. Raises :class:`StoreUnavailableError`
    when the outage has lasted ``policy.wait_s`` (any other error at once). ``work`` must be
    safe to run again: a failed attempt's transaction was rolled back.
    """
    policy = policy or WritePolicy()
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                outcome = work(session)
        except sa.exc.DBAPIError as exc:
            if not is_outage(exc, engine.dialect.name):
                raise
            left = OUTAGE.began() + policy.wait_s - time.monotonic()
            if left <= 0:
                raise StoreUnavailableError(
                    f"The history database has been unreachable for {policy.wait_s:g} s "
                    "(PLAYGROUND_DB_OUTAGE_WAIT_S)."
                ) from exc
            time.sleep(min(backoff, left))
            backoff = min(2 * backoff, MAX_BACKOFF_S)
            continue
        if OUTAGE.ended() and policy.spool is not None:
            replay_quietly(engine, policy.spool)
        return outcome


def skip_during_outage() -> bool:
    """Whether an optional write (a partial-text flush) should be skipped: the database is
    known to be away, and the final write carries the whole text anyway."""
    return OUTAGE.down


def replay_quietly(engine: Engine, spool: Spool) -> None:
    """Replay ``spool`` now that the database answers; a failure waits for the next chance."""
    try:
        spool.replay(engine)
    except (sa.exc.SQLAlchemyError, OSError):
        log.warning("Replaying the spooled answers failed; they stay spooled.", exc_info=True)
