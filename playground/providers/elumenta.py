"""The Elumenta API client: ``/generate``, ``/generate/stream`` (SSE), ``/balance``, ``/models``.

The docs describe two response shapes (``content``/``tokens_used``/string id and
``result_text``/``tokens_spent``/int id); both are read by the pure functions below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from pydantic import SecretStr

from playground.catalog import Catalog, ModelInfo
from playground.errors import AuthenticationError, RateLimitInfo, StreamErrorEvent
from playground.providers.base import (
    Balance,
    ContentDelta,
    Generation,
    StreamFinished,
    StreamStarted,
)
from playground.providers.http_base import HTTPOptions, HTTPProvider, StreamProgress


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


class ElumentaProvider(HTTPProvider):
    """Elumenta over HTTP: ``/generate``, ``/generate/stream``, ``/balance``, ``/models``."""

    name = "elumenta"
    label = "Elumenta"
    target = "the Elumenta API"
    stream_path = "/generate/stream"
    generate_path = "/generate"

    def __init__(
        self,
        *,
        api_key: SecretStr | None,
        base_url: str,
        catalog: Catalog,
        missing_key_message: str | None = None,
        **options: Unpack[HTTPOptions],
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, **options)
        self._catalog = catalog
        self._missing_key_message = missing_key_message or (
            "No Elumenta API key is configured. Set ELUMENTA_API_KEY or enter it in Settings, "
            "or use the offline demo provider."
        )

    def models(self) -> list[ModelInfo]:
        """The catalog's models."""
        return list(self._catalog)

    def _auth_headers(self) -> dict[str, str]:
        headers = super()._auth_headers()
        if not headers:
            raise AuthenticationError(self._missing_key_message, code="not_authenticated")
        return headers

    def read_event(
        self, payload: dict[str, Any], event_name: str, progress: StreamProgress
    ) -> ContentDelta | StreamStarted | StreamErrorEvent | None:
        """Elumenta's typed events: the id from ``generation_start``, usage and the end of
        the answer from ``generation_end``."""
        event = parse_stream_event(payload, event_name)
        if isinstance(event, StreamStarted):
            progress.generation_id = event.generation_id or progress.generation_id
            return event if progress.generation_id else None
        if isinstance(event, StreamFinished):
            progress.tokens_used = event.tokens_used
            progress.balance_remaining = event.balance_remaining
            progress.generation_id = event.generation_id or progress.generation_id
            progress.ended = True
            return None
        return event

    def parse_generation(
        self, payload: dict[str, Any], rate_limit: RateLimitInfo | None, model: str
    ) -> Generation:
        """Read a ``/generate`` answer in either documented shape."""
        return parse_generation(payload, rate_limit)

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
