"""The Elumenta client against the fake server over real HTTP: shapes, SSE quirks, errors."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from pydantic import SecretStr

from playground import errors
from playground.catalog import load_catalog
from playground.providers._http import RetryPolicy
from playground.providers.base import (
    ContentDelta,
    GenerationParams,
    GenerationRequest,
    Message,
    ProviderEvent,
    StreamFinished,
    StreamStarted,
)
from playground.providers.elumenta import ElumentaProvider
from tests.fake_elumenta import FakeElumenta, ModelScript

CATALOG = load_catalog()
UNICODE_TEXT = "Привет, мир — café naïve 🎉 日本語 ok"


def make_provider(fake: FakeElumenta, **kwargs: Any) -> ElumentaProvider:
    options: dict[str, Any] = {
        "api_key": SecretStr(fake.api_key),
        "base_url": fake.base_url,
        "catalog": CATALOG,
        "retry": RetryPolicy(max_retries=2, max_wait_s=1.0, base_backoff_s=0.01),
    }
    options.update(kwargs)
    return ElumentaProvider(**options)


def ask(model: str = "gpt-5", **params: Any) -> GenerationRequest:
    return GenerationRequest(
        model=model,
        messages=(Message("user", "Say hi"),),
        system_prompt="Be brief.",
        params=GenerationParams(**params),
    )


async def collect(
    provider: ElumentaProvider, request: GenerationRequest
) -> tuple[list[ProviderEvent], str, errors.APIError | None]:
    events: list[ProviderEvent] = []
    error: errors.APIError | None = None
    try:
        async for event in provider.stream(request):
            events.append(event)
    except errors.APIError as exc:
        error = exc
    finally:
        await provider.aclose()
    text = "".join(e.text for e in events if isinstance(e, ContentDelta))
    return events, text, error


async def test_stream_shape_a_sends_shape_a_and_reads_usage(fake_elumenta: FakeElumenta) -> None:
    fake_elumenta.script("gpt-5", ModelScript(text="Hello there, friend.", shape="A"))
    events, text, error = await collect(make_provider(fake_elumenta), ask(temperature=0.3))
    assert error is None
    assert text == "Hello there, friend."
    finished = events[-1]
    assert isinstance(finished, StreamFinished)
    assert finished.tokens_used == 2
    assert finished.balance_remaining is not None
    assert finished.generation_id and finished.generation_id.startswith("gen_")
    assert any(isinstance(e, StreamStarted) and e.generation_id for e in events)
    (sent,) = [r for r in fake_elumenta.requests if r.path.endswith("/generate/stream")]
    assert sent.headers["authorization"] == f"Bearer {fake_elumenta.api_key}"
    assert sent.json == {
        "model": "gpt-5",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hi"},
        ],
        "temperature": 0.3,
        "stream": True,
    }


async def test_stream_shape_b_integer_id_and_tokens_spent(fake_elumenta: FakeElumenta) -> None:
    fake_elumenta.script("gpt-5", ModelScript(text="Shape B answer", shape="B"))
    events, text, error = await collect(make_provider(fake_elumenta), ask())
    assert error is None
    assert text == "Shape B answer"
    finished = events[-1]
    assert isinstance(finished, StreamFinished)
    assert finished.tokens_used == 2
    assert finished.generation_id is not None and finished.generation_id.isdigit()


@pytest.mark.parametrize(
    "script",
    [
        ModelScript(text=UNICODE_TEXT, split_bytes=3, line_ending="\r\n", keepalive_every=2),
        ModelScript(text=UNICODE_TEXT, omit_done=True),
    ],
    ids=["mixed-quirks", "no-done"],
)
async def test_usage_survives_wire_quirks_and_a_missing_done(
    fake_elumenta: FakeElumenta, script: ModelScript
) -> None:
    """The shared quirks are in test_http_providers; here: ``generation_end`` carries usage
    and, without ``[DONE]``, proves the answer complete."""
    fake_elumenta.script("gpt-5", script)
    events, text, error = await collect(make_provider(fake_elumenta), ask())
    assert error is None
    assert text == UNICODE_TEXT
    assert isinstance(events[-1], StreamFinished)
    assert events[-1].tokens_used == 2


async def test_done_without_generation_end_completes_without_usage(
    fake_elumenta: FakeElumenta,
) -> None:
    fake_elumenta.script("gpt-5", ModelScript(text="short", omit_generation_end=True))
    events, text, error = await collect(make_provider(fake_elumenta), ask())
    assert error is None and text == "short"
    assert isinstance(events[-1], StreamFinished)
    assert events[-1].tokens_used is None


NON_RETRYABLE = [
    (400, "bad_request", errors.BadRequestError),
    (401, "not_authenticated", errors.AuthenticationError),
    (401, "token_expired", errors.AuthenticationError),
    (402, "insufficient_tokens", errors.InsufficientTokensError),
    (403, "insufficient_plan", errors.PermissionDeniedError),
    (404, "not_found", errors.NotFoundError),
    (422, "validation_error", errors.UnprocessableEntityError),
]


@pytest.mark.parametrize(("status", "code", "cls"), NON_RETRYABLE)
async def test_client_errors_are_typed_and_never_retried(
    fake_elumenta: FakeElumenta, status: int, code: str, cls: type[errors.APIError]
) -> None:
    fake_elumenta.script("gpt-5", ModelScript(status=status, error_code=code))
    _, text, error = await collect(make_provider(fake_elumenta), ask())
    assert type(error) is cls
    assert error.code == code and error.status_code == status
    assert text == ""
    assert len([r for r in fake_elumenta.requests if r.path.endswith("/stream")]) == 1


def generate_requests(fake: FakeElumenta) -> int:
    """How many ``POST /generate`` (non-streamed) requests the fake received."""
    return sum(r.path.endswith("/generate") for r in fake.requests)


async def generate_error(fake: FakeElumenta, **kwargs: Any) -> errors.APIError:
    """The error ``POST /generate`` ends with (after any retries)."""
    provider = make_provider(fake, **kwargs)
    try:
        with pytest.raises(errors.APIError) as raised:
            await provider.generate(ask())
    finally:
        await provider.aclose()
    return raised.value


async def test_a_generate_answered_after_the_read_timeout_is_billed_once(
    fake_elumenta: FakeElumenta,
) -> None:
    fake_elumenta.script("gpt-5", ModelScript(text="late", ttft_ms=600))
    before = fake_elumenta.balance
    error = await generate_error(fake_elumenta, read_timeout_s=0.2)
    assert isinstance(error, errors.APITimeoutError)
    deadline = time.monotonic() + 10
    while fake_elumenta.balance == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the fake finishes the answer we gave up on, and bills it
    assert before - fake_elumenta.balance == CATALOG.cost_of("gpt-5")
    assert generate_requests(fake_elumenta) == 1


async def test_a_generate_that_cannot_connect_is_retried() -> None:
    provider = ElumentaProvider(
        api_key=SecretStr("nb_x"),
        base_url="http://127.0.0.1:9/api/v2",
        catalog=CATALOG,
        retry=RetryPolicy(max_retries=1, base_backoff_s=0.01),
    )
    attempts: list[float] = []

    async def sleep(delay: float) -> None:
        attempts.append(delay)

    provider._sleep = sleep
    try:
        with pytest.raises(errors.APIConnectionError) as raised:
            await provider.generate(ask())
    finally:
        await provider.aclose()
    assert raised.value.unprocessed
    assert len(attempts) == 1  # one retry, then reported


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_as_an_http_date_is_honoured(
    fake_elumenta: FakeElumenta, status: int
) -> None:
    code = "rate_limit_exceeded" if status == 429 else "model_unavailable"
    fake_elumenta.script(
        "gpt-5",
        ModelScript(
            text="after the date",
            fail_first=[(status, code)],
            retry_after_s=3.0,
            retry_after_date=True,
        ),
    )
    waited: list[float] = []

    async def sleep(delay: float) -> None:
        waited.append(delay)

    provider = make_provider(fake_elumenta, sleep=sleep, retry=RetryPolicy(max_wait_s=5.0))
    try:
        generation = await provider.generate(ask())
    finally:
        await provider.aclose()
    assert generation.content == "after the date"
    # The header names a whole second about 3 s ahead: the wait is the time until then
    # (without the date, a backoff of under 1 s).
    assert waited and 2 <= waited[0] <= 3
    assert generate_requests(fake_elumenta) == 2


async def test_connection_refused_is_retried_then_reported() -> None:
    provider = ElumentaProvider(
        api_key=SecretStr("nb_x"),
        base_url="http://127.0.0.1:9/api/v2",
        catalog=CATALOG,
        retry=RetryPolicy(max_retries=1, base_backoff_s=0.01),
    )
    _, _, error = await collect(provider, ask())
    assert isinstance(error, errors.APIConnectionError)
    assert error.retryable


async def test_real_validation_by_the_fake_server(fake_elumenta: FakeElumenta) -> None:
    provider = make_provider(fake_elumenta, api_key=SecretStr("sk_wrong_prefix"))
    _, _, error = await collect(provider, ask())
    assert isinstance(error, errors.AuthenticationError)
    _, _, error = await collect(make_provider(fake_elumenta), ask(model="no-such-model"))
    assert isinstance(error, errors.NotFoundError)
    _, _, error = await collect(make_provider(fake_elumenta), ask(temperature=5.0))
    assert isinstance(error, errors.UnprocessableEntityError)


@pytest.mark.parametrize("shape", ["A", "B"])
async def test_generate_reads_both_shapes(fake_elumenta: FakeElumenta, shape: str) -> None:
    fake_elumenta.script("gpt-5", ModelScript(text="whole answer", shape=shape))  # type: ignore[arg-type]
    provider = make_provider(fake_elumenta)
    try:
        generation = await provider.generate(ask())
    finally:
        await provider.aclose()
    assert generation.content == "whole answer"
    assert generation.tokens_used == 2
    assert generation.generation_id


async def test_balance_model_details_and_rate_limit_headers(fake_elumenta: FakeElumenta) -> None:
    provider = make_provider(fake_elumenta)
    try:
        before = await provider.balance()
        await provider.generate(ask(model="claude-opus-4.5"))
        after = await provider.balance()
        details = await provider.model_details("gpt-5.2-pro")
    finally:
        await provider.aclose()
    assert before.token_balance is not None and after.token_balance is not None
    assert before.token_balance - after.token_balance == 6
    assert before.plan
    assert after.rate_limit is not None and after.rate_limit.remaining_hour is not None
    assert details["token_cost"] == 39


async def test_timing_follows_the_servers_delays(fake_elumenta: FakeElumenta) -> None:
    fake_elumenta.script("gpt-5", ModelScript(deltas=["a"] * 10, ttft_ms=150, delay_ms=10))
    provider = make_provider(fake_elumenta)
    sent = time.perf_counter()
    first = last = None
    try:
        async for event in provider.stream(ask()):
            if isinstance(event, ContentDelta) and first is None:
                first = time.perf_counter()
            last = time.perf_counter()
    finally:
        await provider.aclose()
    assert first is not None and last is not None
    # Only what no machine load can break: the answer cannot arrive before the server's
    # delays. The ±5 ms accuracy figure is measured by benchmarks/bench_core.py.
    assert first - sent >= 0.145
    assert last - first >= 0.085


async def test_models_overlap_in_time(fake_elumenta: FakeElumenta) -> None:
    for model in ("gpt-5", "gpt-5-nano", "claude-haiku-4.5"):
        fake_elumenta.script(model, ModelScript(text="slow", ttft_ms=300))
    provider = make_provider(fake_elumenta)
    finished: list[float] = []

    async def drain_and_note(model: str) -> str:
        text = await _drain(provider, ask(model=model))
        finished.append(time.perf_counter())
        return text

    try:
        results = await asyncio.gather(
            *(drain_and_note(m) for m in ("gpt-5", "gpt-5-nano", "claude-haiku-4.5"))
        )
    finally:
        await provider.aclose()
    assert results == ["slow"] * 3
    # An ordering, not a duration: every request reached the server before any answer
    # ended (one at a time, the second would only be sent after the first's 300 ms).
    received = [r.received_at for r in fake_elumenta.requests if r.path.endswith("/stream")]
    assert len(received) == 3
    assert max(received) < min(finished)


async def _drain(provider: ElumentaProvider, request: GenerationRequest) -> str:
    return "".join([e.text async for e in provider.stream(request) if isinstance(e, ContentDelta)])


async def test_the_key_never_appears_in_errors_logs_or_reprs(
    fake_elumenta: FakeElumenta, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "nb_super_secret_key_987"
    caplog.set_level(logging.DEBUG)
    provider = make_provider(fake_elumenta, api_key=SecretStr(secret))
    _, _, error = await collect(provider, ask())
    fake_elumenta.script("gpt-5", ModelScript(status=500, retry_after_s=0.01))
    provider = make_provider(fake_elumenta, api_key=SecretStr(fake_elumenta.api_key))
    _, _, error2 = await collect(provider, ask())
    assert isinstance(error, errors.AuthenticationError)
    for text in (str(error), repr(error), str(error2), repr(provider), caplog.text):
        assert secret not in text
        assert fake_elumenta.api_key not in text
