"""A new SQLite history in one transaction: the migrated schema's snapshot, stamped at head.

Running every migration on a new file is most of a first start's database work (Alembic
and each revision's script loaded, tables rebuilt revision by revision). A new, empty
SQLite file instead gets the statements SQLite itself stored for a database migrated to
head (``sqlite_schema.json``, written by ``make sqlite-schema``, i.e.
:func:`~playground.store.db.write_sqlite_snapshot`), so its schema is the migrated one
statement for statement, and its Alembic revision is head.
A test migrates a file with Alembic and compares the two; a snapshot older than the newest
migration is never used (the database is migrated instead).
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

SNAPSHOT = Path(__file__).with_name("sqlite_schema.json")
_KIND_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}


def schema_statements(connection: Connection) -> list[str]:
    """The ``CREATE`` statements that rebuild this SQLite database's schema: tables
    (virtual ones included), then indexes, views and triggers. SQLite's own objects and
    the tables a full-text index keeps for itself (made with their virtual table) are left
    out."""
    rows = connection.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).all()
    virtual = [name for kind, name, sql in rows if sql.startswith("CREATE VIRTUAL TABLE")]
    kept = [
        (kind, sql)
        for kind, name, sql in rows
        if not name.startswith("sqlite_")
        and not (kind == "table" and any(name.startswith(f"{v}_") for v in virtual))
    ]
    return [sql for _, sql in sorted(kept, key=lambda row: _KIND_ORDER[row[0]])]


def stored_row_adder() -> tuple[str, ...]:
    """The statements of the rollups' per-connection row adder as the snapshot holds them
    (see :func:`~playground.store.rollups.sqlite_row_adder`); empty when it has none."""
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    return tuple(snapshot.get("row_adder", ()))


def create_from_snapshot(engine: Engine, head: str) -> bool:
    """Build the schema at revision ``head`` in an empty SQLite database, in one
    transaction; ``False`` (nothing done) when the database is not empty or the snapshot
    is not at ``head``: then the migrations must run."""
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    if snapshot["revision"] != head:
        return False
    with engine.begin() as connection:
        # Processes starting together: the second waits here, then finds the tables.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        if connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
            return False
        for statement in snapshot["statements"]:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (head,))
    return True
