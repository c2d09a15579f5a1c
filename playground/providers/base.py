"""The provider interface: a request goes in, a stream of typed events comes out.

A provider knows HTTP and its API's shapes, never the database or the UI. Errors are
raised as :mod:`playground.errors` types; retries before the first content happen inside
the provider, so the runner sees one clean stream or one final error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from playground.catalog import ModelInfo
from playground.errors import InvalidRequestError, RateLimitInfo
from playground.safe_text import reject_nul

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")
MAX_TEMPERATURE = 2.0


@dataclass(frozen=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters; ``None`` means the API's default."""

    temperature: float | None = None
    max_tokens: int | None = None

    def merged(self, override: GenerationParams | None) -> GenerationParams:
        """These params with every non-``None`` field of ``override`` taking precedence."""
        if override is None:
            return self
        return GenerationParams(
            temperature=override.temperature
            if override.temperature is not None
            else self.temperature,
            max_tokens=override.max_tokens if override.max_tokens is not None else self.max_tokens,
        )

    def to_dict(self) -> dict[str, float | int]:
        """Only the parameters that are set, as sent to the API."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one model call needs: model, system prompt, conversation and params."""

    model: str
    messages: tuple[Message, ...]
    system_prompt: str = ""
    params: GenerationParams = field(default_factory=GenerationParams)
    requests_before: int = 0
    """Requests already sent for this answer by an earlier try (a batch re-queues a
    rate-limited cell): they count against the same retry budget. Not part of the request."""

    def api_messages(self) -> list[dict[str, str]]:
        """The conversation as API messages, the system prompt first when there is one."""
        out = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        out.extend({"role": m.role, "content": m.content} for m in self.messages)
        return out

    def chat_body(self, *, stream: bool) -> dict[str, Any]:
        """The JSON body both Elumenta (shape A) and OpenAI-style APIs take."""
        body: dict[str, Any] = {"model": self.model, "messages": self.api_messages()}
        body.update(self.params.to_dict())
        body["stream"] = stream
        return body

    def request_hash(self, provider: str) -> str:
        """A stable hash of what would be sent: equal hashes mean an identical request."""
        canonical = json.dumps(
            {
                "provider": provider,
                "model": self.model,
                "messages": self.api_messages(),
                "params": self.params.to_dict(),
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def validate_request(request: GenerationRequest, *, max_prompt_chars: int = 200_000) -> None:
    """Raise :class:`InvalidRequestError` with a clear message if the API would refuse it."""
    if not request.model:
        raise InvalidRequestError("Pick at least one model.")
    if not request.messages or not any(m.content.strip() for m in request.messages):
        raise InvalidRequestError("The prompt is empty: write a user message first.")
    if request.messages[-1].role != "user":
        raise InvalidRequestError("The conversation must end with a user message.")
    for message in request.messages:
        if message.role not in ROLES:
            raise InvalidRequestError(f"Unknown message role {message.role!r}.")
    reject_nul(request.system_prompt, "The system prompt")
    for position, message in enumerate(request.messages, start=1):
        last = position == len(request.messages)
        reject_nul(message.content, "The prompt" if last else f"Turn {position} ({message.role})")
    temperature = request.params.temperature
    if temperature is not None and not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise InvalidRequestError(f"Temperature must be between 0 and 2 (got {temperature:g}).")
    max_tokens = request.params.max_tokens
    if max_tokens is not None and max_tokens < 1:
        raise InvalidRequestError(f"max_tokens must be a positive number (got {max_tokens}).")
    size = len(request.system_prompt) + sum(len(m.content) for m in request.messages)
    if size > max_prompt_chars:
        raise InvalidRequestError(
            f"The prompt is {size:,} characters; the limit is {max_prompt_chars:,}. Shorten it."
        )


@dataclass(frozen=True)
class StreamStarted:
    """The API accepted the request and opened the stream."""

    generation_id: str | None = None
    rate_limit: RateLimitInfo | None = None


@dataclass(frozen=True)
class ContentDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class StreamFinished:
    """The stream ended normally; usage is whatever the API reported (``None`` if not).

    ``tokens_used`` is Elumenta's billing tokens; ``prompt_tokens``/``completion_tokens``
    are a model's own token counts, as OpenAI-style servers report them.
    """

    tokens_used: int | None = None
    balance_remaining: int | None = None
    generation_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = False
    """The model stopped at ``max_tokens`` (OpenAI's ``finish_reason: "length"``)."""


ProviderEvent = StreamStarted | ContentDelta | StreamFinished


def is_content(event: ProviderEvent) -> bool:
    """Whether ``event`` carries answer text (after which a retry is no longer allowed)."""
    return isinstance(event, ContentDelta)


@dataclass(frozen=True)
class Generation:
    """A whole (non-streamed) answer."""

    content: str
    tokens_used: int | None = None
    balance_remaining: int | None = None
    generation_id: str | None = None
    rate_limit: RateLimitInfo | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = False


@dataclass(frozen=True)
class Balance:
    """The account's balance and quota."""

    token_balance: int | None
    plan: str | None = None
    plan_expires_at: str | None = None
    rate_limit: RateLimitInfo | None = None


@runtime_checkable
class Provider(Protocol):
    """A source of model answers (Elumenta, the offline demo, an OpenAI-compatible server)."""

    name: str
    label: str

    def models(self) -> list[ModelInfo]:
        """The models this provider offers, for pickers and validation."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderEvent, None]:
        """Stream one answer: ``StreamStarted``, ``ContentDelta``s, then ``StreamFinished``.

        Raises an ``APIError`` subclass; after content arrived, an interrupted stream raises
        ``StreamInterruptedError`` or ``StreamErrorEvent`` (the caller keeps the partial text).
        """
        ...

    async def generate(self, request: GenerationRequest) -> Generation:
        """One whole answer without streaming."""
        ...

    async def balance(self) -> Balance:
        """The account's balance and remaining quota."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
