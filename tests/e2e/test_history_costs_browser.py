"""After a run in Chromium: the share link reopens it, History lists and opens it, exports it,
and Costs charts it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.app_driver import column, open_first_history_row, pick_models, run_prompt
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

MODELS = {
    "gpt-5-nano": "GPT-5 Nano · Starter · 1 token",
    "gpt-5": "GPT-5 · Basic+ · 2 tokens",
    "claude-haiku-4.5": "Claude Haiku 4.5 · Starter · 1 token",
}
PROMPT = "Which SQLite journal mode suits a web app?"


def answer(slug: str) -> str:
    return f"{slug} recommends WAL: readers never block the single writer."


def test_a_run_reopens_from_its_link_and_shows_in_history_and_costs(
    app_page: Page, fake: FakeServerProcess, chromium: Browser, artifacts: Path
) -> None:
    for slug in MODELS:
        fake.script(slug, {"text": answer(slug), "ttft_ms": 20, "delay_ms": 10})
    pick_models(app_page, list(MODELS.values()))
    run_prompt(app_page, PROMPT)
    for position, slug in enumerate(MODELS):
        expect(column(app_page, position).get_by_text("Done", exact=True)).to_be_visible()
        expect(column(app_page, position)).to_contain_text(answer(slug))
    share_link = app_page.url
    assert "comparison" in parse_qs(urlsplit(share_link).query)

    # A fresh browser page is a new session: the comparison comes back from the store.
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    try:
        shared = context.new_page()
        shared.goto(share_link)
        for position, slug in enumerate(MODELS):
            expect(column(shared, position).get_by_text("Done", exact=True)).to_be_visible()
            expect(column(shared, position)).to_contain_text(answer(slug))
        expect(shared.get_by_label("Prompt", exact=True)).to_have_value(PROMPT)
        shared.screenshot(path=artifacts / "share-link.png")
    finally:
        context.close()

    app_page.get_by_role("link", name="History").click()
    expect(app_page.get_by_role("heading", name="History", exact=True)).to_be_visible()
    expect(app_page.get_by_text("Click a row to open the comparison", exact=False)).to_be_visible()
    with app_page.expect_download() as download:
        app_page.get_by_role("button", name="Export CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert all(answer(slug) in exported for slug in MODELS)
    app_page.screenshot(path=artifacts / "history.png")

    open_first_history_row(app_page)
    expect(app_page.get_by_role("heading", name=PROMPT)).to_be_visible()
    for position, slug in enumerate(MODELS):
        expect(column(app_page, position)).to_contain_text(answer(slug))
    expect(app_page.get_by_role("button", name="Stop")).to_have_count(0)
    app_page.screenshot(path=artifacts / "history-opened.png")

    app_page.set_viewport_size({"width": 1440, "height": 2000})
    app_page.get_by_role("link", name="Costs").click()
    expect(app_page.get_by_role("heading", name="Costs", exact=True)).to_be_visible()
    expect(app_page.get_by_test_id("stVegaLiteChart")).to_have_count(6)
    expect(app_page.get_by_role("heading", name="Per model")).to_be_visible()
    expect(app_page.get_by_test_id("stException")).to_have_count(0)
    app_page.screenshot(path=artifacts / "costs.png", full_page=True)
