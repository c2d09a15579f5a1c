"""Any OpenAI-style ``/chat/completions`` endpoint (Ollama, vLLM, OpenRouter, LM Studio).

Lets users put local or third-party models beside Elumenta ones. There is no billing-token
price for these models, so ``tokens_used`` stays ``None``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from httpx_sse import EventSource
from pydantic import SecretStr

from playground.catalog import ModelInfo
from playground.errors import StreamErrorEvent, StreamInterruptedError
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


def parse_chunk(payload: dict[str, Any]) -> str:
    """The text of one streamed ``chat.completion.chunk`` (empty when it carries none)."""
    if isinstance(payload.get("error"), dict | str):
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise StreamErrorEvent(str(message or "The server reported an error mid-stream."))
    choices = payload.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return str(content) if content else ""


class OpenAICompatibleProvider:
    """Streams from ``{base_url}/chat/completions`` with an optional bearer key."""

    name = "openai_compatible"
    label = "OpenAI-compatible"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | None,
        model_names: list[str],
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 120.0,
        max_connections: int = 64,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._model_names = model_names
        self._timeout = make_timeout(connect_timeout_s, read_timeout_s)
        self._limits = make_limits(max_connections)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider(base_url={self._base_url!r})"

    def models(self) -> list[ModelInfo]:
        """The configured model names (no price: these are not billed in Elumenta tokens)."""
        return [
            ModelInfo(slug=name, name=name, tier="external", token_cost=0)
            for name in self._model_names
        ]

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"User-Agent": USER_AGENT}
            if self._api_key and self._api_key.get_secret_value():
                headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
            self._client = httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, headers=headers, limits=self._limits
            )
        return self._client

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderEvent, None]:
        """Stream ``choices[0].delta.content``; retries only before the first content."""
        body = request.chat_body(stream=True)
        async for event in stream_with_retries(
            lambda: self._stream_once(body), is_content, self._retry, self._sleep
        ):
            yield event

    async def _stream_once(self, body: dict[str, Any]) -> AsyncGenerator[ProviderEvent, None]:
        received = False
        done = False
        try:
            async with self._http().stream("POST", "/chat/completions", json=body) as response:
                await raise_for_status(response)
                yield StreamStarted()
                events = EventSource(response).aiter_sse()
                async for sse in events:
                    data = sse.data.strip()
                    if data == "[DONE]":
                        done = True
                        await read_to_end(events)
                        break
                    if not data:
                        continue
                    try:
                        payload = json.loads(data)
                    except json.JSONDecodeError:
                        log.warning("Skipping a chunk that is not JSON (%d chars)", len(data))
                        continue
                    text = parse_chunk(payload) if isinstance(payload, dict) else ""
                    if text:
                        received = True
                        yield ContentDelta(text)
        except httpx.TransportError as exc:
            if not received:
                raise map_transport_error(exc, "the OpenAI-compatible server") from exc
            raise StreamInterruptedError(
                f"The connection dropped mid-answer ({type(exc).__name__})."
            ) from exc
        if not done:
            raise StreamInterruptedError("The stream ended without its [DONE] marker.")
        yield StreamFinished()

    async def generate(self, request: GenerationRequest) -> Generation:
        """A non-streamed chat completion, retried only when surely not processed."""
        body = request.chat_body(stream=False)

        async def call() -> Generation:
            try:
                response = await self._http().post("/chat/completions", json=body)
            except httpx.TransportError as exc:
                raise map_transport_error(exc, "the OpenAI-compatible server") from exc
            await raise_for_status(response)
            payload = response.json()
            choices = payload.get("choices") or [{}]
            message = choices[0].get("message") or {}
            return Generation(
                content=str(message.get("content") or ""), generation_id=payload.get("id")
            )

        return await with_retries(call, self._retry, self._sleep, only_unprocessed=True)

    async def balance(self) -> Balance:
        """OpenAI-compatible servers have no billing-token balance."""
        return Balance(token_balance=None, plan=None)

    async def aclose(self) -> None:
        """Close the pooled HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
