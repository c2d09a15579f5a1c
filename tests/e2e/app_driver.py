"""Driving the app in a browser: pick models, run a prompt, find a result column."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

# "Run" with its shortcut hint, and not "Re-run" under a finished column.
RUN_BUTTON = re.compile(r"^Run\b")


def pick_models(page: Page, labels: list[str]) -> None:
    """Choose ``labels`` (full picker labels, e.g. ``GPT-5 · Basic+ · 2 tokens``).

    Each pick reruns the page; waiting for its chip keeps the next click from landing
    on a dropdown that is being redrawn.
    """
    picker = page.get_by_test_id("stMultiSelect")
    for label in labels:
        picker.locator("input").click()
        page.get_by_role("option", name=label, exact=True).click()
        expect(picker.get_by_text(label, exact=True)).to_be_visible()
        page.keyboard.press("Escape")


def pick_options(page: Page, label: str, options: list[str]) -> None:
    """Choose ``options`` in the multiselect labelled ``label``, waiting for each chip (each
    pick reruns the page)."""
    picker = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    for option in options:
        picker.locator("input").click()
        page.get_by_role("option", name=option, exact=True).click()
        expect(picker.get_by_text(option, exact=True)).to_be_visible()
        page.keyboard.press("Escape")


def run_prompt(page: Page, prompt: str, *, shortcut: bool = False) -> None:
    """Type ``prompt`` and press Run (or Ctrl+Enter while still in the prompt box)."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    if shortcut:
        page.keyboard.press("Control+Enter")
    else:
        page.get_by_role("button", name=RUN_BUTTON).click()


def column(page: Page, position: int) -> Locator:
    """The result column at ``position`` (0-based, left to right, row by row)."""
    return page.locator(f".st-key-column-{position}")


def choose(page: Page, selectbox_label: str, option: str, attempts: int = 5) -> None:
    """Pick ``option`` in the selectbox labelled ``selectbox_label``.

    A rerun that lands while the dropdown is open closes it, so the pick is retried.
    """
    selectbox = page.get_by_test_id("stSelectbox").filter(has_text=selectbox_label)
    for _ in range(attempts):
        selectbox.locator("input").click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=2000)
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            continue
        return
    raise AssertionError(f"could not pick {option!r} in {selectbox_label!r}")


def click_table_cell(page: Page, x: float, y: float) -> None:
    """Click the table cell at page point (``x``, ``y``) the way a mouse does: the pointer
    first travels over the table, then clicks.

    Streamlit's table drops a cell selection made while it still believes the pointer is
    outside it; it learns otherwise one render after the first move over it. A pointer that
    jumps onto a cell and clicks in the same instant (Playwright's ``mouse.click``) is lost
    whenever the table was drawn before the pointer left it, e.g. after a filter changed
    its rows, while any real pointer crosses the table before it clicks.
    """
    page.mouse.move(x, y, steps=5)
    # Two animation frames: the table has rendered once with the pointer over it.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.mouse.click(x, y)


def open_first_history_row(page: Page) -> None:
    """Select the first row of the History table, which opens that comparison.

    The table is drawn on a canvas: click the row's selection box, left of the first cell
    (a header row and a data row are about 35 px high each).
    """
    grid = page.get_by_test_id("stDataFrame")
    expect(grid).to_be_visible()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 16, box["y"] + 52)
    expect(page.get_by_role("button", name="Back to the list")).to_be_visible()
