"""A title, note and tag written as markdown show as typed in History, in Chromium: no image
loads from someone else's server and no link hides where it goes (a shared comparison's
viewer sees what its owner wrote, as text). A model's answer keeps its markdown, but no
image in it makes the browser fetch anything."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class _Recorder(BaseHTTPRequestHandler):
    """Records the path of every request and answers 404."""

    requested: list[str]

    def do_GET(self) -> None:
        self.requested.append(self.path)
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def image_host() -> Iterator[tuple[str, list[str]]]:
    """A second local HTTP server, as an attacker's: its base URL and the paths it was asked."""
    requested: list[str] = []
    handler = type("Recorder", (_Recorder,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


def test_no_image_in_an_answer_is_fetched(
    app_page: Page, fake: FakeServerProcess, image_host: tuple[str, list[str]]
) -> None:
    host, requested = image_host
    answer = "\n\n".join(
        [
            f"Inline ![inline]({host}/inline.png?q=secret), in a [![badge]({host}/badge.png)](#)",
            "by reference ![full][r] ![r][] ![r] and `vec![1, 2]` as code.",
            f"[r]: {host}/reference.png",
            # Streamlit renders no HTML and KaTeX no graphics in st.markdown; held here too.
            f'HTML <img src="{host}/html-inline.png"> inline, and math '
            f"$\\includegraphics[height=1em]{{{host}/katex.png}}$",
            f'<img src="{host}/html-block.png">',
            "**Done.**",
        ]
    )
    fake.script("gpt-5-nano", {"text": answer})
    pick_models(app_page, ["GPT-5 Nano · Starter · 1 token"])
    run_prompt(app_page, "Describe the chart")
    answer_box = column(app_page, 0)
    expect(answer_box.get_by_text("Done", exact=True)).to_be_visible()
    expect(answer_box.get_by_text("Done.", exact=True)).to_be_visible()
    app_page.wait_for_load_state("networkidle")

    assert requested == []
    assert app_page.locator(f"img[src^='{host}']").count() == 0
    expect(answer_box.get_by_text(f"![inline]({host}/inline.png?q=secret)")).to_be_visible()
    expect(answer_box.locator("code").filter(has_text="vec![1, 2]")).to_be_visible()
