"""What the benchmarks share: percentiles, a fresh database, and the app driven by Chromium.

Click timing works like this: :data:`PROBE_JS` listens (capture phase) for clicks; when
the clicked element is inside the probe's target, it polls a JS condition once per
animation frame and stores the milliseconds from the click's input event (when the
browser received it) until the frame in which the condition held (and the click's epoch
milliseconds, ``window.__probe.clicked``).
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy.engine import make_url

from tests.e2e.app_process import CHROMIUM, CHROMIUM_ARGS, AppProcess, app_environment
from tests.fake_elumenta.process import FakeServerProcess

# The app's first run (pandas, Altair, SQLAlchemy imports, migrations) can take longer than
# Playwright's default 5 s on a loaded machine.
EXPECT_TIMEOUT_MS = 20_000

PROBE_JS = """
() => {
  const find = (expression) => new Function('return (' + expression + ')')();
  const now = () => performance.timeOrigin + performance.now();
  window.__probe = null;
  document.addEventListener('click', (event) => {
    const probe = window.__probe;
    if (!probe || probe.result !== null || !find(probe.target).contains(event.target)) return;
    const clicked = performance.timeOrigin + event.timeStamp;
    probe.clicked = clicked;
    const poll = () => {
      if (find(probe.condition)) probe.result = now() - clicked;
      else requestAnimationFrame(poll);
    };
    requestAnimationFrame(poll);
  }, true);
}
"""


def exit_on_sigterm() -> None:
    """Make SIGTERM (``timeout``, a CI limit) exit through ``finally`` blocks, so the app and
    fake processes stop and a throwaway PostgreSQL schema is dropped."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linearly interpolated."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def describe(values: list[float]) -> str:
    """``median …, p95 …, max …`` of millisecond figures."""
    return (
        f"median {statistics.median(values):.0f} ms, p95 {percentile(values, 0.95):.0f} ms, "
        f"max {max(values):.0f} ms"
    )


def install_probe(page: Page) -> None:
    """Make :func:`probe` work on ``page`` (again after every navigation)."""
    page.evaluate(PROBE_JS)


UNDELIVERED_CLICKS: list[str] = []
"""The targets of clicks the browser made no click event of (see :func:`probe`)."""


def probe(page: Page, target: str, condition: str, timeout_ms: float = 30_000) -> float:
    """Click ``target`` for real and return the milliseconds from the click's input event
    until ``condition`` held in an animation frame (both are JS expressions).

    A press whose target moved or was redrawn between pointer down and up makes no click
    event: the page never saw it, so it is pressed again (up to twice more; each noted in
    :data:`UNDELIVERED_CLICKS`). A click the page saw that never meets ``condition`` is a
    finding: ``TimeoutError`` after ``timeout_ms``.
    """
    page.evaluate(
        "([target, condition]) => { window.__probe = {target, condition, result: null}; }",
        [target, condition],
    )
    for attempt in range(3):
        page.evaluate_handle(target).as_element().click()  # type: ignore[union-attr]
        try:
            page.wait_for_function("window.__probe.clicked !== undefined", timeout=2_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
            UNDELIVERED_CLICKS.append(target)
    page.wait_for_function("window.__probe.result !== null", timeout=timeout_ms)
    return float(page.evaluate("window.__probe.result"))


@contextmanager
def fresh_database(url: str | None, name: str) -> Iterator[str]:
    """The URL of an empty database for one benchmark run, removed afterwards.

    ``None``: a temporary SQLite file. A PostgreSQL URL: a new schema ``<name>_<pid>`` in
    that database (the URL returned puts it first on ``search_path``), dropped at the end,
    so tests and other benchmarks can share the database. A SQLite URL: that file, which
    must not exist yet (an old history would answer the batch from its response cache).
    """
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/{name}.sqlite3"
        return
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and Path(parsed.database).exists():
            raise SystemExit(f"{parsed.database} exists; give a new file or a PostgreSQL URL")
        yield url
        return
    schema = f"{name}_{os.getpid()}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        scoped = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@dataclass(frozen=True)
class AppInBrowser:
    """The fake Elumenta server and the app as processes, and a Chromium to drive the app."""

    data_dir: Path
    database_url: str
    fake: FakeServerProcess
    app: AppProcess
    browser: Browser


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright, closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def app_in_browser(
    database_url: str | None = None,
    *,
    script: str = "serve.py",
    browser: Browser | None = None,
    **env: str,
) -> Iterator[AppInBrowser]:
    """Start the fake, ``streamlit run <script>`` (the app; history at ``database_url``,
    default a SQLite file in a temporary data directory; ``env``: more settings) and
    Chromium (unless ``browser`` is given: several apps can share one); stop them
    afterwards.

    Logs (``fake.log``, ``streamlit.log``) go to the data directory.
    """
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        data = Path(tmp)
        url = database_url or f"sqlite:///{data / 'history.sqlite3'}"
        fake = stack.enter_context(FakeServerProcess(log_path=data / "fake.log"))
        environment = app_environment(fake, data, PLAYGROUND_DATABASE_URL=url, **env)
        app = stack.enter_context(AppProcess(environment, data / "streamlit.log", script=script))
        if browser is None:
            browser = stack.enter_context(chromium())
        yield AppInBrowser(data, url, fake, app, browser)
