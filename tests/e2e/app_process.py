"""The app as a real process (``streamlit run serve.py``) and the Chromium that drives it.

Browser tests and the UI benchmark share these, so both start the app the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from tests.fake_elumenta.process import FakeServerProcess, ServiceProcess, wait_http

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def app_environment(fake: FakeServerProcess, data_dir: Path, **extra: str) -> dict[str, str]:
    """The app's environment: Elumenta is ``fake``, history goes to ``data_dir``, no retries.

    The developer's own ``PLAYGROUND_*`` and ``OPENAI_*`` settings are left out.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYGROUND_", "OPENAI_"))}
    env.update(
        ELUMENTA_BASE_URL=fake.base_url,
        ELUMENTA_API_KEY=fake.api_key,
        PLAYGROUND_DATA_DIR=str(data_dir),
        PLAYGROUND_MAX_RETRIES="0",
        **extra,
    )
    return env


class AppProcess(ServiceProcess):
    """``streamlit run serve.py`` (or another ``script``) on a free port, logging to
    ``log_path``; a context manager."""

    def __init__(self, env: dict[str, str], log_path: Path, *, script: str = "serve.py") -> None:
        super().__init__()
        self.env = env
        self.log_path = log_path
        self.script = script
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the app and wait for its health check; ``RuntimeError`` with the log if not."""
        cmd = [sys.executable, "-m", "streamlit", "run", self.script]
        cmd += ["--server.port", str(self.port), "--server.headless", "true"]
        cmd += ["--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
        with self.log_path.open("ab") as log:  # a restart's output follows the first run's
            self._process = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_http(f"{self.url}/_stcore/health", self._process)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from exc
        return self

    def restart(self) -> Self:
        """Stop the app and start it again on the same port (and environment)."""
        self.stop()
        return self.start()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the app's output."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def hooked_app_url(
    fake: FakeServerProcess, workdir: Path, hook: str, **extra: str
) -> Iterator[str]:
    """The URL of the app run with ``hook`` (Python source; a ``sitecustomize`` on its
    ``PYTHONPATH``, so it runs at the start of the process) to force a race, its data
    under ``workdir``. The app's log must show no traceback when it stops."""
    (workdir / "hook").mkdir()
    (workdir / "hook" / "sitecustomize.py").write_text(textwrap.dedent(hook))
    env = app_environment(fake, workdir, PYTHONPATH=str(workdir / "hook"), **extra)
    with AppProcess(env, workdir / "streamlit.log") as app:
        yield app.url
        assert "Traceback" not in app.log_tail(10**9), app.log_tail(5000)
