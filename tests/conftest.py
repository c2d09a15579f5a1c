"""Shared fixtures: one fake Elumenta server per test session, reset before each test."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import streamlit as st
from streamlit.components.v2 import manifest_scanner

from playground.services import runtime
from playground.store import open_store
from tests.fake_elumenta import FakeElumenta


@pytest.fixture(autouse=True)
def main_module_kept() -> Iterator[None]:
    """``sys.modules["__main__"]`` is pytest's again after each test.

    AppTest leaves the page script it ran there; a later test starting "spawn" processes
    then had each child run that page as its main module, and the children died.
    """
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session", autouse=True)
def components_scanned_once() -> Iterator[None]:
    """Streamlit components are looked for in every installed package once, not per AppTest.

    Each new AppTest scans them all (~0.5 s, most of opening a page); the installed
    packages do not change while the tests run.
    """
    with pytest.MonkeyPatch.context() as patch:
        scan = functools.cache(manifest_scanner.scan_component_manifests)
        patch.setattr(manifest_scanner, "scan_component_manifests", scan)
        yield


@pytest.fixture(scope="session")
def fake_elumenta_server() -> Iterator[FakeElumenta]:
    """The session's fake Elumenta server (prefer ``fake_elumenta``, which is reset)."""
    with FakeElumenta() as fake:
        yield fake


@pytest.fixture
def fake_elumenta(fake_elumenta_server: FakeElumenta) -> FakeElumenta:
    """The fake Elumenta server with no scripts, no recorded requests and default account."""
    fake_elumenta_server.reset()
    return fake_elumenta_server


# History-store fixtures (store_url on SQLite and PostgreSQL, store, session, recorder), a
# throwaway PostgreSQL database for queue workers (worker_database_url, worker_store) and
# PostgreSQL behind a fault proxy for the outage tests (pg, outage_forgotten).
pytest_plugins = ["tests.store_fixtures", "tests.worker_fixtures", "tests.outage_fixtures"]


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    """A migrated PostgreSQL schema shared by one test module (mark its tests ``postgres``).

    For modules whose tests each need PostgreSQL but not an empty database: one migration
    instead of one per test. Rows pile up; compare counts before and after, not with zero.
    """
    from tests.store_fixtures import postgres_schema_url  # a plugin: imported after conftest

    with postgres_schema_url("test_module") as url:
        open_store(url).close()
        yield url


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean environment for the Streamlit app: demo provider, fast, data in ``tmp_path``.

    Process-wide UI objects (settings, runner, providers) are rebuilt before and after.
    """
    for name in list(os.environ):
        if name.startswith(("PLAYGROUND_", "ELUMENTA_", "OPENAI_COMPATIBLE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no developer's .env leaks in
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PLAYGROUND_DEMO_TIME_SCALE", "0.01")
    monkeypatch.setenv("PLAYGROUND_MAX_RETRIES", "0")
    runtime.reset()
    yield tmp_path
    runtime.reset()


@pytest.fixture
def with_fake(app_env: Path, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the app at the in-process fake Elumenta server with a valid key."""
    monkeypatch.setenv("ELUMENTA_BASE_URL", fake_elumenta.base_url)
    monkeypatch.setenv("ELUMENTA_API_KEY", fake_elumenta.api_key)
    runtime.reset()


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], str]]:
    """The data callable of every download button an AppTest page draws, by label."""
    captured: dict[str, Callable[[], str]] = {}
    real = st.download_button

    def spy(label: str, data: Callable[[], str], *args: Any, **kwargs: Any) -> bool:
        captured[label] = data
        return bool(real(label, data, *args, **kwargs))

    monkeypatch.setattr(st, "download_button", spy)
    return captured


# Property tests (hypothesis): enough examples to find a cut or an input that breaks a
# parser, few enough for the whole suite's time; no deadline (the machine may be busy).
# HYPOTHESIS_PROFILE=thorough searches 20 times longer.
hypothesis.settings.register_profile("playground", max_examples=100, deadline=None)
hypothesis.settings.register_profile("thorough", max_examples=2000, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "playground"))
