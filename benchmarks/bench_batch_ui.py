"""Batch UI benchmark (issue 5): does the Evaluate page stay responsive while a batch runs?

The fake Elumenta server and ``streamlit run app.py`` run as processes, Chromium drives the
Evaluate page. The page's form starts the batch of ``bench_batch.py`` (500 rows × 4 models,
concurrency 8, log-normal times to first token) in the app process, exactly as a user would.
Prints:

(a) how often the progress display changes, with the page left alone and while clicking
    (the panel is a fragment rerun every second, so 1 update/s is the most it can do; a
    full rerun of the page holds the fragment back);
(b) click-to-visible-change latencies while the batch runs, median and p95:
    * in the browser alone: switching a tab, opening an expander;
    * with a rerun of the page script in the app: the budget's "+"/"-" (its warning is drawn
      halfway down the script) and "Next round" on the Blind vote tab (drawn at its end);
(c) the same clicks with no batch running (after it finished: same data), and the ratio;
(d) the batch's wall time (first request sent to last answer) against the ideal, as in
    ``bench_batch.py``, and the app's peak RSS.

Usage: ``python benchmarks/bench_batch_ui.py [--rows 500] [--mean-ms 150] [--clicks 20]
[--database-url postgresql+psycopg://…/db]``. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from benchmarks._common import (
    app_in_browser,
    describe,
    exit_on_sigterm,
    fresh_database,
    install_probe,
    percentile,
    probe,
)
from benchmarks.bench_batch import (
    MODELS,
    TEMPLATE,
    random_latencies,
    save_inputs,
    wall_against_ideal,
)
from playground.catalog import load_catalog
from playground.store import open_store
from playground.store.eval_repository import CellState, batch_cells
from playground.store.models import Result
from tests.e2e.app_driver import pick_options

CONCURRENCY = 8  # the Evaluate page's default
WATCH_S = 10.0
# Re-scripting the fake costs CPU on both ends (~0.35 of a core every 10 ms); each model
# gets ~13 requests/s here, so 40 ms still gives nearly every request its own draw.
RESCRIPT_INTERVAL_S = 0.04
PAUSE_MS = 250  # between clicks: a user, not a click storm

# Times are epoch milliseconds on the browser's clock.
PROGRESS_JS = """
() => {
  const watch = {updates: [], last: null};
  window.__progress = watch;
  new MutationObserver(() => {
    const bar = document.querySelector('[data-testid=stProgress]');
    const text = bar ? bar.innerText : null;
    if (text === null || text === watch.last) return;
    watch.last = text;
    watch.updates.push([performance.timeOrigin + performance.now(), text]);
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def tab(name: str) -> str:
    """JS: the tab button called ``name``."""
    return (
        f"[...document.querySelectorAll('[role=tab]')].find(t => t.innerText.trim() === {name!r})"
    )


def shown(element: str) -> str:
    """JS: whether ``element`` (a JS expression, may be undefined) takes space on screen."""
    return f"(({element}) || {{offsetHeight: 0}}).offsetHeight > 0"


def button(label: str) -> str:
    """JS: the button labelled ``label`` (after its icon's name, if it has an icon)."""
    return (
        "[...document.querySelectorAll('button')]"
        f".find((b) => b.textContent.trim().endsWith({label!r}))"
    )


PANEL = "document.querySelector('[role=tabpanel]')"  # only the open tab's panel has the role
PROGRESS = "document.querySelector('[data-testid=stProgress]')"
TEMPLATE_NAME = "document.querySelector('input[aria-label=\"Template name\"]')"
EXPANDER = "document.querySelector('[data-testid=stExpander] details')"
EXPANDER_TITLE = f"{EXPANDER}.querySelector('summary')"
# Opening animates the height; the first frame in which it grew is the browser's answer.
EXPANDER_GREW = f"{EXPANDER}.offsetHeight > window.__before"
BUDGET = (
    "[...document.querySelectorAll('[data-testid=stNumberInput]')]"
    ".find(e => e.innerText.includes('Budget cap'))"
)
BUDGET_UP = f"{BUDGET}.querySelector('[data-testid=stNumberInputStepUp]')"
BUDGET_DOWN = f"{BUDGET}.querySelector('[data-testid=stNumberInputStepDown]')"
BUDGET_WARNING = (
    "[...document.querySelectorAll('[data-testid=stAlert]')]"
    ".some(a => a.innerText.includes('stops it early'))"
)
NEXT_ROUND = button("Next round")
NEW_ROUND = f"{PANEL}.innerText !== window.__before && {PANEL}.innerText.includes('Answer A')"

Samples = dict[str, list[tuple[float, float]]]
"""Per kind of click: (epoch milliseconds just before the click, click-to-change ms)."""


def fill_batch_form(page: Page, url: str, rows: int) -> None:
    """Open Evaluate's Run batch tab and choose the template, the dataset and the models."""
    page.goto(url)
    page.get_by_role("link", name="Evaluate").click()
    expect(page.get_by_role("heading", name="Evaluate")).to_be_visible()
    page.get_by_role("tab", name="Run batch").click()
    pick_options(page, "Template versions", [f"{TEMPLATE} v1"])
    pick_options(page, "Models", [load_catalog().name_of(m) for m in MODELS])
    expect(page.get_by_text(f"{rows * len(MODELS)} requests")).to_be_visible()
    install_probe(page)
    page.evaluate(PROGRESS_JS)


def select_batch(page: Page, tab_name: str, batch_id: int, attempts: int = 5) -> None:
    """Show batch ``batch_id`` on tab ``tab_name`` (Results, Blind vote), whatever its
    "Batch" box holds (the page preselects the batch just started).

    A fragment rerun landing while the dropdown is open closes it, so the pick is retried.
    """
    page.get_by_role("tab", name=tab_name).click()
    panel = page.get_by_role("tabpanel", name=tab_name)
    selectbox = panel.get_by_test_id("stSelectbox").filter(has_text="Batch")
    for _ in range(attempts):
        selectbox.locator("input").click()
        try:
            page.get_by_role("option", name=re.compile(rf"^#{batch_id} ")).click(timeout=2000)
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            continue
        expect(selectbox.locator("input")).to_have_value(re.compile(rf"^#{batch_id} "))
        return
    raise RuntimeError(f"could not pick batch #{batch_id} on the {tab_name} tab")


def batch_status(page: Page) -> str:
    """The status the progress bar shows ("Batch #1 running: …" -> "running"), "" if none."""
    text = str(page.evaluate(f"({PROGRESS} || {{}}).innerText || ''"))
    found = re.match(r"Batch #\d+ (\w+):", text)
    return found.group(1) if found else ""


def click_round(page: Page, samples: Samples) -> None:
    """Six timed clicks: three tab switches, opening the expander, "Next round", the budget."""

    def timed(kind: str, target: str, condition: str) -> None:
        clicked = time.time() * 1000
        samples.setdefault(kind, []).append((clicked, probe(page, target, condition)))
        page.wait_for_timeout(PAUSE_MS)

    timed("tab", tab("Templates"), shown(TEMPLATE_NAME))
    if page.evaluate(f"{EXPANDER}.open"):  # closing is not timed: it ends an animation
        page.evaluate(f"{EXPANDER_TITLE}.click()")
        page.wait_for_function(f"!{EXPANDER}.open")
    page.evaluate(f"window.__before = {EXPANDER}.offsetHeight")
    timed("expander", EXPANDER_TITLE, EXPANDER_GREW)
    timed("tab", tab("Blind vote"), shown(NEXT_ROUND))
    page.evaluate(f"window.__before = {PANEL}.innerText")
    timed("next_round", NEXT_ROUND, NEW_ROUND)
    timed("tab", tab("Run batch"), shown(BUDGET))
    # 0 -> 10 tokens shows the budget warning, 10 -> 0 removes it.
    warned = page.evaluate(BUDGET_WARNING)
    step, condition = (BUDGET_DOWN, f"!{BUDGET_WARNING}") if warned else (BUDGET_UP, BUDGET_WARNING)
    timed("budget", step, condition)


def click_rounds(page: Page, rounds: int, until: Callable[[], bool]) -> Samples:
    """Up to ``rounds`` click rounds, stopping early once ``until()`` holds."""
    samples: Samples = {}
    for _ in range(rounds):
        if until():
            break
        click_round(page, samples)
    return samples


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (``VmHWM``) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def batch_wall_s(url: str, batch_id: int) -> tuple[float, list[CellState]]:
    """The batch's cells, and its wall time: first request started to last answer finished."""
    store = open_store(url)
    with store.session() as session, session.begin():
        cells = batch_cells(session, batch_id)
        ids = [c.result_id for c in cells if c.result_id is not None]
        first, last = session.execute(
            sa.select(sa.func.min(Result.started_utc), sa.func.max(Result.finished_utc)).where(
                Result.id.in_(ids)
            )
        ).one()
    store.close()
    assert first is not None and last is not None, "the batch recorded no answers"
    return (last - first).total_seconds(), cells


def progress_updates(updates: list[tuple[float, str]], start: float, end: float) -> str:
    """Updates per second of the progress text between two browser times, and the gaps."""
    times = [t for t, _ in updates if start <= t < end]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        return f"{len(times)} update(s)"
    rate = len(gaps) / ((times[-1] - times[0]) / 1000)
    return f"{rate:.2f} updates/s, gap between updates {describe(gaps)} (n={len(gaps)})"


def report(busy: Samples, idle: Samples, finished: float) -> None:
    """Print the click latencies while the batch ran (clicked before ``finished``) and
    idle, and their ratio."""
    labels = {
        "tab": "switch tab (browser only)",
        "expander": "open an expander (browser only)",
        "budget": "budget +/- (rerun; the change is drawn mid-script)",
        "next_round": "Next round (rerun; the change is drawn at the end)",
    }
    print("(b) click -> visible change while the batch runs; (c) the same with no batch running:")
    for kind, label in labels.items():
        during = [ms for clicked, ms in busy.get(kind, []) if clicked < finished]
        after = [ms for _, ms in idle.get(kind, [])]
        if not during or not after:
            continue
        ratio = statistics.median(during) / statistics.median(after)
        p95_ratio = percentile(during, 0.95) / percentile(after, 0.95)
        print(f"    {label}:")
        print(f"        during {describe(during)} (n={len(during)})")
        print(f"        idle   {describe(after)} (n={len(after)})")
        print(f"        during/idle: median x{ratio:.2f}, p95 x{p95_ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--mean-ms", type=float, default=150.0)
    parser.add_argument("--clicks", type=int, default=20, help="click rounds per phase")
    parser.add_argument(
        "--database-url",
        default=None,
        help="the app's history: PostgreSQL URL (a throwaway schema); default: SQLite",
    )
    args = parser.parse_args()
    exit_on_sigterm()
    with fresh_database(args.database_url, "bench_batch_ui") as url, app_in_browser(url) as app:
        store = open_store(url)
        save_inputs(store, args.rows)
        store.close()
        page = app.browser.new_page(viewport={"width": 1440, "height": 1100})
        fill_batch_form(page, app.app.url, args.rows)
        with random_latencies(app.fake, args.mean_ms, RESCRIPT_INTERVAL_S):
            start_ms = probe(page, button("Start batch"), shown(PROGRESS))
            batch_id = int(page.evaluate(f"{PROGRESS}.innerText").split("#")[1].split()[0])
            for tab_name in ("Results", "Blind vote"):  # a user watching the batch's answers
                select_batch(page, tab_name, batch_id)
            page.get_by_role("tab", name="Run batch").click()
            # A full rerun holds back the fragment's updates: watch from when none runs.
            expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
            watched_from = float(page.evaluate("performance.timeOrigin + performance.now()"))
            page.wait_for_timeout(WATCH_S * 1000)
            clicks_from = float(page.evaluate("performance.timeOrigin + performance.now()"))
            busy = click_rounds(
                page, args.clicks, lambda: batch_status(page) not in ("pending", "running")
            )
            page.wait_for_function(f"{PROGRESS}.innerText.includes(' completed:')", timeout=600_000)
        updates = [(float(t), str(text)) for t, text in page.evaluate("window.__progress.updates")]
        idle = click_rounds(page, args.clicks, lambda: False)
        peak_mb = peak_rss_mb(app.app._process.pid)  # type: ignore[union-attr]  # no public pid
        wall, cells = batch_wall_s(url, batch_id)
    completed = sum(c.status == "completed" for c in cells)
    print(
        f"setup: {args.rows} rows × {len(MODELS)} models, concurrency {CONCURRENCY}, "
        f"log-normal TTFT mean {args.mean_ms:g} ms, history on {url.split(':')[0]}, "
        f"{os.cpu_count()} CPUs shared by Chromium, the app, the fake and this script"
    )
    finished = next(t for t, text in updates if " completed:" in text)
    print(
        f"(a) progress display (a fragment rerun every second: at most 1 update/s): "
        f"page left alone {progress_updates(updates, watched_from, clicks_from)}; "
        f"while clicking {progress_updates(updates, clicks_from, finished)}"
    )
    print(f"    Start batch click -> progress bar shown: {start_ms:.0f} ms")
    report(busy, idle, finished)
    print(
        f"(d) batch: {completed}/{len(cells)} completed; "
        f"{wall_against_ideal(cells, CONCURRENCY, wall)}"
    )
    print(f"    app process peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
