"""Both HTTP providers (Elumenta, OpenAI-compatible) through the same fake-server scenarios.

Each scenario runs once per provider against its endpoint of the fake server over real
HTTP: the SSE loop, the retry rules and the error mapping are one base's, so they must
behave alike.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from playground import errors
from playground.catalog import load_catalog
from playground.providers._http import RetryPolicy, shared_ssl_context
from playground.providers.base import (
    ContentDelta,
    GenerationRequest,
    Message,
    ProviderEvent,
    StreamFinished,
)
from playground.providers.elumenta import ElumentaProvider
from playground.providers.http_base import HTTPProvider
from playground.providers.openai_compatible import OpenAICompatibleProvider
from tests.fake_elumenta import FakeElumenta, ModelScript

MODEL = "gpt-5"
UNICODE_TEXT = "Привет, мир — café naïve 🎉 日本語 ok"


@dataclass(frozen=True)
class Case:
    """One provider and the paths it calls on the fake server."""

    build: Callable[..., HTTPProvider]
    stream_path: str
    generate_path: str

    def make(self, fake: FakeElumenta, **kwargs: Any) -> HTTPProvider:
        options: dict[str, Any] = {
            "retry": RetryPolicy(max_retries=2, max_wait_s=1.0, base_backoff_s=0.01)
        }
        options.update(kwargs)
        return self.build(fake, **options)

    def streams(self, fake: FakeElumenta) -> list[Any]:
        return [r for r in fake.requests if r.path.endswith(self.stream_path)]

    def generates(self, fake: FakeElumenta) -> int:
        return sum(r.path.endswith(self.generate_path) for r in fake.requests)


def _elumenta(fake: FakeElumenta, **kwargs: Any) -> HTTPProvider:
    options: dict[str, Any] = {"api_key": SecretStr(fake.api_key), "base_url": fake.base_url}
    options.update(kwargs)
    return ElumentaProvider(catalog=load_catalog(), **options)


def _openai_compatible(fake: FakeElumenta, **kwargs: Any) -> HTTPProvider:
    fake.openai_api_key = "sk-local"
    options: dict[str, Any] = {"api_key": SecretStr("sk-local"), "base_url": fake.openai_base_url}
    options.update(kwargs)
    return OpenAICompatibleProvider(model_names=[MODEL], **options)


CASES = {
    "elumenta": Case(_elumenta, "/generate/stream", "/generate"),
    "openai_compatible": Case(_openai_compatible, "/chat/completions", "/chat/completions"),
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


def ask() -> GenerationRequest:
    return GenerationRequest(model=MODEL, messages=(Message("user", "Say hi"),), system_prompt="s")


async def collect(
    provider: HTTPProvider, request: GenerationRequest | None = None
) -> tuple[list[ProviderEvent], str, errors.APIError | None]:
    events: list[ProviderEvent] = []
    error: errors.APIError | None = None
    try:
        async for event in provider.stream(request or ask()):
            events.append(event)
    except errors.APIError as exc:
        error = exc
    finally:
        await provider.aclose()
    text = "".join(e.text for e in events if isinstance(e, ContentDelta))
    return events, text, error


async def test_streams_one_after_another_reuse_one_connection(
    fake_elumenta: FakeElumenta, case: Case
) -> None:
    provider = case.make(fake_elumenta)
    for _ in range(3):
        events = [e async for e in provider.stream(ask())]
        assert isinstance(events[-1], StreamFinished)
    await provider.aclose()
    streamed = case.streams(fake_elumenta)
    assert len(streamed) == 3
    assert len({r.client for r in streamed}) == 1


async def test_many_streams_at_once_reuse_their_connections_in_the_next_round(
    fake_elumenta: FakeElumenta, case: Case
) -> None:
    """A provider allowed 40 streams runs them all at once, and the next 40 go out on the
    same connections (httpcore closes an idle connection once its pool holds more than
    its keep-alive count in all: one pool of 40 kept only 16 and reconnected for the rest)."""
    fake_elumenta.script("*", ModelScript(text="one two three"))
    provider = case.make(fake_elumenta, max_connections=40)

    async def answer(all_streaming: asyncio.Barrier) -> None:
        events: list[ProviderEvent] = []
        async for event in provider.stream(ask()):
            if isinstance(event, ContentDelta) and not any(
                isinstance(e, ContentDelta) for e in events
            ):
                await all_streaming.wait()  # no stream ends before all 40 have started
            events.append(event)
        assert isinstance(events[-1], StreamFinished)

    try:
        for _ in range(2):
            barrier = asyncio.Barrier(40)
            await asyncio.gather(*(answer(barrier) for _ in range(40)))
    finally:
        await provider.aclose()
    streamed = case.streams(fake_elumenta)
    assert len(streamed) == 80
    first, second = streamed[:40], streamed[40:]
    # Each round's 40 requests were all in flight together, on 40 connections.
    assert len({r.client for r in first}) == len({r.client for r in second}) == 40
    assert {r.client for r in second} == {r.client for r in first}


async def test_providers_load_the_tls_certificates_once_per_process(
    fake_elumenta: FakeElumenta, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the CA bundle costs ~50 ms: a provider with many pools (128 streams: eight)
    must not load it per pool, nor a second provider again, before its first request."""
    loads: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        load(self, *args, **kwargs)

    shared_ssl_context.cache_clear()
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    fake_elumenta.script("*", ModelScript(text="one two"))
    for _ in range(2):
        provider = case.make(fake_elumenta, max_connections=128)
        try:
            events = [event async for event in provider.stream(ask())]
        finally:
            await provider.aclose()
        assert isinstance(events[-1], StreamFinished)
    assert len(loads) == 1


@pytest.mark.parametrize(
    "script",
    [
        ModelScript(text=UNICODE_TEXT, line_ending="\r\n"),
        ModelScript(text=UNICODE_TEXT, keepalive_every=1),
        ModelScript(text=UNICODE_TEXT, sse_event_field=True, sse_id_field=True),
        ModelScript(text=UNICODE_TEXT, multiline_data=True),
        ModelScript(text=UNICODE_TEXT, split_bytes=1),
        ModelScript(text=UNICODE_TEXT, split_bytes=3, line_ending="\r\n", keepalive_every=2),
        ModelScript(text=UNICODE_TEXT, events_per_write=50),
    ],
    ids=["crlf", "keepalive", "event-id-fields", "multiline-data", "1-byte", "mixed", "batched"],
)
async def test_wire_quirks_give_exactly_the_same_text(
    fake_elumenta: FakeElumenta, case: Case, script: ModelScript
) -> None:
    fake_elumenta.script(MODEL, script)
    events, text, error = await collect(case.make(fake_elumenta))
    assert error is None
    assert text == UNICODE_TEXT
    assert isinstance(events[-1], StreamFinished)


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_dropped_connection_keeps_partial_text(
    fake_elumenta: FakeElumenta, case: Case, reset: bool
) -> None:
    script = ModelScript(deltas=["one ", "two ", "three ", "four"], drop_after_deltas=2)
    script.drop_with_reset = reset
    fake_elumenta.script(MODEL, script)
    _, text, error = await collect(case.make(fake_elumenta))
    assert text == "one two "
    assert isinstance(error, errors.StreamInterruptedError)
    assert len(case.streams(fake_elumenta)) == 1


async def test_error_event_mid_stream(fake_elumenta: FakeElumenta, case: Case) -> None:
    fake_elumenta.script(
        MODEL,
        ModelScript(deltas=["a", "b", "c"], error_event_after=2, error_message="upstream died"),
    )
    _, text, error = await collect(case.make(fake_elumenta))
    assert text == "ab"
    assert isinstance(error, errors.StreamErrorEvent)
    assert "upstream died" in str(error)


async def test_read_timeout_after_content_is_an_interruption(
    fake_elumenta: FakeElumenta, case: Case
) -> None:
    fake_elumenta.script(MODEL, ModelScript(deltas=["x", "y", "z"], hang_after_deltas=1))
    _, text, error = await collect(case.make(fake_elumenta, read_timeout_s=0.3))
    assert text == "x"
    assert isinstance(error, errors.StreamInterruptedError)
    assert error.code == "timeout"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (429, "rate_limit_exceeded", errors.RateLimitError),
        (500, "provider_error", errors.ProviderError),
        (503, "model_unavailable", errors.ModelUnavailableError),
    ],
)
async def test_server_errors_are_retried_up_to_the_cap(
    fake_elumenta: FakeElumenta, case: Case, status: int, code: str, cls: type[errors.APIError]
) -> None:
    fake_elumenta.script(MODEL, ModelScript(status=status, error_code=code, retry_after_s=0.01))
    _, _, error = await collect(case.make(fake_elumenta))
    assert type(error) is cls
    assert len(case.streams(fake_elumenta)) == 3


async def test_429_then_success_waits_retry_after(fake_elumenta: FakeElumenta, case: Case) -> None:
    fake_elumenta.script(
        MODEL,
        ModelScript(text="finally", fail_first=[(429, "rate_limit_exceeded")], retry_after_s=0.2),
    )
    started = time.perf_counter()
    _, text, error = await collect(case.make(fake_elumenta))
    assert error is None and text == "finally"
    assert time.perf_counter() - started >= 0.2
    first, second = case.streams(fake_elumenta)
    assert second.received_at - first.received_at >= 0.19


async def test_retry_after_longer_than_the_cap_is_not_waited_for(
    fake_elumenta: FakeElumenta, case: Case
) -> None:
    fake_elumenta.script(MODEL, ModelScript(status=429, retry_after_s=120))
    _, _, error = await collect(case.make(fake_elumenta))
    assert isinstance(error, errors.RateLimitError)
    assert error.retry_after == 120
    assert len(case.streams(fake_elumenta)) == 1


async def generate_error(fake: FakeElumenta, case: Case, **kwargs: Any) -> errors.APIError:
    """The error a non-streamed request ends with (after any retries)."""
    provider = case.make(fake, **kwargs)
    try:
        with pytest.raises(errors.APIError) as raised:
            await provider.generate(ask())
    finally:
        await provider.aclose()
    return raised.value


@pytest.mark.parametrize(
    ("script", "read_timeout_s"),
    [
        (ModelScript(text="never", hang_after_deltas=0), 0.3),
        (ModelScript(deltas=["a", "b"], drop_after_deltas=1), 5.0),
        (ModelScript(deltas=["a", "b"], drop_after_deltas=1, drop_with_reset=True), 5.0),
        (ModelScript(fail_first=[(500, "provider_error")]), 5.0),
    ],
    ids=["hang", "dropped", "reset", "500"],
)
async def test_a_generate_the_server_may_have_processed_is_never_sent_again(
    fake_elumenta: FakeElumenta, case: Case, script: ModelScript, read_timeout_s: float
) -> None:
    fake_elumenta.script(MODEL, script)
    error = await generate_error(fake_elumenta, case, read_timeout_s=read_timeout_s)
    assert not error.unprocessed
    assert case.generates(fake_elumenta) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_a_generate_refused_before_any_work_is_retried(
    fake_elumenta: FakeElumenta, case: Case, status: int
) -> None:
    code = "rate_limit_exceeded" if status == 429 else "model_unavailable"
    fake_elumenta.script(
        MODEL, ModelScript(text="second time", fail_first=[(status, code)], retry_after_s=0.05)
    )
    provider = case.make(fake_elumenta)
    try:
        generation = await provider.generate(ask())
    finally:
        await provider.aclose()
    assert generation.content == "second time"
    assert case.generates(fake_elumenta) == 2
