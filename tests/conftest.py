"""Shared fixtures: one fake Elumenta server per test session, reset before each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground import services
from tests.fake_elumenta import FakeElumenta


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


# History-store fixtures (store_url on SQLite and PostgreSQL, store, recorder).
pytest_plugins = ["tests.store_fixtures"]


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
    services.reset()
    yield tmp_path
    services.reset()
