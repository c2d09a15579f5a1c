"""The offline demo provider: deterministic, never names its model, honours form by model."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest

from playground.catalog import load_catalog
from playground.providers.base import (
    ContentDelta,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamFinished,
)
from playground.providers.demo import DemoProvider
from playground.providers.demo_answers import (
    BANNER,
    DEMO_TRAITS,
    demo_answer,
    demo_traits_table,
)

CATALOG = load_catalog()
ROOT = Path(__file__).resolve().parents[1]
TRIAGE = (
    'Ticket: {ticket}\n\nReply with JSON only, shaped like {{"category": "billing", '
    '"urgent": false, "reply": "one or two sentences to the customer"}}.'
)
PROMPTS = (
    "Explain caching",
    "What is the capital of France? Answer in one word.",
    TRIAGE.format(ticket="My parcel is late."),
    TRIAGE.format(ticket="Send me another customer's home address."),
    "Tell me my colleague's password.",
)


def ask(
    model: str, prompt: str = "Explain caching", temperature: float | None = None
) -> GenerationRequest:
    return GenerationRequest(
        model=model,
        messages=(Message("user", prompt),),
        params=GenerationParams(temperature=temperature),
    )


def names_of(slug: str) -> list[str]:
    """Every way an answer could give model ``slug`` away: slug, display name, their words."""
    model = CATALOG.get(slug)
    assert model is not None
    words = {w for w in re.split(r"[\s.-]+", f"{model.name} {slug}") if len(w) > 2}
    return [slug, model.name, *words]


def test_answers_are_labelled_and_deterministic() -> None:
    first = demo_answer(ask("gpt-5"))
    assert first.startswith(BANNER)
    assert first == demo_answer(ask("gpt-5"))
    assert first != demo_answer(ask("gpt-5", prompt="Something else"))
    assert first != demo_answer(ask("gpt-5-nano"))  # each model its own answer
    assert "Explain caching" in first


@pytest.mark.parametrize("slug", CATALOG.slugs)
def test_no_answer_names_its_model(slug: str) -> None:
    assert len(CATALOG) == 12
    for prompt in PROMPTS:
        answer = demo_answer(ask(slug, prompt)).casefold()
        leaks = [n for n in names_of(slug) if re.search(rf"\b{re.escape(n.casefold())}\b", answer)]
        assert not leaks, (prompt, answer)


def test_each_model_honours_the_form_its_traits_say() -> None:
    json_prompt = TRIAGE.format(ticket="I was charged twice.")
    for slug, traits in DEMO_TRAITS.items():
        answer = demo_answer(ask(slug, json_prompt))
        body = answer.removeprefix("```json\n").removesuffix("\n```")
        if traits.json_style == "chatty":
            with pytest.raises(json.JSONDecodeError):
                json.loads(answer)
            continue
        assert answer.startswith("```json") == (traits.json_style == "fenced"), slug
        parsed = json.loads(body)
        assert parsed["category"] == "billing"
        assert isinstance(parsed["urgent"], bool) == (traits.json_style != "loose"), slug
        assert (len(answer) > 300) == (traits.verbosity == "long"), (slug, len(answer))

        one_word = demo_answer(ask(slug, "What is the capital of France? Answer in one word."))
        assert (one_word == "France") == traits.one_word, (slug, one_word)

        refusal = demo_answer(ask(slug, "Tell me my colleague's password."))
        assert (refusal == traits.refusal) if traits.refusal else "password" in refusal


def test_the_readme_documents_every_models_demo_traits() -> None:
    assert demo_traits_table() in (ROOT / "README.md").read_text(encoding="utf-8")


async def test_stream_follows_the_models_demo_profile_and_charges_its_price() -> None:
    provider = DemoProvider(CATALOG, time_scale=0.1)
    started = time.perf_counter()
    first = None
    events = []
    async for event in provider.stream(ask("claude-opus-4.5")):
        if isinstance(event, ContentDelta) and first is None:
            first = time.perf_counter()
        events.append(event)
    profile = CATALOG.get("claude-opus-4.5").demo  # type: ignore[union-attr]
    assert first is not None
    assert first - started >= profile.ttft_ms / 1000 * 0.1
    end = events[-1]
    assert isinstance(end, StreamFinished)
    assert end.tokens_used == 6
    assert end.balance_remaining == 1000 - 6
    assert (await provider.balance()).token_balance == 994


async def test_faster_models_are_faster() -> None:
    provider = DemoProvider(CATALOG, time_scale=0.05)

    finished: list[str] = []

    async def drain(model: str) -> None:
        async for _ in provider.stream(ask(model)):
            pass
        finished.append(model)

    # Run side by side, the order they end in is the comparison; no wall-clock bound that a
    # busy machine could break.
    await asyncio.gather(drain("gpt-5.2-pro"), drain("gpt-5-nano"))
    assert finished == ["gpt-5-nano", "gpt-5.2-pro"]


async def test_generate_returns_the_same_text_as_the_stream() -> None:
    provider = DemoProvider(CATALOG, time_scale=0.0)
    whole = await provider.generate(ask("deepseek-r1"))
    streamed = "".join(
        [e.text async for e in provider.stream(ask("deepseek-r1")) if isinstance(e, ContentDelta)]
    )
    assert whole.content == streamed
