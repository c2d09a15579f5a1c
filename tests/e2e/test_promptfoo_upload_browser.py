"""A promptfoo config uploaded on the Evaluate page runs, and its verdicts are shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

CONFIG = """\
description: uploaded
prompts: ["Capital of {{ country }}?"]
providers: [elumenta:gpt-5-nano]
tests:
  - {description: france, vars: {country: France}, assert: [{type: icontains, value: paris}]}
  - {description: spain, vars: {country: Spain}, assert: [{type: icontains, value: madrid}]}
"""


def test_an_uploaded_promptfoo_config_runs_and_shows_its_verdicts(
    app_page: Page, fake: FakeServerProcess, tmp_path: Path
) -> None:
    fake.script("gpt-5-nano", {"text": "Paris."})
    bad = tmp_path / "promptfooconfig.yaml"
    bad.write_text(CONFIG.replace("icontains, value: madrid", "javascript, value: 'x'"))
    good = tmp_path / "promptfoo-good.yaml"
    good.write_text(CONFIG)

    app_page.get_by_role("link", name="Evaluate").click()
    app_page.get_by_role("tab", name="Dataset").click()
    app_page.get_by_text("Run a promptfoo config").click()
    uploader = app_page.get_by_test_id("stFileUploader").filter(has_text="promptfooconfig.yaml")
    uploader.locator("input[type=file]").set_input_files(bad)
    expect(app_page.get_by_text("assertion type 'javascript' is not supported")).to_be_visible()
    expect(app_page.get_by_text("(line 6)", exact=False)).to_be_visible()

    uploader.locator("input[type=file]").set_input_files(good)
    expect(app_page.get_by_text("1 prompt(s) × 2 test(s) × 1 provider(s)")).to_be_visible()
    app_page.get_by_role("button", name="Run config").click()
    expect(app_page.get_by_text("1 passed, 1 failed, 0 errors")).to_be_visible(timeout=60_000)
    expect(app_page.get_by_role("button", name="Download results.json")).to_be_visible()
