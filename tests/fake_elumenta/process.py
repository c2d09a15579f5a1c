"""The fake server as a separate process, scripted over its HTTP control endpoints.

Browser tests (the app runs in another process) and benchmarks (the server must not share
the client's GIL) use this; in-process tests use :class:`~tests.fake_elumenta.FakeElumenta`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.fake_elumenta.state import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parents[2]


def playground_environment(**settings: str) -> dict[str, str]:
    """The environment of a ``python -m playground`` child run from anywhere: this checkout
    importable, ``settings`` set, the developer's own ``PLAYGROUND_*``, ``ELUMENTA_*`` and
    ``OPENAI_*`` variables left out."""
    prefixes = ("PLAYGROUND_", "ELUMENTA_", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(PYTHONPATH=str(ROOT), **settings)
    return env


def run_playground(
    *args: str, database_url: str, data_dir: Path
) -> subprocess.CompletedProcess[str]:
    """``python -m playground <args>`` as an operator runs it, on ``database_url`` with data
    in ``data_dir``; waits for it (at most two minutes) and returns its exit code and output."""
    env = playground_environment(
        PLAYGROUND_DATABASE_URL=database_url, PLAYGROUND_DATA_DIR=str(data_dir)
    )
    return subprocess.run(
        [sys.executable, "-m", "playground", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    """``app`` (an ASGI app) served by uvicorn on a free port in a daemon thread: its base
    URL, until the block ends."""
    import uvicorn  # the fake's own process does not need it

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Wait until ``url`` answers 200; ``RuntimeError`` if the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:g} s")


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate ``process`` politely, then kill it."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class ChildProcess:
    """A child process that a ``with`` block starts on entry and stops on exit."""

    def start(self) -> Self:
        """Start the process and wait until it is ready (a service: until it answers)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServiceProcess(ChildProcess):
    """A child process serving HTTP on a free port; a context manager that stops it."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (to read its CPU and memory)."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop the process."""
        if self._process is not None:
            stop_process(self._process)
            self._process = None


class FakeServerProcess(ServiceProcess):
    """``python -m tests.fake_elumenta`` on a free port; use as a context manager."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, log_path: Path | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.root = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path

    @property
    def base_url(self) -> str:
        """The Elumenta API root to point a client at."""
        return f"{self.root}/api/v2"

    def start(self) -> Self:
        """Start the server and wait until it answers."""
        cmd = [sys.executable, "-m", "tests.fake_elumenta", "--port", str(self.port)]
        cmd += ["--log-level", "warning", "--api-key", self.api_key]
        log = self._log_path.open("wb") if self._log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        finally:
            if self._log_path:
                log.close()  # type: ignore[union-attr]
        wait_http(f"{self.root}/_fake/state", self._process)
        return self

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.root}/_fake/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def script(self, model: str, fields: dict[str, Any]) -> None:
        """Make ``model`` answer per these ``ModelScript`` fields (``"*"``: every model)."""
        self._call("script", {"model": model, **fields})

    def reset(self) -> None:
        """Scripts, recorded requests, balance and quota back to their defaults."""
        self._call("reset", {})
        self._call("state", {"api_key": self.api_key})

    def set_state(self, **fields: Any) -> None:
        """Change account settings (balance, plan, quota_hour, …)."""
        self._call("state", fields)

    def account(self) -> dict[str, Any]:
        """The account as it is now (balance, plan, quota_hour, …)."""
        return dict(self._call("state"))

    def requests(self) -> list[dict[str, Any]]:
        """Every API request received since the last reset."""
        return list(self._call("requests"))
