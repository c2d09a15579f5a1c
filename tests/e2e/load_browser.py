"""The load's users in Chromium: one browser context (its own session and proxy identity
header) per user, driven with Playwright's async API so every user acts at the same time.

Heavy: 20 tabs saturate a 2-core machine, so this runs only in the load benchmark
(``bench_load.py --client browser``); the suite uses the WebSocket driver (``load_ws.py``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.app_driver import RUN_BUTTON
from tests.e2e.app_process import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.hosted import proxy_headers
from tests.e2e.load import (
    MODELS,
    LoadRun,
    StartLine,
    UserReport,
    foreign_markers,
    marker,
    run_in_own_loop,
    user_emails,
)

# Where to keep a screenshot of a user whose round failed (test-artifacts/ when it exists).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = SCREENSHOTS if SCREENSHOTS.is_dir() else None
RUN_ATTEMPTS = 3
CLICK_WAIT_S = 60
DONE_JS = """(n) => [...Array(n).keys()].every((i) => {
  const box = document.querySelector('.st-key-column-' + i);
  return box && box.innerText.includes('Done');
})"""
ANSWER_JS = """([marker, n]) => [...Array(n).keys()].some((i) => {
  const box = document.querySelector('.st-key-answer-' + i)
    ?? document.querySelector('.st-key-column-' + i + ' .live-column');
  return box && box.textContent.includes(marker);
})"""


async def _user(
    browser: Browser, url: str, email: str, start: StartLine, timeout_s: float
) -> UserReport:
    report = UserReport(email)
    arrived = False
    context = await browser.new_context(
        viewport={"width": 1440, "height": 1000}, extra_http_headers=proxy_headers(email)
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
        round_index = 0
        while time.monotonic() < start.deadline:
            prompt_marker = marker(email, round_index)
            round_index += 1
            report.markers.append(prompt_marker)
            await page.get_by_label("Prompt", exact=True).fill(f"{prompt_marker} tell me something")
            started = time.perf_counter()
            await _press_run(page, prompt_marker, report)
            report.ui_ttft_s.append(time.perf_counter() - started)
            if report.first_round_ttfts is None:
                report.first_round_ttfts = len(report.ui_ttft_s)
            await page.wait_for_function(DONE_JS, arg=len(MODELS), polling=100)
            report.run_s.append(time.perf_counter() - started)
            # The page redraws once more when the run ends; the next round waits for it.
            await page.get_by_role("button", name="Re-run").first.wait_for()
            errors = await page.locator("[data-testid=stAlert]").all_inner_texts()
            report.errors += [e for e in errors if "error" in e.lower() or "fail" in e.lower()]
            report.foreign_markers_seen += foreign_markers(await page.content(), email)
            await start.think()
    except Exception as exc:  # noqa: BLE001  (a user's failure is a finding, not a crash)
        report.errors.append(f"{type(exc).__name__}: {exc}"[:500])
        if SCREENSHOTS is not None:
            await page.screenshot(path=SCREENSHOTS / f"load-{email.split('@')[0]}.png")
    finally:
        if not arrived:
            start.arrive()
        await context.close()
    return report


async def _press_run(page: Page, prompt_marker: str, report: UserReport) -> None:
    """Press Run and wait for the first answer text carrying ``prompt_marker``.

    On a CPU-starved machine a click that lands while the page is still redrawing can be
    dropped by the browser side; a person would press again, and so does this (counted).
    """
    for attempt in range(RUN_ATTEMPTS):
        await page.get_by_role("button", name=RUN_BUTTON).click()
        try:
            await page.wait_for_function(
                ANSWER_JS,
                arg=[prompt_marker, len(MODELS)],
                polling=20,
                timeout=CLICK_WAIT_S * 1000,
            )
            return
        except PlaywrightTimeoutError:
            if attempt == RUN_ATTEMPTS - 1 or await _run_started(page):
                raise
            report.repeated_clicks += 1


async def _run_started(page: Page) -> bool:
    # A run that started (but shows no text yet) has columns that are not all Done.
    return not await page.evaluate(DONE_JS, len(MODELS))


async def _run(
    url: str, emails: list[str], duration_s: float, timeout_s: float, think_s: float
) -> LoadRun:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            start = StartLine(len(emails), duration_s, think_s)
            reports = await asyncio.gather(
                *(_user(browser, url, e, start, timeout_s) for e in emails)
            )
            return LoadRun(list(reports), start.opened_at, time.monotonic())
        finally:
            await browser.close()


def run_browser_load(
    url: str, users: int, *, duration_s: float, timeout_s: float = 120.0, think_s: float = 0.0
) -> LoadRun:
    """``users`` users (see :func:`~tests.e2e.load.user_emails`), each in a Chromium tab,
    running comparisons of the six :data:`~tests.e2e.load.MODELS`; once every page is open
    they start together, and no new round starts ``duration_s`` after that (``think_s``:
    the average pause between a user's rounds)."""
    return run_in_own_loop(_run(url, user_emails(users), duration_s, timeout_s, think_s))
