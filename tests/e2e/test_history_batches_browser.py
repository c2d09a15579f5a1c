"""History with batches, in Chromium: a batch's answers are one row, a click on that row
opens the batch's results on Evaluate, and a click on any cell of a comparison opens it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.app_driver import click_table_cell, pick_models, run_prompt
from tests.e2e.test_evaluate_offline_browser import grid_text, offline_app, page  # noqa: F401

pytestmark = pytest.mark.browser

NANO = "GPT-5 Nano · Starter · 1 token · simulated"
ROW_PX = 35  # the table's header and rows are about this high each


def click_cell(tab: Page, row: int, x: float = 260) -> None:
    """Click a cell of the History table's ``row`` (0-based), away from the selection box."""
    grid = tab.get_by_test_id("stDataFrame")
    box = grid.bounding_box()
    assert box is not None
    click_table_cell(tab, box["x"] + x, box["y"] + ROW_PX * (row + 1) + ROW_PX / 2)


def test_a_batch_is_one_history_row_that_opens_on_evaluate(
    page: Page,  # noqa: F811
    artifacts: Path,
) -> None:
    pick_models(page, [NANO])
    run_prompt(page, "Which SQLite journal mode suits a web app?")
    expect(page.get_by_text("Done", exact=True)).to_be_visible()

    page.get_by_role("link", name="Evaluate").click()
    page.get_by_role("tab", name="Run batch").click()
    run = page.get_by_role("tabpanel", name="Run batch")
    run.get_by_role("button", name="Start batch").click()
    expect(run.get_by_text(re.compile(r"Batch #(\d+) completed"))).to_be_visible(timeout=60_000)
    batch = re.search(r"Batch #(\d+) completed", run.inner_text())
    assert batch is not None

    page.get_by_role("link", name="History").click()
    expect(page.get_by_text("Show batch runs")).to_be_visible()
    listed = grid_text(page, 0)
    assert listed.count(f"Batch #{batch[1]}") == 1
    assert "row 1" not in listed  # no entry per dataset row
    assert "Which SQLite journal mode" in listed
    page.screenshot(path=artifacts / "history-with-batches.png")

    click_cell(page, 1, x=700)  # the comparison's Prompt cell, not its selection box
    expect(page.get_by_role("button", name="Back to the list")).to_be_visible()
    expect(
        page.get_by_role("heading", name="Which SQLite journal mode suits a web app?")
    ).to_be_visible()
    page.get_by_role("button", name="Back to the list").click()
    # The list is drawn again (not the opened comparison's table) before its cell is clicked.
    expect(page.get_by_role("button", name="Back to the list")).to_be_hidden()
    expect(page.get_by_text("Show batch runs")).to_be_visible()

    click_cell(page, 0)  # the batch, the newest entry
    expect(page.get_by_role("heading", name="Evaluate", exact=True)).to_be_visible()
    results = page.get_by_role("tabpanel", name="Results")
    picker = results.get_by_role("combobox", name="Batch")
    expect(picker).to_have_value(re.compile(rf"^#{batch[1]} "))
    page.screenshot(path=artifacts / "history-batch-opened.png")

    page.get_by_role("link", name="History").click()
    page.get_by_text("Show batch runs").click()  # hidden: the comparison is the only row
    expect(page.get_by_test_id("stDataFrame").locator("table")).not_to_contain_text("Batch #")
    assert "Which SQLite journal mode" in grid_text(page, 0)
    # A click right after the row set changed opens the row it lands on.
    click_cell(page, 0, x=700)
    expect(page.get_by_role("button", name="Back to the list")).to_be_visible()
    page.get_by_role("button", name="Back to the list").click()

    page.get_by_text("Show batch runs").click()  # shown again: the batch is back on top
    expect(page.get_by_test_id("stDataFrame").locator("table")).to_contain_text("Batch #")
    click_cell(page, 1, x=700)
    expect(
        page.get_by_role("heading", name="Which SQLite journal mode suits a web app?")
    ).to_be_visible()
    page.get_by_role("button", name="Back to the list").click()
    page.get_by_text("Show batch runs").click()
    expect(page.get_by_test_id("stDataFrame").locator("table")).not_to_contain_text("Batch #")
    click_cell(page, 0, x=700)
    expect(page.get_by_role("button", name="Back to the list")).to_be_visible()
