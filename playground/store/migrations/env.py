"""Alembic environment: migrations run on the connection ``playground.store.db`` passes in.

There is no ``alembic.ini``: :func:`playground.store.db.upgrade_to_head` builds the config
in code and owns the transaction (and the lock that keeps two processes from migrating at
once).
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through playground.store.db.upgrade_to_head().")

context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
