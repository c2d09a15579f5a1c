"""Any OpenAI-style ``/chat/completions`` endpoint (Ollama, vLLM, OpenRouter, LM Studio).

Lets users put local or third-party models beside Elumenta ones. The server's own token
counts (``prompt_tokens``/``completion_tokens``) and a cut at ``max_tokens`` are reported;
``tokens_used`` (billing tokens) is set only for a model given a price per 1,000 of its
tokens (``PLAYGROUND_OPENAI_PRICES``), else it stays ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from pydantic import SecretStr

from playground.catalog import ModelInfo, TokenPrice
from playground.errors import OPENAI_COMPATIBLE_MESSAGES, RateLimitInfo, StreamErrorEvent
from playground.providers.base import (
    Balance,
    ContentDelta,
    Generation,
    GenerationRequest,
    StreamStarted,
)
from playground.providers.http_base import HTTPOptions, HTTPProvider, StreamProgress


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_chunk(payload: dict[str, Any], progress: StreamProgress) -> str:
    """The text of one streamed ``chat.completion.chunk`` (empty when it carries none).

    Records the completion's ``id``, the ``usage`` of the last chunk (sent when asked with
    ``stream_options.include_usage``) and the ``finish_reason`` (``"length"``: cut at
    ``max_tokens``) in ``progress``; a
    chunk with ``choices: []`` or a role-only delta carries no text. Raises the in-band
    ``error`` object as :class:`StreamErrorEvent`.
    """
    error = payload.get("error")
    if isinstance(error, dict | str):
        message = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") or error.get("type") if isinstance(error, dict) else None
        raise StreamErrorEvent(
            str(message or "The server reported an error mid-stream."),
            code=str(code) if code else "stream_error",
        )
    if isinstance(payload.get("id"), str) and payload["id"]:
        progress.generation_id = payload["id"]
    usage = payload.get("usage")
    if isinstance(usage, dict):
        progress.prompt_tokens = _count(usage.get("prompt_tokens"))
        progress.completion_tokens = _count(usage.get("completion_tokens"))
    choices = payload.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    finish_reason = choices[0].get("finish_reason")
    if finish_reason:  # the answer is complete even if the body then ends without [DONE]
        progress.ended = True
        progress.truncated = finish_reason == "length"
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
    error_messages = OPENAI_COMPATIBLE_MESSAGES

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | None,
        model_names: list[str],
        prices: Mapping[str, TokenPrice] | None = None,
        **options: Unpack[HTTPOptions],
    ) -> None:
        # A local model can think for a while before its first token.
        options.setdefault("read_timeout_s", 120.0)
        super().__init__(api_key=api_key, base_url=base_url, **options)
        self._model_names = model_names
        self._prices = dict(prices or {})

    def models(self) -> list[ModelInfo]:
        """The configured model names (no per-request price: a priced model costs per token)."""
        return [
            ModelInfo(slug=name, name=name, tier="external", token_cost=0)
            for name in self._model_names
        ]

    def read_event(
        self, payload: dict[str, Any], event_name: str, progress: StreamProgress
    ) -> ContentDelta | StreamStarted | StreamErrorEvent | None:
        """``choices[0].delta.content`` of one chunk (see :func:`read_chunk`)."""
        text = read_chunk(payload, progress)
        progress.tokens_used = self.cost(
            progress.model, progress.prompt_tokens, progress.completion_tokens
        )
        return ContentDelta(text) if text else None

    def stream_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The chat body, asking for the usage in the last chunk."""
        return {**request.chat_body(stream=True), "stream_options": {"include_usage": True}}

    def parse_generation(
        self, payload: dict[str, Any], rate_limit: RateLimitInfo | None, model: str
    ) -> Generation:
        """A non-streamed ``chat.completion``, costed per :meth:`cost`."""
        choices = payload.get("choices") or [{}]
        message = choices[0].get("message") or {}
        usage: dict[str, Any] = payload["usage"] if isinstance(payload.get("usage"), dict) else {}
        prompt_tokens = _count(usage.get("prompt_tokens"))
        completion_tokens = _count(usage.get("completion_tokens"))
        return Generation(
            content=str(message.get("content") or ""),
            tokens_used=self.cost(model, prompt_tokens, completion_tokens),
            generation_id=payload.get("id"),
            rate_limit=rate_limit,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            truncated=choices[0].get("finish_reason") == "length",
        )

    def cost(
        self, model: str, prompt_tokens: int | None, completion_tokens: int | None
    ) -> int | None:
        """Billing tokens for an answer of ``model`` per its configured price; ``None``
        (not costed) without a price or without usage."""
        price = self._prices.get(model)
        return price.cost(prompt_tokens, completion_tokens) if price else None

    async def balance(self) -> Balance:
        """OpenAI-compatible servers have no billing-token balance."""
        return Balance(token_balance=None, plan=None)
