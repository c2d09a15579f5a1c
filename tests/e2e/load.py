"""Many signed-in users at once: each in its own browser session runs six-model comparisons.

Driven by the load benchmark (``benchmarks/bench_load.py``), which reports errors and leaks
between users besides the timings. One Chromium, one context per user (its own session and
proxy identity header), driven with Playwright's async API so every user acts at the same
time. Each prompt starts with a marker unique to the user and round; the fake server's
default answer echoes the prompt, so a marker showing up in anyone else's page would be a
leak between sessions.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.app_driver import RUN_BUTTON
from tests.e2e.app_process import CHROMIUM, CHROMIUM_ARGS

MODELS = (
    "gpt-5-nano",
    "claude-haiku-4.5",
    "gemini-2.5-flash",
    "deepseek-v3",
    "gpt-5",
    "grok-4-fast",
)
# Where to keep a screenshot of a user whose round failed (test-artifacts/ when it exists).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = SCREENSHOTS if SCREENSHOTS.is_dir() else None
RUN_ATTEMPTS = 3
CLICK_WAIT_S = 60
MARKER = re.compile(r"mk-(user\d+)-r\d+-x")
DONE_JS = """(n) => [...Array(n).keys()].every((i) => {
  const box = document.querySelector('.st-key-column-' + i);
  return box && box.innerText.includes('Done');
})"""
ANSWER_JS = """([marker, n]) => [...Array(n).keys()].some((i) => {
  const box = document.querySelector('.st-key-answer-' + i);
  return box && box.textContent.includes(marker);
})"""


@dataclass
class UserReport:
    """What one simulated user did and saw."""

    email: str
    markers: list[str] = field(default_factory=list)
    ui_ttft_s: list[float] = field(default_factory=list)
    run_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    repeated_clicks: int = 0
    foreign_markers_seen: list[str] = field(default_factory=list)


@dataclass
class ProcessSample:
    """CPU seconds and resident memory of the app process at one moment."""

    at_s: float
    cpu_s: float
    rss_mb: float


def sample_process(pid: int, started: float) -> ProcessSample:
    """Read CPU time and RSS of ``pid`` from /proc (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(stat[11]) + int(stat[12])) / ticks
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return ProcessSample(time.monotonic() - started, cpu_s, rss_kb / 1024)


class StartLine:
    """Every user opens the page first; rounds start together once all are in (or failed)."""

    def __init__(self, users: int, duration_s: float) -> None:
        self._waiting = users
        self._duration_s = duration_s
        self._open = asyncio.Event()
        self.deadline = float("inf")
        self.opened_at = 0.0

    def arrive(self) -> None:
        """One user is ready (or gave up); the last one starts the clock."""
        self._waiting -= 1
        if self._waiting == 0 and not self._open.is_set():
            self.opened_at = time.monotonic()
            self.deadline = self.opened_at + self._duration_s
            self._open.set()

    async def wait(self) -> None:
        """Until every user has arrived."""
        await self._open.wait()


async def _user(
    browser: Browser, url: str, email: str, rounds: int, start: StartLine, timeout_s: float
) -> UserReport:
    report = UserReport(email)
    arrived = False
    context = await browser.new_context(
        viewport={"width": 1440, "height": 1000}, extra_http_headers={"X-Forwarded-Email": email}
    )
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        # The models link preselects the six models, as a bookmarked model set would.
        await page.goto(f"{url}/?models={','.join(MODELS)}")
        await page.get_by_role("heading", name="Compare models").wait_for()
        start.arrive()
        arrived = True
        await start.wait()
        for round_index in range(rounds):
            if time.monotonic() > start.deadline:
                break
            marker = f"mk-{email.split('@')[0]}-r{round_index}-x"
            report.markers.append(marker)
            await page.get_by_label("Prompt", exact=True).fill(f"{marker} tell me something")
            started = time.perf_counter()
            await _press_run(page, marker, report)
            report.ui_ttft_s.append(time.perf_counter() - started)
            await page.wait_for_function(DONE_JS, arg=len(MODELS), polling=100)
            report.run_s.append(time.perf_counter() - started)
            # The page redraws once more when the run ends; the next round waits for it.
            await page.get_by_role("button", name="Re-run").first.wait_for()
            errors = await page.locator("[data-testid=stAlert]").all_inner_texts()
            report.errors += [e for e in errors if "error" in e.lower() or "fail" in e.lower()]
            report.foreign_markers_seen += _foreign(await page.content(), email)
    except Exception as exc:  # noqa: BLE001  (a user's failure is a finding, not a crash)
        report.errors.append(f"{type(exc).__name__}: {exc}"[:500])
        if SCREENSHOTS is not None:
            await page.screenshot(path=SCREENSHOTS / f"load-{email.split('@')[0]}.png")
    finally:
        if not arrived:
            start.arrive()
        await context.close()
    return report


async def _press_run(page: Page, marker: str, report: UserReport) -> None:
    """Press Run and wait for the first answer text carrying ``marker``.

    On a CPU-starved machine a click that lands while the page is still redrawing can be
    dropped by the browser side; a person would press again, and so does this (counted).
    """
    for attempt in range(RUN_ATTEMPTS):
        await page.get_by_role("button", name=RUN_BUTTON).click()
        try:
            await page.wait_for_function(
                ANSWER_JS, arg=[marker, len(MODELS)], polling=20, timeout=CLICK_WAIT_S * 1000
            )
            return
        except PlaywrightTimeoutError:
            if attempt == RUN_ATTEMPTS - 1 or await _run_started(page):
                raise
            report.repeated_clicks += 1


async def _run_started(page: Page) -> bool:
    # A run that started (but shows no text yet) has columns that are not all Done.
    return not await page.evaluate(DONE_JS, len(MODELS))


def _foreign(html: str, email: str) -> list[str]:
    """Markers of other users found in this user's page."""
    own = email.split("@")[0]
    return [m.group(0) for m in MARKER.finditer(html) if m.group(1) != own]


@dataclass(frozen=True)
class LoadRun:
    """Every user's report, and when (``time.monotonic()``) all pages were open."""

    reports: list[UserReport]
    opened_at: float


async def _run(
    url: str, emails: list[str], rounds: int, duration_s: float, timeout_s: float
) -> LoadRun:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            start = StartLine(len(emails), duration_s)
            reports = await asyncio.gather(
                *(_user(browser, url, e, rounds, start, timeout_s) for e in emails)
            )
            return LoadRun(list(reports), start.opened_at)
        finally:
            await browser.close()


def run_load(
    url: str, users: int, *, rounds: int, duration_s: float, timeout_s: float = 120.0
) -> LoadRun:
    """``users`` users (``user1@load.test``…) each running up to ``rounds`` comparisons of
    the six :data:`MODELS`; once every page is open they start together, and no new round
    starts ``duration_s`` after that."""
    emails = [f"user{i + 1}@load.test" for i in range(users)]
    # Its own thread: the browser tests' sync Playwright keeps a loop on this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _run(url, emails, rounds, duration_s, timeout_s)).result()
