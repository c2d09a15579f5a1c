"""The Compare page in Chromium against the fake Elumenta server: stream, stop, errors, XSS."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.app_driver import choose, column, pick_models, run_prompt
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

NANO = "GPT-5 Nano · Starter · 1 token"
GPT5 = "GPT-5 · Basic+ · 2 tokens"
HAIKU = "Claude Haiku 4.5 · Starter · 1 token"
WORDS = "ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL INDIA JULIET KILO LIMA MIKE"


def test_three_models_stream_side_by_side_and_finish_with_metrics(
    app_page: Page, fake: FakeServerProcess, artifacts: Path
) -> None:
    fake.script("*", {"text": WORDS, "ttft_ms": 50, "delay_ms": 120})
    fake.script(
        "claude-haiku-4.5", {"text": WORDS.replace("ECHO", "EASY"), "ttft_ms": 20, "delay_ms": 60}
    )
    pick_models(app_page, [NANO, GPT5, HAIKU])
    expect(app_page.get_by_text("Estimated cost 4 billing tokens")).to_be_visible()
    run_prompt(app_page, "Spell the NATO alphabet")

    expect(app_page.get_by_text("Streaming…").first).to_be_visible()
    for position in range(3):
        expect(column(app_page, position).get_by_text("Done", exact=True)).to_be_visible()
        expect(column(app_page, position)).to_contain_text("ALPHA BRAVO CHARLIE DELTA")
        expect(column(app_page, position)).to_contain_text(re.compile(r"Latency \d"))
        expect(column(app_page, position)).to_contain_text("TTFT")
    expect(column(app_page, 1)).to_contain_text("Tokens used 2")
    expect(app_page.get_by_text("Cheapest").first).to_be_visible()
    assert parse_qs(urlsplit(app_page.url).query)["comparison"][0]
    streamed = [r for r in fake.requests() if r["path"].endswith("/generate/stream")]
    models = sorted(r["json"]["model"] for r in streamed)
    assert models == ["claude-haiku-4.5", "gpt-5", "gpt-5-nano"]

    app_page.set_viewport_size({"width": 1440, "height": 1800})
    app_page.get_by_text("Compare two answers").click()
    expect(app_page.get_by_text("The two answers are identical.")).to_be_visible()
    choose(app_page, "Second", "3. Claude Haiku 4.5")
    expect(app_page.get_by_text(re.compile(r"Similarity \d+%"))).to_be_visible()
    expect(app_page.get_by_text("+ALPHA BRAVO CHARLIE DELTA EASY")).to_be_visible()
    app_page.screenshot(path=artifacts / "compare.png")


def test_stopping_a_slow_model_keeps_its_partial_text(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("gpt-5", {"text": WORDS, "ttft_ms": 50, "delay_ms": 400})
    pick_models(app_page, [NANO, GPT5])
    run_prompt(app_page, "Spell it slowly", shortcut=True)

    slow = column(app_page, 1)
    expect(slow).to_contain_text("CHARLIE")
    slow.get_by_role("button", name="Stop").click()

    expect(slow.get_by_text("Stopped", exact=True)).to_be_visible()
    expect(slow).to_contain_text("Stopped by you. The text received so far is kept.")
    expect(slow).to_contain_text("ALPHA BRAVO CHARLIE")
    expect(slow).not_to_contain_text("MIKE")
    expect(column(app_page, 0).get_by_text("Done", exact=True)).to_be_visible()


def test_an_error_in_one_column_leaves_the_others_running(
    app_page: Page, fake: FakeServerProcess
) -> None:
    fake.script("gpt-5", {"status": 402, "error_message": "Not enough tokens: 2 needed, 1 left."})
    pick_models(app_page, [NANO, GPT5])
    run_prompt(app_page, "Hello")

    failed = column(app_page, 1)
    expect(failed.get_by_text("Failed", exact=True)).to_be_visible()
    expect(failed.get_by_role("alert")).to_contain_text("Not enough tokens: 2 needed, 1 left.")
    expect(column(app_page, 0).get_by_text("Done", exact=True)).to_be_visible()


def test_model_output_is_shown_as_text_never_run(app_page: Page, fake: FakeServerProcess) -> None:
    payload = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    fake.script("claude-haiku-4.5", {"text": f"Before {payload} after"})
    pick_models(app_page, [HAIKU])
    run_prompt(app_page, "Say something dangerous")

    answer = column(app_page, 0)
    expect(answer.get_by_text("Done", exact=True)).to_be_visible()
    expect(answer).to_contain_text(payload)
    assert answer.locator("script, img").count() == 0
    assert app_page.evaluate("window.__xss") is None


def test_every_page_loads_and_settings_checks_the_balance(
    app_page: Page, fake: FakeServerProcess, artifacts: Path
) -> None:
    app_page.set_viewport_size({"width": 1440, "height": 1400})
    for title in ("History", "Costs", "Settings"):
        app_page.get_by_role("link", name=title).click()
        expect(app_page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(app_page.get_by_test_id("stException")).to_have_count(0)
    main = app_page.get_by_test_id("stMain")
    expect(main).to_contain_text("key: nb_…9f3c (from environment)")
    expect(main.get_by_test_id("stDataFrame")).to_be_visible()
    app_page.get_by_role("button", name="Check balance").click()
    expect(app_page.get_by_text("Balance: 1000 billing tokens")).to_be_visible()
    app_page.screenshot(path=artifacts / "settings.png")
    assert "nb_e2e_key_9f3c" not in app_page.content()
