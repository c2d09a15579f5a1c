"""Nothing typed is lost: a reload (after moving between pages, or right after an edit in
the editor) brings the Compare draft back."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_driver import pick_models

pytestmark = pytest.mark.browser

NANO = "GPT-5 Nano · Starter · 1 token"
HAIKU = "Claude Haiku 4.5 · Starter · 1 token"
SYSTEM = "Answer in two sentences."
PROMPT = "Which SQLite journal mode suits a web app?"


def test_a_reload_after_a_page_switch_keeps_the_compare_draft(
    app_page: Page, chromium: Browser, artifacts: Path
) -> None:
    app_page.get_by_label("System prompt").fill(SYSTEM)
    app_page.get_by_label("Prompt", exact=True).fill(PROMPT)
    pick_models(app_page, [NANO, HAIKU])  # each pick is a rerun: the texts above are sent

    app_page.get_by_role("link", name="History").click()
    expect(app_page.get_by_role("heading", name="History", exact=True)).to_be_visible()
    app_page.reload()
    expect(app_page.get_by_role("heading", name="History", exact=True)).to_be_visible()
    app_page.get_by_role("link", name="Compare").click()

    expect(app_page.get_by_label("Prompt", exact=True)).to_have_value(PROMPT)
    expect(app_page.get_by_label("System prompt")).to_have_value(SYSTEM)
    picker = app_page.get_by_test_id("stMultiSelect")
    for label in (NANO, HAIKU):
        expect(picker.get_by_text(label, exact=True)).to_be_visible()
    app_page.screenshot(path=artifacts / "compare-draft-after-reload.png")

    # The URL carries a token, not the text; another browser with that URL gets the
    # draft only as the same (local) user: in hosted mode drafts are per user.
    assert PROMPT.split()[0] not in app_page.url
    token = parse_qs(urlsplit(app_page.url).query)["draft"][0]
    assert len(token) >= 16


def test_a_reload_right_after_an_edit_in_the_compare_editor_keeps_it(app_page: Page) -> None:
    # Each of these reruns the editor's fragment only (app.py, which saves drafts on every
    # full page run, does not run): the editor saves the draft itself.
    app_page.get_by_label("Prompt", exact=True).fill(PROMPT)
    pick_models(app_page, [NANO])
    app_page.get_by_text("Earlier turns").click()
    app_page.get_by_role("button", name="Add user turn").click()
    expect(app_page.get_by_label("1. User", exact=True)).to_be_attached()
    # The turn's first action switches its role; the control is ready for the next press.
    actions = app_page.locator("[class*='st-key-compare-turn-'][class*='-action'] button")
    actions.first.click()
    expect(app_page.get_by_label("1. Assistant", exact=True)).to_be_attached()
    actions.first.click()
    expect(app_page.get_by_label("1. User", exact=True)).to_be_attached()
    actions.first.click()
    expect(app_page.get_by_label("1. Assistant", exact=True)).to_be_attached()

    app_page.reload()

    expect(app_page.get_by_label("Prompt", exact=True)).to_have_value(PROMPT)
    expect(app_page.get_by_label("1. Assistant", exact=True)).to_be_attached()
    picker = app_page.get_by_test_id("stMultiSelect")
    expect(picker.get_by_text(NANO, exact=True)).to_be_visible()
