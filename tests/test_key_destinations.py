"""The environment's API key goes only to the base URL it was configured with.

Local mode has no sign-in: whoever opens Settings can change the base URL. If the key from
``ELUMENTA_API_KEY`` followed, they could point the URL at their own host and read it from
the ``Authorization`` header. Two fake servers: the configured one and "theirs".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from playground.catalog import load_catalog
from playground.errors import AuthenticationError
from playground.providers.registry import build_providers
from playground.services import runtime
from tests.app_harness import click, open_page, run_compare, texts
from tests.fake_elumenta import FakeElumenta

ENV_KEY = "nb_environment_key_0000_a1b2"
TYPED_KEY = "nb_typed_for_other_server_9f3c"
ASKS_FOR_THE_KEY = "Enter the API key for this server in Settings"


@pytest.fixture
def other_server() -> Iterator[FakeElumenta]:
    """A second Elumenta-compatible server that would accept any key it is sent."""
    with FakeElumenta(api_key=TYPED_KEY) as fake:
        yield fake


@pytest.fixture
def configured(
    app_env: Path, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch
) -> FakeElumenta:
    """The app configured for ``fake_elumenta`` with ``ENV_KEY`` from the environment."""
    fake_elumenta.api_key = ENV_KEY
    monkeypatch.setenv("ELUMENTA_BASE_URL", fake_elumenta.base_url)
    monkeypatch.setenv("ELUMENTA_API_KEY", ENV_KEY)
    runtime.reset()
    return fake_elumenta


def sent_keys(server: FakeElumenta) -> list[str]:
    """The ``Authorization`` header of every request ``server`` received ("" when none)."""
    return [r.headers.get("authorization", "") for r in server.requests]


def test_a_changed_base_url_gets_no_environment_key(
    configured: FakeElumenta, other_server: FakeElumenta
) -> None:
    at = open_page("pages/settings.py")
    at.text_input(key="settings.base_url").set_value(other_server.base_url).run()
    assert any(ASKS_FOR_THE_KEY in w for w in texts(at, "warning")), texts(at, "warning")
    click(at, "Check balance")
    assert any(ASKS_FOR_THE_KEY in e for e in texts(at, "error")), texts(at, "error")

    run_compare(at, "Hello", ["elumenta:gpt-5-nano"])

    assert not at.exception
    assert any(ASKS_FOR_THE_KEY in e for e in texts(at, "error")), texts(at, "error")
    assert all(ENV_KEY not in key for key in sent_keys(other_server)), sent_keys(other_server)
    # Nor did the run go to the configured server instead.
    assert not [r for r in configured.requests if "/generate" in r.path]


def test_a_key_typed_for_the_changed_url_is_sent_there(
    configured: FakeElumenta, other_server: FakeElumenta
) -> None:
    at = open_page("pages/settings.py")
    at.text_input(key="settings.base_url").set_value(other_server.base_url)
    at.text_input(key="settings.api_key").set_value(TYPED_KEY).run()
    assert not any(ASKS_FOR_THE_KEY in w for w in texts(at, "warning"))

    run_compare(at, "Hello", ["elumenta:gpt-5-nano"])

    assert not at.exception and not texts(at, "error")
    assert set(sent_keys(other_server)) == {f"Bearer {TYPED_KEY}"}


def test_the_configured_url_still_uses_the_environment_key(configured: FakeElumenta) -> None:
    at = open_page("pages/settings.py")
    at.text_input(key="settings.base_url").set_value(configured.base_url + "/").run()
    run_compare(at, "Hello", ["elumenta:gpt-5-nano"])

    assert not at.exception and not texts(at, "error")
    assert set(sent_keys(configured)) == {f"Bearer {ENV_KEY}"}


async def test_providers_for_another_url_never_carry_the_environment_key(
    configured: FakeElumenta, other_server: FakeElumenta
) -> None:
    # What batches (Evaluate) and every other caller of build_providers rely on.
    providers = build_providers(
        runtime.get_settings(),
        runtime.get_catalog(),
        elumenta_base_url=other_server.base_url,
        demo_spent=None,
    )
    try:
        with pytest.raises(AuthenticationError, match=ASKS_FOR_THE_KEY):
            await providers["elumenta"].balance()
    finally:
        await providers["elumenta"].aclose()
    assert other_server.requests == []


@pytest.fixture
def openai_configured(
    app_env: Path, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch
) -> FakeElumenta:
    """The app configured for ``fake_elumenta``'s OpenAI-compatible endpoint with ``ENV_KEY``."""
    fake_elumenta.openai_api_key = ENV_KEY
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", fake_elumenta.openai_base_url)
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", ENV_KEY)
    monkeypatch.setenv("OPENAI_COMPATIBLE_MODELS", "gpt-5-nano")
    runtime.reset()
    return fake_elumenta


def test_an_openai_compatible_url_changed_in_settings_gets_no_environment_key(
    openai_configured: FakeElumenta, other_server: FakeElumenta
) -> None:
    other_server.openai_api_key = None  # it would take any key (or none) it is sent
    at = open_page("pages/settings.py")
    at.text_input(key="settings.openai_base_url").set_value(other_server.openai_base_url).run()

    run_compare(at, "Hello", ["openai_compatible:gpt-5-nano"])

    assert not at.exception
    completions = [r for r in other_server.requests if r.path.endswith("/chat/completions")]
    assert completions, "the run went to the URL typed in Settings"
    assert all(ENV_KEY not in key for key in sent_keys(other_server)), sent_keys(other_server)
    assert not [r for r in openai_configured.requests if r.path.endswith("/chat/completions")]


def test_an_openai_compatible_key_typed_in_settings_is_sent_to_its_url(
    openai_configured: FakeElumenta, other_server: FakeElumenta
) -> None:
    other_server.openai_api_key = TYPED_KEY
    at = open_page("pages/settings.py")
    at.text_input(key="settings.openai_base_url").set_value(other_server.openai_base_url)
    at.text_input(key="settings.openai_api_key").set_value(TYPED_KEY).run()

    run_compare(at, "Hello", ["openai_compatible:gpt-5-nano"])

    assert not at.exception and not texts(at, "error")
    completions = [r for r in other_server.requests if r.path.endswith("/chat/completions")]
    assert {r.headers.get("authorization") for r in completions} == {f"Bearer {TYPED_KEY}"}


def test_the_environment_openai_key_goes_to_its_own_url() -> None:
    settings = runtime.get_settings().model_copy(
        update={"openai_base_url": "http://127.0.0.1:1/v1", "openai_api_key": SecretStr(ENV_KEY)}
    )
    own = build_providers(settings, load_catalog(), demo_spent=None)["openai_compatible"]
    other = build_providers(
        settings, load_catalog(), openai_base_url="http://127.0.0.1:2/v1", demo_spent=None
    )["openai_compatible"]
    assert own._auth_headers() == {"Authorization": f"Bearer {ENV_KEY}"}  # type: ignore[attr-defined]
    assert other._auth_headers() == {}  # type: ignore[attr-defined]
