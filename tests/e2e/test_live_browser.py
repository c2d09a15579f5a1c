"""Live answers in Chromium: the browser follows each run's event stream over the app's route.

Text arrives in a live column without Streamlit reruns, survives a dropped connection and a
reload, stays inert if it is HTML, and the page falls back to polling when the route is
blocked. The answer the live column showed is read from the component's own state (what it
appended to the page), so a doubled or lost piece of text would show.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.app_driver import column, pick_models, run_prompt
from tests.e2e.hosted import HostedApp, page_as
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

NANO = "GPT-5 Nano · Starter · 1 token"
GPT5 = "GPT-5 · Basic+ · 2 tokens"
HAIKU = "Claude Haiku 4.5 · Starter · 1 token"
WORDS = " ".join(f"W{n:02d}" for n in range(40))


# A long answer: paragraphs, runs of words that wrap, a word longer than a line, an emoji
# with a skin tone, a combining accent, right-to-left text and markup that stays text.
LONG_ANSWER = "".join(
    f"Paragraph {n}: "
    + " ".join(f"word{w:02d}" for w in range(30))
    + " "
    + "unbrokenlongtoken" * 6
    + " 👍🏽 cafe\u0301 مرحبا بالعالم <b>not bold</b>\n"
    + ("\n" if n % 3 == 0 else "")
    for n in range(16)
)
# Every character of the live answer where it would be if the answer were one text node:
# the character boxes of the answer and of a copy holding its text in one node, relative
# to each one's top (offsets whose boxes differ, or that have a box in one only).
MISPLACED_JS = """
(answer) => {
  const whole = answer.cloneNode(false);
  whole.textContent = answer.textContent;
  answer.after(whole);
  const range = document.createRange();
  const boxes = (root) => {
    const top = root.getBoundingClientRect().top;
    const found = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const box = range.getClientRects()[0];
        found.push(box ? `${Math.round(box.top - top)},${Math.round(box.left)}` : null);
      }
    }
    return found;
  };
  const parts = boxes(answer);
  const one = boxes(whole);
  whole.remove();
  return parts.flatMap((box, offset) => (box === one[offset] ? [] : [offset]));
}
"""


def live_text(page: Page, position: int) -> str:
    """The text the live column of ``position`` shows (empty before its first token)."""
    answer = column(page, position).locator(".live-answer")
    return (answer.text_content() or "") if answer.count() else ""


def streamed_text(page: Page, index: int) -> list[str]:
    """What the component appended for model ``index`` of each run it followed."""
    return list(
        page.evaluate(
            "index => [...(globalThis.__playgroundLive?.runs.values() ?? [])]"
            ".map(run => run.columns.get(index)?.text ?? '')",
            index,
        )
    )


def test_three_models_stream_live_and_the_text_grows_without_reruns(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("*", {"text": WORDS, "ttft_ms": 30, "delay_ms": 60})
    pick_models(app_page, [NANO, GPT5, HAIKU])
    run_prompt(app_page, "Count slowly")

    first = column(app_page, 0)
    expect(first.locator(".live-answer")).to_contain_text("W03")
    expect(first.locator(".live-badge")).to_have_text("● Streaming…")
    expect(first.locator(".live-metrics")).to_contain_text(re.compile(r"TTFT \d"))
    before = live_text(app_page, 0)
    # More text is appended to what was there: the column grows, it is not redrawn.
    grown = re.compile("^" + re.escape(before) + ".+")
    expect(first.locator(".live-answer")).to_have_text(grown)
    for position in range(3):
        expect(column(app_page, position).get_by_text("Done", exact=True)).to_be_visible()
        expect(column(app_page, position)).to_contain_text("W00 W01 W02")
        expect(column(app_page, position)).to_contain_text(re.compile(r"Latency \d"))
    assert streamed_text(app_page, 2) == [WORDS]


def test_an_html_answer_stays_inert_while_it_streams(
    app_page: Page, fake: FakeServerProcess
) -> None:
    payload = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    fake.script("claude-haiku-4.5", {"text": f"Before {payload} after {WORDS}", "delay_ms": 40})
    pick_models(app_page, [HAIKU])
    run_prompt(app_page, "Say something dangerous")

    answer = column(app_page, 0)
    expect(answer.locator(".live-answer")).to_contain_text(payload)
    assert answer.locator("script, img").count() == 0
    expect(answer.get_by_text("Done", exact=True)).to_be_visible()
    expect(answer).to_contain_text(payload)
    assert answer.locator("script, img").count() == 0
    assert app_page.evaluate("window.__xss") is None


def test_a_long_answer_is_cut_into_parts_that_look_like_one_text(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("gpt-5", {"text": LONG_ANSWER, "ttft_ms": 20, "n_deltas": 400, "delay_ms": 25})
    pick_models(app_page, [GPT5])
    run_prompt(app_page, "Write at length")

    answer = column(app_page, 0).locator(".live-answer")
    # Lines above the last one of a long answer move into parts of their own, so that
    # appending lays out only the last part...
    expect(answer.locator(".live-part").nth(2)).to_be_attached()
    # ...and every character stays where one text would have it.
    assert answer.evaluate(MISPLACED_JS) == []
    assert answer.locator("b").count() == 0
    # Copying the live text gives the text, without line breaks between the parts.
    copied = answer.evaluate(
        """(answer) => {
          const selection = document.getSelection();
          selection.selectAllChildren(answer);
          const event = new ClipboardEvent('copy', {clipboardData: new DataTransfer(),
                                                     bubbles: true, cancelable: true});
          answer.querySelector('.live-part').dispatchEvent(event);
          return [event.clipboardData.getData('text/plain'), answer.textContent];
        }"""
    )
    assert copied[0] == copied[1]
    expect(column(app_page, 0).get_by_text("Done", exact=True)).to_be_visible(timeout=20_000)
    assert streamed_text(app_page, 0) == [LONG_ANSWER]


def test_stop_in_a_live_column_works_from_the_keyboard_and_keeps_the_partial_text(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("gpt-5", {"text": WORDS, "ttft_ms": 20, "delay_ms": 300})
    fake.script("gpt-5-nano", {"text": "W00 W01", "ttft_ms": 20, "delay_ms": 30})
    pick_models(app_page, [NANO, GPT5])
    run_prompt(app_page, "Count until I stop you")

    slow = column(app_page, 1)
    expect(slow.locator(".live-answer")).to_contain_text("W02")
    # The live column draws its own header and Stop: one element per column on a page run.
    expect(slow.locator(".live-name")).to_have_text("GPT-5")
    expect(slow.locator(".live-label")).to_have_text(GPT5)
    stop = slow.locator(".live-column").get_by_role("button", name="Stop")
    stop.focus()
    app_page.keyboard.press("Enter")

    expect(slow.get_by_text("Stopped", exact=True)).to_be_visible()
    expect(slow).to_contain_text("Stopped by you. The text received so far is kept.")
    expect(slow).to_contain_text("W00 W01 W02")
    expect(slow).not_to_contain_text("W39")
    expect(column(app_page, 0).get_by_text("Done", exact=True)).to_be_visible()
    stopped = [r for r in fake.requests() if (r.get("json") or {}).get("model") == "gpt-5"]
    assert len(stopped) == 1  # stopped, never sent again


def test_a_rerun_while_streaming_keeps_each_live_column_as_it_is(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("*", {"text": WORDS, "ttft_ms": 20, "delay_ms": 300})
    pick_models(app_page, [NANO, HAIKU])
    run_prompt(app_page, "Count while I edit")
    for position in range(2):
        expect(column(app_page, position).locator(".live-answer")).to_contain_text("W01")
    app_page.evaluate(
        "document.querySelectorAll('.live-column').forEach((c, i) => { c.dataset.seen = i; })"
    )

    # A click that reruns the page on the server: its data did not change, so the
    # component is neither mounted again nor started over (its text is not redrawn).
    app_page.get_by_text("Earlier turns (0)").click()
    app_page.get_by_role("button", name="Add user turn").click()
    expect(app_page.get_by_text("Earlier turns (1)")).to_be_visible()
    app_state = app_page.get_by_test_id("stApp")
    expect(app_state).to_have_attribute("data-test-script-state", "notRunning")
    expect(column(app_page, 1).locator(".live-badge")).to_have_text("● Streaming…")
    seen = app_page.evaluate(
        "[...document.querySelectorAll('.live-column')].map((c) => c.dataset.seen ?? null)"
    )
    assert seen == ["0", "1"]


def test_a_dropped_stream_resumes_from_its_last_event(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("*", {"text": WORDS, "ttft_ms": 20, "delay_ms": 30})
    asked: list[str] = []

    def cut_the_first_stream(route: Route) -> None:
        asked.append(route.request.url)
        if len(asked) > 1:
            route.continue_()
            return
        # The connection ends after a third of the run's events, as a proxy would cut it.
        response = route.fetch()
        events = response.text().split("\n\n")
        route.fulfill(response=response, body="\n\n".join(events[: len(events) // 3]) + "\n\n")

    app_page.route("**/_run/*/events*", cut_the_first_stream)
    pick_models(app_page, [NANO, HAIKU])
    run_prompt(app_page, "Count for a while")

    for position in range(2):
        expect(column(app_page, position).get_by_text("Done", exact=True)).to_be_visible()
    assert "last_event_id" not in asked[0]
    assert int(re.findall(r"last_event_id=(\d+)", asked[1])[0]) > 0
    assert streamed_text(app_page, 0) == [WORDS]
    assert streamed_text(app_page, 1) == [WORDS]


def test_a_reload_mid_stream_shows_the_run_continuing(
    app_page: Page, fake: FakeServerProcess
) -> None:
    # 40 words 300 ms apart: a reload on a busy 2-core CI machine can take seconds, and
    # the run must still be streaming when the page is back.
    fake.script("gpt-5", {"text": WORDS, "ttft_ms": 20, "delay_ms": 300})
    pick_models(app_page, [GPT5])
    run_prompt(app_page, "Count through a reload")
    expect(column(app_page, 0).locator(".live-answer")).to_contain_text("W02")

    app_page.reload()
    live = column(app_page, 0).locator(".live-answer")
    expect(live).to_contain_text("W00 W01 W02")
    expect(column(app_page, 0).locator(".live-badge")).to_have_text("● Streaming…")
    expect(column(app_page, 0).get_by_text("Done", exact=True)).to_be_visible(timeout=30_000)
    expect(column(app_page, 0)).to_contain_text(WORDS)
    assert streamed_text(app_page, 0) == [WORDS]


def test_a_blocked_stream_falls_back_to_polling_with_the_same_result(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("*", {"text": WORDS, "ttft_ms": 20, "delay_ms": 30})
    app_page.route("**/_run/*/events*", lambda route: route.abort())
    pick_models(app_page, [NANO, HAIKU])
    run_prompt(app_page, "Count behind a strict proxy")

    for position in range(2):
        expect(column(app_page, position).get_by_text("Done", exact=True)).to_be_visible()
        expect(column(app_page, position)).to_contain_text(WORDS)
    assert column(app_page, 0).locator(".live-answer").count() == 0


@pytest.mark.postgres
def test_two_hosted_users_streaming_at_once_see_only_their_own_text(
    chromium: Browser, hosted_app: HostedApp, fake: FakeServerProcess
) -> None:
    fake.script("*", {"ttft_ms": 20, "delay_ms": 80})
    pages = {
        email: page_as(chromium, email, hosted_app.url)
        for email in ("lia@example.org", "max@example.org")
    }
    secrets = {email: f"secret of {email.split('@')[0]}" for email in pages}
    try:
        for page in pages.values():
            expect(page.get_by_role("heading", name="Compare models")).to_be_visible()
            pick_models(page, [NANO, HAIKU])
        for email, page in pages.items():
            run_prompt(page, secrets[email])
        for email, page in pages.items():
            expect(column(page, 0).locator(".live-answer")).to_contain_text(secrets[email])
        for email, page in pages.items():
            (theirs,) = (secret for other, secret in secrets.items() if other != email)
            for position in range(2):
                expect(column(page, position).get_by_text("Done", exact=True)).to_be_visible()
            streamed = streamed_text(page, 0) + streamed_text(page, 1)
            assert all(secrets[email] in text and theirs not in text for text in streamed)
            expect(page.get_by_text(theirs)).to_have_count(0)
    finally:
        for page in pages.values():
            page.context.close()


def test_the_live_code_is_fetched_once_per_page_and_not_from_the_element(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("*", {"text": WORDS, "ttft_ms": 20, "delay_ms": 200})
    fetched: list[str] = []
    app_page.on("request", lambda r: fetched.append(r.url) if "/_live/" in r.url else None)
    pick_models(app_page, [NANO, HAIKU])
    run_prompt(app_page, "Count while I edit")
    for position in range(2):
        expect(column(app_page, position).locator(".live-answer")).to_contain_text("W01")
    # Styled by the served stylesheet (Streamlit draws no <style> of its own for it).
    badge = column(app_page, 0).locator(".live-badge")
    assert badge.evaluate("b => getComputedStyle(b).borderTopLeftRadius") == "8px"
    assert app_page.locator("style", has_text=".live-badge").count() == 0
    # A server rerun while they stream: the columns' code is not fetched again.
    app_page.get_by_text("Earlier turns (0)").click()
    app_page.get_by_role("button", name="Add user turn").click()
    expect(app_page.get_by_text("Earlier turns (1)")).to_be_visible()
    for position in range(2):
        expect(column(app_page, position).get_by_text("Done", exact=True)).to_be_visible()
    assert sorted(url.rsplit(".", 1)[1] for url in fetched) == ["css", "js"]
    assert streamed_text(app_page, 0) == [WORDS]


def test_a_blocked_code_route_falls_back_to_polling_with_the_same_result(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("*", {"text": WORDS, "ttft_ms": 20, "delay_ms": 30})
    app_page.route("**/_live/*", lambda route: route.abort())
    pick_models(app_page, [NANO, HAIKU])
    run_prompt(app_page, "Count behind a stricter proxy")

    for position in range(2):
        expect(column(app_page, position).get_by_text("Done", exact=True)).to_be_visible()
        expect(column(app_page, position)).to_contain_text(WORDS)
    assert column(app_page, 0).locator(".live-answer").count() == 0
    expect(app_page.get_by_text("BidiComponent Error")).to_have_count(0)
