"""A title, note and tag written as markdown show as typed in History, in Chromium: no image
loads from someone else's server and no link hides where it goes (a shared comparison's
viewer sees what its owner wrote, as text)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.app_driver import column, open_first_history_row, pick_models, run_prompt
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

IMAGE = "![pixel](http://127.0.0.1:9/pixel.png)"
LINK = "[click me](http://evil.example/login)"
TITLE = f"{IMAGE} {LINK} **bold**"
TAG = "x`![tag](http://127.0.0.1:9/tag.png)`y"
NOTE = f"See {LINK} and {IMAGE}, https://evil.example/bare or www.evil.example"


def test_markdown_in_a_title_note_and_tag_is_shown_as_text(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("gpt-5-nano", {"text": "Plain answer."})
    pick_models(app_page, ["GPT-5 Nano · Starter · 1 token"])
    run_prompt(app_page, "A prompt to annotate")
    expect(column(app_page, 0).get_by_text("Done", exact=True)).to_be_visible()

    app_page.get_by_role("link", name="History").click()
    open_first_history_row(app_page)
    app_page.get_by_text("Title, tags and note").click()
    app_page.get_by_role("textbox", name="Title").fill(TITLE)
    app_page.get_by_role("textbox", name="Tags").fill(TAG)
    app_page.get_by_role("textbox", name="Note").fill(NOTE)
    app_page.get_by_role("button", name="Save").click()

    expect(app_page.get_by_role("heading", name=TITLE)).to_be_visible()
    expect(app_page.get_by_text(f"Note: {NOTE}")).to_be_visible()
    expect(app_page.get_by_text(TAG)).to_be_visible()
    assert app_page.locator("img[src*='127.0.0.1:9']").count() == 0
    expect(app_page.get_by_role("link", name="click me")).to_have_count(0)
    # Streamlit links a bare URL; such a link shows exactly where it goes.
    for link in app_page.locator("a[href*='evil.example']").all():
        assert link.inner_text().removeprefix("http://") in (link.get_attribute("href") or "")
