"""Browser tests: the app and the fake Elumenta server as real processes, Debian's Chromium.

No browser download is possible here, so Playwright launches ``/usr/bin/chromium``. On CI
(``CI=true``) a missing Chromium fails the run; elsewhere the browser tests are skipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 30.0
FAKE_API_KEY = "nb_e2e_key_9f3c"

expect.set_options(timeout=15_000)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {STARTUP_TIMEOUT_S:g} s")


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass(frozen=True)
class FakeServer:
    """The out-of-process fake Elumenta server and its HTTP control endpoints."""

    root: str

    @property
    def base_url(self) -> str:
        """The Elumenta API root the app is pointed at."""
        return f"{self.root}/api/v2"

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.root}/_fake/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def script(self, model: str, **fields: Any) -> None:
        """Make ``model`` answer per the ModelScript ``fields`` (``"*"``: every model)."""
        self._post("script", {"model": model, **fields})

    def reset(self) -> None:
        """Scripts, recorded requests, balance and quota back to their defaults."""
        self._post("reset", {})
        self._post("state", {"api_key": FAKE_API_KEY})

    def requests(self) -> list[dict[str, Any]]:
        """Every API request the fake received since the last reset."""
        with urllib.request.urlopen(f"{self.root}/_fake/requests", timeout=5) as response:
            return list(json.load(response))


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
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    """``python -m tests.fake_elumenta`` on a free port, for the browser tests."""
    logs = tmp_path_factory.mktemp("fake-logs")
    port = _free_port()
    log = logs / "fake.log"
    process = _start(
        [
            sys.executable,
            "-m",
            "tests.fake_elumenta",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--api-key",
            FAKE_API_KEY,
        ],
        dict(os.environ),
        log,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/_fake/state", process, log)
        yield FakeServer(f"http://127.0.0.1:{port}")
    finally:
        _stop(process)


@pytest.fixture(scope="package")
def app_url(fake_server: FakeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` pointed at the fake, with a throw-away data directory."""
    data_dir = tmp_path_factory.mktemp("e2e-data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYGROUND_", "OPENAI_"))}
    env.update(
        ELUMENTA_BASE_URL=fake_server.base_url,
        ELUMENTA_API_KEY=FAKE_API_KEY,
        PLAYGROUND_DATA_DIR=str(data_dir),
        PLAYGROUND_MAX_RETRIES="0",
    )
    log = data_dir / "streamlit.log"
    process = _start(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
        ],
        env,
        log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/_stcore/health", process, log)
        yield url
    finally:
        _stop(process)
        if "Traceback" in log.read_text(errors="replace"):
            print(log.read_text(errors="replace")[-5000:])


@pytest.fixture
def fake(fake_server: FakeServer) -> FakeServer:
    """The fake server, reset before the test."""
    fake_server.reset()
    return fake_server


@pytest.fixture
def app_page(chromium: Browser, app_url: str, fake: FakeServer) -> Iterator[Page]:
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
