"""The offline demo provider: labelled, deterministic, realistic timing, no network."""

from __future__ import annotations

import time

from playground.catalog import load_catalog
from playground.providers.base import (
    ContentDelta,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamFinished,
)
from playground.providers.demo import DemoProvider, demo_answer

CATALOG = load_catalog()


def ask(
    model: str, prompt: str = "Explain caching", temperature: float | None = None
) -> GenerationRequest:
    return GenerationRequest(
        model=model,
        messages=(Message("user", prompt),),
        params=GenerationParams(temperature=temperature),
    )


def test_answers_are_labelled_and_deterministic() -> None:
    model = CATALOG.get("gpt-5")
    assert model is not None
    first = demo_answer(model, ask("gpt-5"))
    assert first.startswith("*Demo mode: simulated answer from GPT-5; no API call was made.*")
    assert first == demo_answer(model, ask("gpt-5"))
    assert first != demo_answer(model, ask("gpt-5", prompt="Something else"))
    assert "Explain caching" in first


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

    async def duration(model: str) -> float:
        started = time.perf_counter()
        async for _ in provider.stream(ask(model)):
            pass
        return time.perf_counter() - started

    assert await duration("gpt-5-nano") < await duration("gpt-5.2-pro")


async def test_generate_returns_the_same_text_as_the_stream() -> None:
    provider = DemoProvider(CATALOG, time_scale=0.0)
    whole = await provider.generate(ask("deepseek-r1"))
    streamed = "".join(
        [e.text async for e in provider.stream(ask("deepseek-r1")) if isinstance(e, ContentDelta)]
    )
    assert whole.content == streamed
