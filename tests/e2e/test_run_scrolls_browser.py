"""On Run the page brings the result columns into view (at 950 px they start below the fold)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.app_driver import column, pick_models, run_prompt
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

MODELS = ["GPT-5 Nano · Starter · 1 token", "Claude Haiku 4.5 · Starter · 1 token"]


def test_run_scrolls_the_result_columns_into_view(
    app_page: Page, fake: FakeServerProcess, artifacts: Path
) -> None:
    fake.script("*", {"text": "WAL lets readers go on while one writer writes.", "delay_ms": 40})
    app_page.set_viewport_size({"width": 1500, "height": 950})
    pick_models(app_page, MODELS)
    run_prompt(app_page, "Which SQLite journal mode suits a web app?")

    expect(column(app_page, 0)).to_be_in_viewport(ratio=0.9)
    expect(column(app_page, 0).get_by_text("Done", exact=True)).to_be_visible()
    app_page.screenshot(path=artifacts / "compare-after-run-950.png")
