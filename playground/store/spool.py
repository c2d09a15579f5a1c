"""The spool: answers that could not be written while the database was away, kept on disk.

When the history database stays unreachable longer than the outage wait, a finished
answer's final writes (its result row, and its batch cell) are appended to a JSON-lines
file in the data directory, fsynced, one line per answer. They are replayed on the next
start (before crash recovery, so such a row is not marked ``interrupted``) or as soon as
the database answers again. Replay is idempotent: a record applies only while its result
row is still open (or was marked ``interrupted``), so replaying again after a crash
mid-replay changes nothing. One file per database (named after its URL, password left
out), so a switched ``PLAYGROUND_DATABASE_URL`` never receives another database's answers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from playground.store.eval_models import BatchCellRow
from playground.store.models import OPEN_STATUSES, Result
from playground.store.rollups import FinalWrite, final_write, updated_in_step
from playground.unsaved import TALLY

log = logging.getLogger(__name__)

SPOOL_VERSION = 1
_TABLES: dict[str, Any] = {"results": Result.__table__, "batch_cells": BatchCellRow.__table__}
# A spooled answer is replayed over its row only while nothing final was written there.
_REPLAYABLE = (*OPEN_STATUSES, "interrupted")


@dataclass(frozen=True)
class RowUpdate:
    """New column values for one row, by table name and primary key."""

    table: str
    id: int
    values: dict[str, Any]


class Spool:
    """The append-only spool file of one database, in ``directory``."""

    def __init__(self, directory: Path, database_url: str) -> None:
        rendered = make_url(database_url).render_as_string(hide_password=True)
        digest = hashlib.sha256(rendered.encode()).hexdigest()[:12]
        self.path = directory / f"unsaved-answers-{digest}.jsonl"

    def append(self, result_id: int, updates: list[RowUpdate]) -> None:
        """Add one answer's final writes; returns once they are on disk (fsynced)."""
        line = json.dumps(
            {
                "v": SPOOL_VERSION,
                "result_id": result_id,
                "updates": [
                    {"table": u.table, "id": u.id, "values": _encode(u.values)} for u in updates
                ],
            },
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked() as file:
            file.seek(0, os.SEEK_END)
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
        TALLY.add_spooled(1)

    def pending(self) -> bool:
        """Whether answers wait in the file."""
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def replay(self, engine: Engine) -> int:
        """Write every spooled answer whose row is still open, then empty the file.

        Returns how many answers were written. All of them are written in one transaction;
        the file is emptied only after it committed.
        """
        if not self.pending():
            TALLY.clear_spooled()
            return 0
        with self._locked() as file:
            file.seek(0)
            records, rejected = _records(file.read())
            written = 0
            with engine.begin() as connection:
                for line, record in records:
                    try:
                        with connection.begin_nested():
                            written += _apply(connection, record)
                    except (KeyError, TypeError, ValueError, sa.exc.StatementError):
                        log.warning("A spooled answer could not be written", exc_info=True)
                        rejected.append(line)
            if rejected:
                # Never dropped: kept beside the spool for an operator to look at.
                self._set_aside(rejected)
            file.seek(0)
            file.truncate()
            file.flush()
            os.fsync(file.fileno())
        TALLY.clear_spooled()
        log.warning("Wrote %d spooled answer(s) from %s to the database.", written, self.path)
        return written

    @property
    def rejected_path(self) -> Path:
        """Where spooled lines that could not be written are set aside."""
        return self.path.with_suffix(".rejected.jsonl")

    def _set_aside(self, lines: list[str]) -> None:
        log.error(
            "%d spooled line(s) could not be written to the database; kept in %s.",
            len(lines),
            self.rejected_path,
        )
        fd = os.open(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8", newline="\n") as rejected:
            rejected.writelines(line + "\n" for line in lines)
            rejected.flush()
            os.fsync(rejected.fileno())

    @contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        """The file, opened for reading and appending, locked against other processes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with open(fd, "r+", encoding="utf-8", newline="\n") as file:
            _lock(file)
            try:
                yield file
            finally:
                _unlock(file)


def _records(text: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The spool's records (with their lines), and the lines that are not records.

    A torn last line (a crash mid-append: that answer was never acknowledged) or a record
    of another version is not applied but set aside, never dropped.
    """
    records, others = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            others.append(line)
            continue
        if isinstance(record, dict) and record.get("v") == SPOOL_VERSION:
            records.append((line, record))
        else:
            others.append(line)
    return records, others


def _apply(connection: sa.Connection, record: dict[str, Any]) -> int:
    results = _TABLES["results"]
    status = connection.execute(
        sa.select(results.c.status).where(results.c.id == record["result_id"])
    ).scalar()
    if status not in _REPLAYABLE:
        return 0  # written already (an earlier replay), or the row is gone
    for update in record["updates"]:
        apply_update(
            connection, RowUpdate(update["table"], update["id"], _decode(update["values"]))
        )
    return 1


def apply_update(connection: sa.Connection | Session, update: RowUpdate) -> None:
    """Set ``update.values`` on its row (the recorder's final write and the replay both)."""
    columns = tuple(sorted(update.values))
    params = {_SET + name: update.values[name] for name in columns}
    if update.table != "results":
        connection.execute(_row_update(update.table, columns), {**params, _ROW: update.id})
        return
    updated_in_step(connection, update.id, _final_update(columns), {**params, _ROW: update.id})


_ROW = "spool_row"
_SET = "spool_set_"
"""Bound parameters' names: a name of a column being set is reserved by SQLAlchemy."""


@functools.lru_cache(maxsize=32)
def _row_update(table_name: str, columns: tuple[str, ...]) -> sa.Update:
    """The UPDATE of one row of ``table_name`` setting ``columns``, built once: every
    batch answer's final write sets its cell's row, and building and caching a new
    statement each time cost more than running it."""
    table = _TABLES[table_name]
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam(_ROW, type_=table.c.id.type))
        .values({name: sa.bindparam(_SET + name, type_=table.c[name].type) for name in columns})
    )


@functools.lru_cache(maxsize=32)
def _final_update(columns: tuple[str, ...]) -> FinalWrite:
    """A result's final write setting ``columns`` (see :func:`_row_update`)."""
    return final_write(_row_update("results", columns))


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {"$utc": value.isoformat()} if isinstance(value, datetime) else value
        for key, value in values.items()
    }


def _decode(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: datetime.fromisoformat(value["$utc"])
        if isinstance(value, dict) and set(value) == {"$utc"}
        else value
        for key, value in values.items()
    }


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(file: IO[str]) -> None:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_LOCK, 1)

    def _unlock(file: IO[str]) -> None:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(file: IO[str]) -> None:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)

    def _unlock(file: IO[str]) -> None:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
