"""The model catalog is data: loading, overriding, saving and refreshing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.catalog import (
    PACKAGED_CATALOG,
    Catalog,
    TokenPrice,
    load_catalog,
    merge_model_details,
    refresh_catalog,
    save_catalog,
)
from playground.config import load_settings
from playground.errors import ConfigError

SEED_PRICES = {
    "gpt-5-nano": 1,
    "claude-haiku-4.5": 1,
    "gemini-2.5-flash": 1,
    "deepseek-v3": 1,
    "grok-4-fast": 1,
    "gpt-5": 2,
    "deepseek-r1": 1,
    "gpt-5.2": 4,
    "claude-sonnet-4.5": 4,
    "gemini-3-pro": 3,
    "claude-opus-4.5": 6,
    "gpt-5.2-pro": 39,
}


def test_seed_catalog_has_the_twelve_documented_models_and_prices() -> None:
    catalog = load_catalog()
    assert {m.slug: m.token_cost for m in catalog} == SEED_PRICES
    assert catalog.get("gpt-5.2-pro").tier == "Basic+"  # type: ignore[union-attr]
    assert catalog.get("gpt-5-nano").tier == "Starter"  # type: ignore[union-attr]
    assert "code" in catalog.get("deepseek-r1").uses  # type: ignore[union-attr]


def test_missing_user_file_falls_back_to_the_packaged_seed(tmp_path: Path) -> None:
    assert load_catalog(tmp_path / "nope.json").slugs == load_catalog(PACKAGED_CATALOG).slugs


def test_saved_catalog_round_trips(tmp_path: Path) -> None:
    catalog = load_catalog()
    cheaper = merge_model_details(catalog.get("gpt-5"), {"token_cost": 1})  # type: ignore[arg-type]
    path = tmp_path / "sub" / "models.json"
    save_catalog(catalog.with_model(cheaper), path)
    again = load_catalog(path)
    assert again.cost_of("gpt-5") == 1
    assert again.slugs == catalog.slugs


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"models": []}), json.dumps({"models": [{"slug": "x"}]})],
)
def test_broken_catalog_file_is_a_clear_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "models.json"
    path.write_text(content)
    with pytest.raises(ConfigError):
        load_catalog(path)


async def test_refresh_keeps_old_entries_for_models_whose_lookup_failed() -> None:
    catalog = Catalog(list(load_catalog())[:3])

    async def details(slug: str) -> dict[str, object]:
        if slug == "claude-haiku-4.5":
            raise RuntimeError("boom")
        return {"token_cost": 7, "supports_streaming": False}

    refreshed, errors = await refresh_catalog(catalog, details)
    assert refreshed.cost_of("gpt-5-nano") == 7
    assert refreshed.get("gpt-5-nano").supports_streaming is False  # type: ignore[union-attr]
    assert refreshed.cost_of("claude-haiku-4.5") == 1
    assert set(errors) == {"claude-haiku-4.5"}


@pytest.mark.parametrize(
    ("prompt", "completion", "cost"),
    [(1000, 1000, 3), (1, 0, 1), (0, 0, 0), (None, None, None), (1500, None, 2)],
)
def test_a_token_price_bills_whole_tokens_rounded_up(
    prompt: int | None, completion: int | None, cost: int | None
) -> None:
    price = TokenPrice(prompt_per_1k=1.0, completion_per_1k=2.0)
    assert price.cost(prompt, completion) == cost


def test_prices_are_read_from_the_environment_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "PLAYGROUND_OPENAI_PRICES", '{"llama3": {"prompt_per_1k": 0.5, "completion_per_1k": 1}}'
    )
    assert load_settings().openai_prices == {
        "llama3": TokenPrice(prompt_per_1k=0.5, completion_per_1k=1)
    }
    monkeypatch.setenv("PLAYGROUND_OPENAI_PRICES", '{"llama3": {"prompt": 0.5}}')
    with pytest.raises(ConfigError, match="PLAYGROUND_OPENAI_PRICES"):
        load_settings()
