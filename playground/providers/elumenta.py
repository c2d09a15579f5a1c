"""The Elumenta API client: ``/generate``, ``/generate/stream`` (SSE), ``/balance``, ``/models``.

The docs describe two response shapes (``content``/``tokens_used``/string id and
``result_text``/``tokens_spent``/int id); both are read by the pure functions below.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx
from httpx_sse import EventSource
from pydantic import SecretStr

from playground.catalog import Catalog, ModelInfo
from playground.errors import (
    AuthenticationError,
    RateLimitInfo,
    StreamErrorEvent,
    StreamInterruptedError,
)
from playground.providers._http import (
    USER_AGENT,
    RetryPolicy,
    Sleep,
    make_limits,
    make_timeout,
    map_transport_error,
    raise_for_status,
    read_to_end,
    stream_with_retries,
    with_retries,
)
from playground.providers.base import (
    Balance,
    ContentDelta,
    Generation,
    GenerationRequest,
    ProviderEvent,
    StreamFinished,
    StreamStarted,
    is_content,
)

log = logging.getLogger(__name__)

DONE_SENTINEL = "[DONE]"


def _optional_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _generation_id(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("id", payload.get("generation_id"))
    return None if value is None else str(value)


def _tokens(payload: Mapping[str, Any]) -> int | None:
    return _optional_int(payload.get("tokens_used", payload.get("tokens_spent")))


def parse_generation(payload: Mapping[str, Any], rate_limit: RateLimitInfo | None) -> Generation:
    """Read a ``/generate`` answer in either documented shape."""
    content = payload.get("content")
    if content is None:
        content = payload.get("result_text")
    return Generation(
        content=str(content or ""),
        tokens_used=_tokens(payload),
        balance_remaining=_optional_int(payload.get("balance_remaining")),
        generation_id=_generation_id(payload),
        rate_limit=rate_limit,
    )


def parse_stream_event(
    payload: Mapping[str, Any], event_name: str = ""
) -> StreamStarted | ContentDelta | StreamFinished | StreamErrorEvent | None:
    """Map one decoded SSE ``data`` object to an event; ``None`` for kinds we ignore.

    The kind is the JSON ``type`` field, falling back to the SSE ``event:`` name.
    """
    kind = payload.get("type") or event_name
    if kind == "content_delta":
        delta = payload.get("delta")
        if delta is None:
            delta = payload.get("content", "")
        return ContentDelta(str(delta)) if delta else None
    if kind == "generation_start":
        return StreamStarted(generation_id=_generation_id(payload))
    if kind == "generation_end":
        return StreamFinished(
            tokens_used=_tokens(payload),
            balance_remaining=_optional_int(payload.get("balance_remaining")),
            generation_id=_generation_id(payload),
        )
    if kind == "error":
        code = payload.get("error") if isinstance(payload.get("error"), str) else None
        message = str(payload.get("message") or "The model reported an error mid-stream.")
        return StreamErrorEvent(message, code=code or "stream_error")
    return None


class ElumentaProvider:
    """Elumenta over HTTP with one pooled ``httpx.AsyncClient`` (created on first use)."""

    name = "elumenta"
    label = "Elumenta"

    def __init__(
        self,
        *,
        api_key: SecretStr | None,
        base_url: str,
        catalog: Catalog,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        max_connections: int = 64,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        missing_key_message: str | None = None,
    ) -> None:
        self._api_key = api_key
        self._missing_key_message = missing_key_message or (
            "No Elumenta API key is configured. Set ELUMENTA_API_KEY or enter it in Settings, "
            "or use the offline demo provider."
        )
        self._base_url = base_url.rstrip("/")
        self._catalog = catalog
        self._timeout = make_timeout(connect_timeout_s, read_timeout_s)
        self._limits = make_limits(max_connections)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"ElumentaProvider(base_url={self._base_url!r})"

    def models(self) -> list[ModelInfo]:
        """The catalog's models."""
        return list(self._catalog)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url,
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                limits=self._limits,
            )
        return self._client

    def _auth_headers(self) -> dict[str, str]:
        key = self._api_key.get_secret_value() if self._api_key else ""
        if not key:
            raise AuthenticationError(self._missing_key_message, code="not_authenticated")
        return {"Authorization": f"Bearer {key}"}

    async def _get_json(self, path: str) -> tuple[Any, RateLimitInfo | None]:
        headers = self._auth_headers()

        async def call() -> tuple[Any, RateLimitInfo | None]:
            try:
                response = await self._http().get(path, headers=headers)
            except httpx.TransportError as exc:
                raise map_transport_error(exc, "the Elumenta API") from exc
            await raise_for_status(response)
            return response.json(), RateLimitInfo.from_headers(response.headers)

        return await with_retries(call, self._retry, self._sleep, only_unprocessed=False)

    async def balance(self) -> Balance:
        """``GET /balance``: token balance, plan and the rate-limit headers."""
        payload, rate_limit = await self._get_json("/balance")
        return Balance(
            token_balance=_optional_int(payload.get("token_balance")),
            plan=payload.get("plan"),
            plan_expires_at=payload.get("plan_expires_at"),
            rate_limit=rate_limit,
        )

    async def model_details(self, slug: str) -> dict[str, Any]:
        """``GET /models/{slug}``: current token costs and streaming support."""
        payload, _ = await self._get_json(f"/models/{slug}")
        return dict(payload) if isinstance(payload, dict) else {}

    async def generate(self, request: GenerationRequest) -> Generation:
        """``POST /generate``: the whole answer at once.

        Retried per the retry policy only when the API surely did not process the request
        (not after a read timeout or a 5xx: it may have been billed already).
        """
        headers = self._auth_headers()
        body = request.chat_body(stream=False)

        async def call() -> Generation:
            try:
                response = await self._http().post("/generate", json=body, headers=headers)
            except httpx.TransportError as exc:
                raise map_transport_error(exc, "the Elumenta API") from exc
            await raise_for_status(response)
            return parse_generation(response.json(), RateLimitInfo.from_headers(response.headers))

        return await with_retries(call, self._retry, self._sleep, only_unprocessed=True)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderEvent, None]:
        """``POST /generate/stream``; retries only before the first content arrived."""
        headers = self._auth_headers()
        headers["Accept"] = "text/event-stream"
        body = request.chat_body(stream=True)
        async for event in stream_with_retries(
            lambda: self._stream_once(body, headers), is_content, self._retry, self._sleep
        ):
            yield event

    async def _stream_once(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncGenerator[ProviderEvent, None]:
        received_content = False
        finished: StreamFinished | None = None
        generation_id: str | None = None
        try:
            async with self._http().stream(
                "POST", "/generate/stream", json=body, headers=headers
            ) as response:
                await raise_for_status(response)
                rate_limit = RateLimitInfo.from_headers(response.headers)
                yield StreamStarted(rate_limit=rate_limit)
                events = EventSource(response).aiter_sse()
                async for sse in events:
                    data = sse.data.strip()
                    if data == DONE_SENTINEL:
                        await read_to_end(events)
                        break
                    if not data:
                        continue
                    event = _decode_event(data, sse.event)
                    if isinstance(event, StreamErrorEvent):
                        raise event
                    if isinstance(event, ContentDelta):
                        received_content = True
                        yield event
                    elif isinstance(event, StreamStarted):
                        generation_id = event.generation_id or generation_id
                        if generation_id:
                            yield StreamStarted(generation_id=generation_id, rate_limit=rate_limit)
                    elif isinstance(event, StreamFinished):
                        finished = event
                else:
                    # The body ended without [DONE]: only a generation_end proves it is complete.
                    if finished is None:
                        raise StreamInterruptedError(
                            "The connection closed before the answer was complete."
                        )
        except httpx.TransportError as exc:
            if not received_content and finished is None:
                raise map_transport_error(exc, "the Elumenta API") from exc
            raise StreamInterruptedError(
                f"The connection dropped mid-answer ({type(exc).__name__}); "
                "the text received so far is kept.",
                code="timeout" if isinstance(exc, httpx.TimeoutException) else None,
            ) from exc
        yield finished or StreamFinished(generation_id=generation_id)

    async def aclose(self) -> None:
        """Close the pooled HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _decode_event(
    data: str, event_name: str
) -> StreamStarted | ContentDelta | StreamFinished | StreamErrorEvent | None:
    try:
        payload = json.loads(data)
    except json.JSONDecodeError:
        log.warning("Skipping an SSE event whose data is not JSON (%d chars)", len(data))
        return None
    if not isinstance(payload, dict):
        return None
    return parse_stream_event(payload, event_name)
