"""Crash recovery: results left ``pending``/``running`` by a dead process become ``interrupted``.

Several processes share one database, so a process starting up must not touch rows another
live process is still writing. Each row names its writer (``host:pid:token``); a row is
recovered when its writer is known to be gone (same host, process no longer running, or a
previous process that had our pid) or when nobody has touched it for ``stale_after``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.store.models import OPEN_STATUSES, Result
from playground.store.rollups import kept_in_step

DEFAULT_STALE_AFTER = timedelta(hours=1)
INTERRUPTED_CODE = "interrupted"
INTERRUPTED_MESSAGE = (
    "The app stopped before this answer finished; the text received so far is kept."
)


def writer_id() -> str:
    """This process's writer name, ``host:pid:token`` (a new token after a fork)."""
    return _writer_for_pid(os.getpid())


@lru_cache(maxsize=1)
def _writer_for_pid(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:12]}"


def writer_alive(writer: str | None) -> bool:
    """Whether the process that wrote a row may still be writing it.

    Only processes on this host can be checked; others count as alive (staleness decides).
    """
    if writer is None:
        return False
    if writer == writer_id():
        return True
    host, _, rest = writer.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or os.name == "nt":
        # On Windows os.kill(pid, 0) would terminate the process, not probe it.
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(
    session: Session,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    now: datetime | None = None,
    is_alive: Callable[[str | None], bool] = writer_alive,
) -> int:
    """Mark abandoned open results ``interrupted`` (text kept); return how many changed.

    Does not commit: the caller owns the transaction.
    """
    now = now or datetime.now(UTC)
    writers = session.scalars(
        sa.select(Result.writer).where(Result.status.in_(OPEN_STATUSES)).distinct()
    ).all()
    dead = [w for w in writers if not is_alive(w)]
    abandoned = [Result.updated_utc < now - stale_after]
    if dead:
        abandoned.append(Result.writer.in_([w for w in dead if w is not None]))
    if None in dead:
        abandoned.append(Result.writer.is_(None))
    ids = session.scalars(
        sa.select(Result.id).where(Result.status.in_(OPEN_STATUSES), sa.or_(*abandoned))
    ).all()
    if not ids:
        return 0
    with kept_in_step(session, Result.id.in_(ids)):
        outcome = session.execute(
            sa.update(Result)
            .where(Result.id.in_(ids), Result.status.in_(OPEN_STATUSES))
            .values(
                status="interrupted",
                finished_utc=sa.func.coalesce(Result.finished_utc, Result.updated_utc),
                error_code=INTERRUPTED_CODE,
                error_message=INTERRUPTED_MESSAGE,
                updated_utc=now,
            )
            .execution_options(synchronize_session=False)
        )
    return int(getattr(outcome, "rowcount", 0) or 0)
