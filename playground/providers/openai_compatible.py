"""Any OpenAI-style ``/chat/completions`` endpoint (Ollama, vLLM, OpenRouter, LM Studio).

Lets users put local or third-party models beside Elumenta ones. There is no billing-token
price for these models, so ``tokens_used`` stays ``None``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import SecretStr

from playground.catalog import ModelInfo
from playground.errors import RateLimitInfo, StreamErrorEvent
from playground.providers._http import RetryPolicy, Sleep
from playground.providers.base import Balance, ContentDelta, Generation, StreamStarted
from playground.providers.http_base import HTTPProvider, StreamProgress


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


class OpenAICompatibleProvider(HTTPProvider):
    """Streams from ``{base_url}/chat/completions`` with an optional bearer key."""

    name = "openai_compatible"
    label = "OpenAI-compatible"
    target = "the OpenAI-compatible server"
    stream_path = "/chat/completions"
    generate_path = "/chat/completions"

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
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_connections=max_connections,
            retry=retry,
            sleep=sleep,
        )
        self._model_names = model_names

    def models(self) -> list[ModelInfo]:
        """The configured model names (no price: these are not billed in Elumenta tokens)."""
        return [
            ModelInfo(slug=name, name=name, tier="external", token_cost=0)
            for name in self._model_names
        ]

    def read_event(
        self, payload: dict[str, Any], event_name: str, progress: StreamProgress
    ) -> ContentDelta | StreamStarted | StreamErrorEvent | None:
        """``choices[0].delta.content`` of one chunk; an ``error`` object is raised."""
        text = parse_chunk(payload)
        return ContentDelta(text) if text else None

    def parse_generation(
        self, payload: dict[str, Any], rate_limit: RateLimitInfo | None
    ) -> Generation:
        """A non-streamed ``chat.completion``."""
        choices = payload.get("choices") or [{}]
        message = choices[0].get("message") or {}
        return Generation(
            content=str(message.get("content") or ""),
            generation_id=payload.get("id"),
            rate_limit=rate_limit,
        )

    async def balance(self) -> Balance:
        """OpenAI-compatible servers have no billing-token balance."""
        return Balance(token_balance=None, plan=None)
