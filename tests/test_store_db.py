"""Opening the store: PostgreSQL connections are pinged only after sitting idle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from playground.store import Store, db
from tests.store_fixtures import new_postgres_store, postgres_base_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store() -> Iterator[Store]:
    with new_postgres_store() as store:
        yield store


@pytest.fixture
def pings(pg_store: Store, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The connections the store pings before use (the ping still runs)."""
    pinged: list[Any] = []
    real = pg_store.engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pinged.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(pg_store.engine.dialect, "do_ping", counted)
    return pinged


def _backend_pid(store: Store) -> int:
    with store.session() as session, session.begin():
        return int(session.scalar(sa.text("SELECT pg_backend_pid()")))


def test_a_connection_in_use_is_not_pinged_before_each_transaction(
    pg_store: Store, pings: list[Any]
) -> None:
    pids = {_backend_pid(pg_store) for _ in range(20)}
    assert len(pids) == 1
    assert pings == []


def test_an_idle_connection_the_server_closed_is_replaced_before_use(
    pg_store: Store, pings: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _backend_pid(pg_store)
    admin = sa.create_engine(postgres_base_url())
    try:
        with admin.begin() as connection:  # as a restart or an idle timeout would
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": closed})
    finally:
        admin.dispose()
    monkeypatch.setattr(db, "IDLE_PING_AFTER_S", 0.0)

    reopened = _backend_pid(pg_store)

    assert reopened != closed
    assert len(pings) == 1
