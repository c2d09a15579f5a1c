"""Fixtures for the outage tests: PostgreSQL behind a fault proxy, and a clean slate after.

Modules using them mark themselves ``pytest.mark.usefixtures("outage_forgotten")``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from playground.store import open_store
from playground.store.outage import OUTAGE
from playground.unsaved import TALLY
from tests.fault_proxy import FaultProxy, proxied
from tests.store_fixtures import MigratedTemplates, postgres_schema_url


@pytest.fixture
def outage_forgotten() -> Iterator[None]:
    """The process-wide outage state does not leak from one test into the next."""
    yield
    OUTAGE.ended()
    TALLY.clear_spooled()


@pytest.fixture
def pg(migrated_templates: MigratedTemplates) -> Iterator[tuple[FaultProxy, str]]:
    """A migrated PostgreSQL schema (a copy of the session's) and its URL through a fault
    proxy."""
    with postgres_schema_url("test_outage") as url, proxied(url) as (proxy, via_proxy):
        migrated_templates.copy_into(url)
        open_store(via_proxy).close()
        yield proxy, via_proxy
