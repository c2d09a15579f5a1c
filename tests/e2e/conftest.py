"""Browser tests: the app and the fake Elumenta server as real processes, Debian's Chromium.

No browser download is possible here, so Playwright launches ``/usr/bin/chromium``. On CI
(``CI=true``) a missing Chromium fails the run; elsewhere the browser tests are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.app_process import CHROMIUM, CHROMIUM_ARGS, ROOT, AppProcess, app_environment
from tests.e2e.hosted import HostedApp, hosted_app_process
from tests.fake_elumenta.process import FakeServerProcess

ARTIFACTS = ROOT / "test-artifacts"
FAKE_API_KEY = "nb_e2e_key_9f3c"

expect.set_options(timeout=15_000)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (skipped off CI when it is not installed).

    Package-scoped: Playwright's sync API keeps an event loop on the main thread, which
    must be gone before the asyncio tests of other packages run.
    """
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServerProcess]:
    """``python -m tests.fake_elumenta`` on a free port, for the browser tests."""
    log = tmp_path_factory.mktemp("fake-logs") / "fake.log"
    server = FakeServerProcess(api_key=FAKE_API_KEY, log_path=log)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(f"{exc}\n{log.read_text(errors='replace')[-3000:]}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def app_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's throw-away data directory (its SQLite history lives here)."""
    return tmp_path_factory.mktemp("e2e-data")


@pytest.fixture(scope="package")
def app_url(fake_server: FakeServerProcess, app_data_dir: Path) -> Iterator[str]:
    """``streamlit run app.py`` pointed at the fake, with a throw-away data directory."""
    data_dir = app_data_dir
    app = AppProcess(app_environment(fake_server, data_dir), data_dir / "streamlit.log")
    try:
        app.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield app.url
    finally:
        app.stop()
        if "Traceback" in app.log_tail(10**9):
            print(app.log_tail(5000))


@pytest.fixture
def fake(fake_server: FakeServerProcess) -> FakeServerProcess:
    """The fake server, reset before the test."""
    fake_server.reset()
    return fake_server


@pytest.fixture
def app_page(chromium: Browser, app_url: str, fake: FakeServerProcess) -> Iterator[Page]:
    """A fresh browser tab (its own session) on the app's Compare page."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.goto(app_url)
    expect(tab.get_by_role("heading", name="Compare models")).to_be_visible()
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """``test-artifacts/`` (gitignored): screenshots of the pages under test."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def hosted_app(
    fake_server: FakeServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostedApp]:
    """The app in hosted (proxy sign-in) mode on a fresh PostgreSQL schema."""
    try:
        with hosted_app_process(fake_server, tmp_path_factory.mktemp("hosted-data")) as app:
            yield app
    except RuntimeError as exc:
        pytest.fail(str(exc))
