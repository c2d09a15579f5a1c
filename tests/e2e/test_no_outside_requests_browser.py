"""An internal tool asks nothing of the internet: every page loads from the app alone.

Streamlit's frontend can fetch fonts and icons from public CDNs, which tells them who uses
the app and when, and fails on a network without internet. Chromium loads every page (local
mode, a comparison drawn) and records each request the page makes, whatever its outcome.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Request, expect

from tests.e2e.app_driver import column, pick_models, run_prompt
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

NANO = "GPT-5 Nano · Starter · 1 token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PAGES = {
    "": "Compare models",
    "history": "History",
    "costs": "Costs",
    "evaluate": "Evaluate",
    "leaderboard": "Leaderboard",
    "settings": "Settings",
}


def test_no_page_requests_anything_but_the_app(
    chromium: Browser, app_url: str, fake: FakeServerProcess
) -> None:
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    context.on("request", record)
    try:
        tab = context.new_page()
        for path, heading in PAGES.items():
            tab.goto(f"{app_url}/{path}")
            expect(tab.get_by_role("heading", name=heading, exact=False).first).to_be_visible()
            tab.wait_for_load_state("networkidle")
        tab.goto(app_url)
        pick_models(tab, [NANO])
        run_prompt(tab, "Hello")
        expect(column(tab, 0).get_by_text("Done", exact=True)).to_be_visible()
        tab.wait_for_load_state("networkidle")
        favicons = tab.locator("link[rel~='icon']").evaluate_all("links => links.map(l => l.href)")
    finally:
        context.close()

    outside = sorted(
        {
            url
            for url in requested
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).hostname not in LOCAL_HOSTS
        }
    )
    assert requested, "the recorder saw the pages load"
    assert outside == []
    assert favicons and all(href.startswith("data:image/svg+xml") for href in favicons), favicons
