"""Every page loads through the router; the Settings page keeps secrets secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.services import runtime
from tests.app_harness import click, open_page, texts
from tests.fake_elumenta import FakeElumenta

API_KEY = "settings.api_key"


@pytest.mark.parametrize(
    ("page_path", "title"),
    [
        ("pages/compare.py", "Compare models"),
        ("pages/history.py", "History"),
        ("pages/costs.py", "Costs"),
        ("pages/settings.py", "Settings"),
    ],
)
def test_every_page_loads_without_error(app_env: Path, page_path: str, title: str) -> None:
    at = open_page(page_path)
    assert not at.exception
    assert at.title[0].value == title


def test_the_sidebar_says_the_demo_is_simulated_and_names_the_database(app_env: Path) -> None:
    at = open_page()
    assert "**Provider:** Demo (offline, simulated)" in texts(at.sidebar, "markdown")
    assert texts(at.sidebar, "code") == [f"sqlite:///{app_env / 'data' / 'history.sqlite3'}"]


def test_a_typed_key_is_masked_everywhere_and_survives_switching_pages(app_env: Path) -> None:
    secret = "nb_live_supersecret_a1b2"
    at = open_page("pages/settings.py")
    at.text_input(key=API_KEY).set_value(secret).run()

    at.switch_page("pages/compare.py").run()
    assert at.multiselect(key="compare.models").options[0] == "GPT-5 Nano · Starter · 1 token"
    at.switch_page("pages/settings.py").run()

    assert at.text_input(key=API_KEY).value == secret
    shown = texts(at, "markdown") + texts(at, "caption") + texts(at, "code")
    assert "In use: **Elumenta · elumenta.ru** · key: `nb_…a1b2 (from session)`" in shown
    assert not any(secret in text for text in shown)


def test_the_database_password_is_masked(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", "postgresql+psycopg://app:hunter2@db:5432/pg")
    runtime.reset()
    at = open_page("pages/settings.py")
    codes = texts(at, "code")
    assert "postgresql+psycopg://app:***@db:5432/pg" in codes
    assert not any("hunter2" in code for code in codes)


def test_check_balance_shows_balance_and_quota(app_env: Path, fake_elumenta: FakeElumenta) -> None:
    at = open_page("pages/settings.py")
    at.text_input(key="settings.base_url").set_value(fake_elumenta.base_url)
    at.text_input(key=API_KEY).set_value(fake_elumenta.api_key).run()

    click(at, "Check balance")

    assert any("Balance: **1000** billing tokens" in s for s in texts(at, "success"))
    assert any("100/100 this hour" in s for s in texts(at, "success"))


def test_check_balance_with_a_bad_key_is_a_clear_error(
    app_env: Path, fake_elumenta: FakeElumenta
) -> None:
    at = open_page("pages/settings.py")
    at.text_input(key="settings.base_url").set_value(fake_elumenta.base_url)
    at.text_input(key=API_KEY).set_value("nb_wrong_wrong_0000").run()

    click(at, "Check balance")

    assert texts(at, "error") == ["Invalid or missing API key."]
    assert not at.exception


def test_refresh_catalog_saves_prices_and_reports_each_failure(
    app_env: Path, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.models["gpt-5"].token_cost = 3
    del fake_elumenta.models["deepseek-r1"]
    at = open_page("pages/settings.py")
    at.text_input(key="settings.base_url").set_value(fake_elumenta.base_url)
    at.text_input(key=API_KEY).set_value(fake_elumenta.api_key).run()

    click(at, "Refresh model catalog")

    assert any("Refreshed 11 models" in s for s in texts(at, "success"))
    assert [w.split(":")[0] for w in texts(at, "warning")] == ["deepseek-r1"]
    saved = json.loads((app_env / "data" / "models.json").read_text())
    prices = {m["slug"]: m["token_cost"] for m in saved["models"]}
    assert prices["gpt-5"] == 3
    assert runtime.get_catalog().cost_of("gpt-5") == 3


def test_refresh_catalog_without_a_key_asks_for_one(app_env: Path) -> None:
    at = click(open_page("pages/settings.py"), "Refresh model catalog")
    assert texts(at, "error") == ["Enter an Elumenta API key first: prices are read from the API."]


def test_choosing_the_demo_provider_overrides_a_configured_key(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELUMENTA_API_KEY", "nb_from_env_0000_9999")
    runtime.reset()
    at = open_page()
    assert "**Provider:** Elumenta · elumenta.ru" in texts(at.sidebar, "markdown")

    at.switch_page("pages/settings.py").run()
    at.radio(key="settings.provider").set_value("demo").run()
    at.switch_page("pages/compare.py").run()

    assert at.multiselect(key="compare.models").options[0].endswith("· simulated")


@pytest.mark.parametrize(
    ("typed", "warned"), [("abc", True), ("sk-live-1234", True), ("nb_ok", False)]
)
def test_a_key_that_does_not_look_like_an_elumenta_key_is_warned_about(
    app_env: Path, typed: str, warned: bool
) -> None:
    at = open_page("pages/settings.py")
    at.text_input(key=API_KEY).set_value(typed).run()

    warnings = [w for w in texts(at, "warning") if "start with `nb_`" in w]
    assert len(warnings) == int(warned)
    assert not any(typed in w for w in texts(at, "warning"))  # the key is never echoed


def test_switching_provider_keeps_the_models_it_still_offers_and_names_the_dropped(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local OpenAI-compatible server offering gpt-5 and qwen2.5 (never asked here).
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_COMPATIBLE_MODELS", "gpt-5,qwen2.5")
    runtime.reset()
    at = open_page()
    picked = ["demo:gpt-5", "demo:claude-haiku-4.5", "openai_compatible:qwen2.5"]
    at.multiselect(key="compare.models").set_value(picked).run()

    at.switch_page("pages/settings.py").run()
    at.radio(key="settings.provider").set_value("openai_compatible").run()
    at.switch_page("pages/compare.py").run()

    assert at.multiselect(key="compare.models").value == [
        "openai_compatible:gpt-5",
        "openai_compatible:qwen2.5",
    ]
    assert texts(at, "warning") == [
        "OpenAI-compatible does not offer claude-haiku-4.5: removed from the picked models."
    ]
