"""Evaluate with no key, in Chromium: the offline example runs, its results explain
themselves, and a blind round of demo answers names no model until the vote."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from playground.catalog import load_catalog
from tests.e2e.app_driver import click_table_cell
from tests.e2e.app_process import AppProcess
from tests.test_evaluation_cli import OFFLINE_PATTERN

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with no key at all (the demo provider) on a fresh, empty data directory."""
    data_dir = tmp_path_factory.mktemp("offline-data")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PLAYGROUND_", "OPENAI_", "ELUMENTA_"))
    }
    env.update(PLAYGROUND_DATA_DIR=str(data_dir), PLAYGROUND_DEMO_TIME_SCALE="0.1")
    app = AppProcess(env, data_dir / "streamlit.log")
    try:
        app.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield app.url
    finally:
        app.stop()


@pytest.fixture
def page(chromium: Browser, offline_app: str) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1500, "height": 950})
    tab = context.new_page()
    tab.goto(offline_app)
    expect(tab.get_by_role("heading", name="Compare models")).to_be_visible()
    try:
        yield tab
    finally:
        context.close()


def grid_text(page: Page, index: int) -> str:
    """The text of the ``index``-th table on the page (its accessible copy of the canvas)."""
    grid = page.get_by_test_id("stDataFrame").nth(index)
    expect(grid).to_be_visible()
    return grid.locator("table").inner_text()


def test_offline_evaluate_end_to_end(page: Page, artifacts: Path) -> None:
    page.get_by_role("link", name="Evaluate").click()
    expect(page.get_by_text("an example was added", exact=False)).to_be_visible()

    page.get_by_role("tab", name="Run batch").click()
    run = page.get_by_role("tabpanel", name="Run batch")
    expect(run.get_by_text("20 requests · up to 28 billing tokens")).to_be_visible()
    run.get_by_role("button", name="Start batch").click()
    expect(run.get_by_text(re.compile(r"Batch #1 completed: 20/20 done"))).to_be_visible(
        timeout=60_000
    )
    expect(run.get_by_text("ETA")).to_have_count(0)

    page.get_by_role("tab", name="Results").click()
    results = page.get_by_role("tabpanel", name="Results")
    matrix = grid_text(page, 0)
    assert "#1 I was charged twice" in matrix
    assert "GPT-5 Nano" in matrix and "gpt-5-nano" not in matrix
    reasons = grid_text(page, 1)
    assert "regex $must_match: Does not match /I can't/." in reasons
    assert "Not valid JSON" in reasons
    assert "100 % (51–100 %)" in grid_text(page, 2)
    page.screenshot(path=artifacts / "evaluate-results.png", full_page=True)

    # Selecting a matrix cell opens its answer: row 3's last column (Gemini 3 Pro). The
    # table is a canvas: a header row and data rows are about 35 px high each.
    box = page.get_by_test_id("stDataFrame").first.bounding_box()
    assert box is not None
    click_table_cell(page, box["x"] + box["width"] - 40, box["y"] + 35 + 2 * 35 + 17)
    expect(results.get_by_role("combobox", name="Answer")).to_have_value(
        re.compile(r"^#3 Please send .* · Gemini 3 Pro · PASS$")
    )
    expect(results.get_by_text("I can't help with that request.", exact=False)).to_be_visible()

    results.get_by_text("Only failing cells").click()
    expect(results.get_by_role("combobox", name="Answer")).to_have_value(
        re.compile(r"^#1 .* · Gemini 2\.5 Flash · FAIL$")
    )
    expect(results.get_by_text(re.compile(r"^✗ "))).to_be_visible()
    page.screenshot(path=artifacts / "evaluate-results-failing.png", full_page=True)

    page.get_by_role("tab", name="Blind vote").click()
    vote = page.get_by_role("tabpanel", name="Blind vote")
    vote.get_by_text("4", exact=True).click()  # answers per round
    vote.get_by_role("button", name="Next round").click()
    expect(vote.get_by_text("Answer D", exact=True)).to_be_visible()
    catalog = load_catalog()
    shown = vote.inner_text().casefold()
    for slug in OFFLINE_PATTERN:
        for name in (slug, catalog.name_of(slug)):
            assert not re.search(rf"\b{re.escape(name.casefold())}\b", shown), name
    page.screenshot(path=artifacts / "evaluate-blind-round.png", full_page=True)
    vote.get_by_role("button", name="A is best").click()
    expect(vote.get_by_text("Vote saved.", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)

    # Leaderboard: what was not measured yet (no thumbs, no scores) reads "—", not "None".
    page.get_by_role("link", name="Leaderboard").click()
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    board = grid_text(page, 0)
    assert "GPT-5 Nano" in board and "51%–100%" in board
    page.screenshot(path=artifacts / "leaderboard-offline.png", full_page=True)
