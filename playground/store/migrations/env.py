"""Alembic environment: migrations run on the connection ``playground.store.db`` passes in.

There is no ``alembic.ini``: :func:`playground.store.db.upgrade_to_head` builds the config
in code and owns the transaction (and the lock that keeps two processes from migrating at
once).
"""

from __future__ import annotations

from alembic import context

from playground.store.rollups import SQLITE_ROW_ADDER, sqlite_row_adder

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through playground.store.db.upgrade_to_head().")

sqlite = connection.dialect.name == "sqlite"
if sqlite:
    # Every SQLite connection has a TEMP view whose trigger names ``results``: SQLite
    # would refuse a migration that rebuilds that table while it exists. It comes back
    # after the migrations (a rolled-back migration also rolls back its removal).
    connection.exec_driver_sql(f"DROP VIEW IF EXISTS temp.{SQLITE_ROW_ADDER}")
try:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
finally:
    if sqlite:
        for statement in sqlite_row_adder():
            connection.exec_driver_sql(statement)
