"""The OpenAI-compatible provider against the fake's ``/openai/v1`` endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from playground import errors
from playground.catalog import TokenPrice, load_catalog
from playground.presenters.compare import status_label
from playground.presenters.history import models_cell
from playground.providers._http import RetryPolicy
from playground.providers.base import (
    ContentDelta,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamFinished,
)
from playground.providers.elumenta import ElumentaProvider
from playground.providers.openai_compatible import OpenAICompatibleProvider
from playground.results import CompareRequest, ModelTarget
from playground.runner import Runner
from playground.store import Store, StoreRecorder
from playground.store.repository import get_comparison
from tests.fake_elumenta import FakeElumenta, ModelScript


@pytest.fixture
def runner() -> Iterator[Runner]:
    runner = Runner(load_catalog())
    yield runner
    runner.close()


def make_provider(
    fake: FakeElumenta, key: str | None = "sk-local", **prices: TokenPrice
) -> OpenAICompatibleProvider:
    fake.openai_api_key = key
    return OpenAICompatibleProvider(
        base_url=fake.openai_base_url,
        api_key=SecretStr(key) if key else None,
        model_names=["llama3", "qwen2.5"],
        prices=prices,
        retry=RetryPolicy(max_retries=1, base_backoff_s=0.01),
    )


async def stream_text(provider: OpenAICompatibleProvider, model: str) -> str:
    request = GenerationRequest(model=model, messages=(Message("user", "hi"),), system_prompt="s")
    try:
        return "".join(
            [e.text async for e in provider.stream(request) if isinstance(e, ContentDelta)]
        )
    finally:
        await provider.aclose()


async def test_streams_chat_completion_chunks(fake_elumenta: FakeElumenta) -> None:
    fake_elumenta.script("llama3", ModelScript(text="local llama says hi ✓", split_bytes=2))
    text = await stream_text(make_provider(fake_elumenta), "llama3")
    assert text == "local llama says hi ✓"
    (sent,) = [r for r in fake_elumenta.requests if r.path.endswith("/chat/completions")]
    assert sent.headers["authorization"] == "Bearer sk-local"
    assert sent.json["messages"][0] == {"role": "system", "content": "s"}
    assert sent.json["stream"] is True


async def test_wrong_key_is_an_authentication_error(fake_elumenta: FakeElumenta) -> None:
    provider = make_provider(fake_elumenta)
    fake_elumenta.openai_api_key = "sk-other"
    with pytest.raises(errors.AuthenticationError):
        await stream_text(provider, "llama3")


def test_local_models_run_beside_elumenta_in_one_comparison(
    runner: Runner, fake_elumenta: FakeElumenta
) -> None:
    local = make_provider(fake_elumenta, key=None)
    elumenta = ElumentaProvider(
        api_key=SecretStr(fake_elumenta.api_key),
        base_url=fake_elumenta.base_url,
        catalog=load_catalog(),
    )
    fake_elumenta.script("qwen2.5", ModelScript(text="from qwen"))
    fake_elumenta.script("gpt-5-nano", ModelScript(text="from elumenta"))
    request = CompareRequest(
        messages=(Message("user", "hi"),),
        targets=(
            ModelTarget("openai_compatible", "qwen2.5"),
            ModelTarget("elumenta", "gpt-5-nano"),
        ),
    )
    providers = {"openai_compatible": local, "elumenta": elumenta}
    qwen, nano = runner.start(request, providers).wait(30).results
    for provider in providers.values():
        runner.run_coroutine(provider.aclose())
    assert (qwen.status, qwen.content, qwen.tokens_used, qwen.price_tokens) == (
        "completed",
        "from qwen",
        None,
        None,
    )
    assert (nano.status, nano.content, nano.tokens_used) == ("completed", "from elumenta", 1)


async def test_usage_id_and_the_end_come_from_the_chunks(fake_elumenta: FakeElumenta) -> None:
    """A role-only first delta, ``stream_options.include_usage`` answered by a last chunk
    with ``choices: []``, and every chunk's ``id``, over keep-alive comments."""
    fake_elumenta.script("llama3", ModelScript(deltas=["one", " two", " three"], keepalive_every=1))
    price = TokenPrice(prompt_per_1k=1000, completion_per_1k=2000)
    provider = make_provider(fake_elumenta, llama3=price)
    request = GenerationRequest(model="llama3", messages=(Message("user", "count to three"),))
    try:
        events = [e async for e in provider.stream(request)]
    finally:
        await provider.aclose()
    finished = events[-1]
    assert isinstance(finished, StreamFinished)
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "one two three"
    assert (finished.prompt_tokens, finished.completion_tokens) == (3, 3)
    assert finished.tokens_used == 3 * 1 + 3 * 2  # billing tokens per its price
    assert finished.generation_id and finished.generation_id.startswith("chatcmpl-")
    assert not finished.truncated
    (sent,) = [r for r in fake_elumenta.requests if r.path.endswith("/chat/completions")]
    assert sent.json["stream_options"] == {"include_usage": True}


async def test_an_answer_cut_at_max_tokens_is_reported_truncated(
    fake_elumenta: FakeElumenta,
) -> None:
    fake_elumenta.script("llama3", ModelScript(deltas=["a", "b", "c", "d"]))
    provider = make_provider(fake_elumenta)
    request = GenerationRequest(
        model="llama3", messages=(Message("user", "hi"),), params=GenerationParams(max_tokens=2)
    )
    try:
        events = [e async for e in provider.stream(request)]
        whole = await provider.generate(request)
    finally:
        await provider.aclose()
    assert isinstance(events[-1], StreamFinished) and events[-1].truncated
    assert (whole.content, whole.truncated, whole.completion_tokens) == ("ab", True, 2)
    assert whole.tokens_used is None  # no price configured: not costed


async def test_the_servers_error_text_is_kept(fake_elumenta: FakeElumenta) -> None:
    """An OpenAI-shaped error body's message and code reach the user, not "HTTP 404"."""
    provider = make_provider(fake_elumenta)
    request = GenerationRequest(model="nosuch", messages=(Message("user", "hi"),))
    try:
        with pytest.raises(errors.NotFoundError) as raised:
            await provider.generate(request)
    finally:
        await provider.aclose()
    assert raised.value.message == "The model 'nosuch' does not exist."
    assert raised.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("status", "expected", "elumenta_only"),
    [
        (401, "OPENAI_COMPATIBLE_API_KEY", "Check it in Settings"),
        (500, "failed to answer", "not charged"),
    ],
)
def test_an_error_without_a_message_is_not_explained_in_elumenta_terms(
    status: int, expected: str, elumenta_only: str
) -> None:
    error = errors.error_from_response(
        status, {}, httpx.Headers(), errors.OPENAI_COMPATIBLE_MESSAGES
    )
    assert expected in error.message and elumenta_only not in error.message


def test_a_cut_answer_is_stored_and_shown_as_cut_everywhere(
    runner: Runner, fake_elumenta: FakeElumenta, store: Store
) -> None:
    fake_elumenta.script("llama3", ModelScript(deltas=["a", "b", "c", "d"]))
    local = make_provider(fake_elumenta)
    request = CompareRequest(
        messages=(Message("user", "hi"),),
        targets=(ModelTarget("openai_compatible", "llama3"),),
        params=GenerationParams(max_tokens=2),
    )
    recorder = StoreRecorder(store.engine, load_catalog().cost_of)
    handle = runner.start(request, {"openai_compatible": local}, recorder=recorder).wait(30)
    runner.run_coroutine(local.aclose())
    (live,) = handle.results
    with store.session() as session:
        (stored,) = get_comparison(session, handle.comparison_id).results
    for result in (live, stored):
        assert (result.status, result.content, result.truncated) == ("completed", "ab", True)
        assert result.to_json_dict()["truncated"] is True
        assert status_label(result) == ("Cut at max tokens", "orange")
        assert models_cell([result], {}).startswith("✂")
