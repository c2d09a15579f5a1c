"""One error tree for the playground, every error with a user-readable message.

Messages never contain an API key: errors are built from the API's own error body and
status, never from request headers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class PlaygroundError(Exception):
    """Base of every error the playground raises on purpose; ``str()`` is fit for a user."""


class ConfigError(PlaygroundError):
    """The configuration or a data file (catalog, settings) is unusable."""


class SchemaNewerThanCodeError(ConfigError):
    """The database was migrated by a newer release than the one running (a rollback)."""


class InvalidRequestError(PlaygroundError):
    """The user's request is invalid before anything is sent (empty prompt, bad temperature…)."""


class SignInError(PlaygroundError):
    """Hosted mode could not establish who the user is (no or untrusted identity, disabled)."""


class AccessDeniedError(PlaygroundError):
    """The signed-in user may not see or do this (another user's data, a viewer running)."""


class SpendingLimitError(PlaygroundError):
    """A per-user budget or request rate set on this server would be exceeded."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RateLimitInfo:
    """The account's request quota as the ``X-RateLimit-*`` headers reported it."""

    limit_hour: int | None = None
    remaining_hour: int | None = None
    limit_day: int | None = None
    remaining_day: int | None = None
    reset_hour: str | None = None

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimitInfo | None:
        """Parse the rate-limit headers; ``None`` when the response carries none."""
        names = {
            "limit_hour": "x-ratelimit-limit-hour",
            "remaining_hour": "x-ratelimit-remaining-hour",
            "limit_day": "x-ratelimit-limit-day",
            "remaining_day": "x-ratelimit-remaining-day",
        }
        values: dict[str, int | None] = {k: _int_or_none(headers.get(h)) for k, h in names.items()}
        reset = headers.get("x-ratelimit-reset-hour")
        if all(v is None for v in values.values()) and reset is None:
            return None
        return cls(reset_hour=reset, **values)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class APIError(PlaygroundError):
    """An error from a model provider's API or the network on the way to it.

    ``retryable``: the same request may succeed later. ``unprocessed``: the API surely did
    not process the request (it was never delivered, or refused before any work), so
    nothing was billed and sending it again cannot pay twice.
    """

    code: str = "api_error"
    retryable: bool = False
    unprocessed: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
        rate_limit: RateLimitInfo | None = None,
        unprocessed: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if unprocessed is not None:
            self.unprocessed = unprocessed
        self.status_code = status_code
        self.details = details or {}
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        # Requests sent for this answer in all, retries included (set by the retry loop).
        self.requests_sent = 1


class APIConnectionError(APIError):
    """The API could not be reached (DNS, refused connection, TLS, dropped socket)."""

    code = "connection_error"
    retryable = True


class APITimeoutError(APIConnectionError):
    """The API did not answer within the configured connect/read timeout."""

    code = "timeout"


class StreamInterruptedError(APIError):
    """The stream stopped before its end event; the text received so far is kept."""

    code = "stream_interrupted"


class StreamErrorEvent(APIError):
    """The API sent an ``error`` event inside the stream."""

    code = "stream_error"


class APIStatusError(APIError):
    """The API answered with an HTTP error status."""


class BadRequestError(APIStatusError):
    """400: the request was malformed."""

    code = "bad_request"


class AuthenticationError(APIStatusError):
    """401: the API key is wrong or expired."""

    code = "not_authenticated"


class InsufficientTokensError(APIStatusError):
    """402: the balance is too low for this model's price."""

    code = "insufficient_tokens"


class PermissionDeniedError(APIStatusError):
    """403: the plan has no API access or the model is above the plan's tier."""

    code = "insufficient_plan"


class NotFoundError(APIStatusError):
    """404: unknown model or generation."""

    code = "not_found"


class UnprocessableEntityError(APIStatusError):
    """422: a field is out of range."""

    code = "validation_error"


class RateLimitError(APIStatusError):
    """429: the hourly or daily request quota is used up; ``retry_after`` says how long to wait."""

    code = "rate_limit_exceeded"
    retryable = True
    unprocessed = True


class ProviderError(APIStatusError):
    """500: the upstream model failed; the request was not charged."""

    code = "provider_error"
    retryable = True


class ModelUnavailableError(APIStatusError):
    """503: the model is temporarily switched off."""

    code = "model_unavailable"
    retryable = True
    unprocessed = True


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientTokensError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: ProviderError,
    503: ModelUnavailableError,
}

_FRIENDLY: dict[type[APIStatusError], str] = {
    AuthenticationError: "The API key was rejected (wrong or expired). Check it in Settings.",
    InsufficientTokensError: "Not enough billing tokens on the balance for this model.",
    PermissionDeniedError: "Your plan does not allow this (API access needs VIP or Elite; "
    "some models need a higher tier).",
    RateLimitError: "Rate limit reached.",
    ProviderError: "The upstream model failed (this request was not charged).",
    ModelUnavailableError: "The model is temporarily unavailable.",
}

OPENAI_COMPATIBLE_MESSAGES: Mapping[type[APIStatusError], str] = {
    AuthenticationError: "The OpenAI-compatible server rejected the API key (wrong or missing). "
    "Set OPENAI_COMPATIBLE_API_KEY or enter it in Settings.",
    PermissionDeniedError: "The OpenAI-compatible server refused this request.",
    RateLimitError: "Rate limit reached.",
    ProviderError: "The OpenAI-compatible server failed to answer.",
    ModelUnavailableError: "The model is temporarily unavailable.",
}
"""Fallback messages for a server that is not Elumenta: no billing-token or plan talk."""
ELUMENTA_MESSAGES: Mapping[type[APIStatusError], str] = _FRIENDLY


# The API's own message is shown to the user and stored with the result: one line, and a
# misbehaving server (or OpenAI-compatible proxy) cannot fill the column with a page of text.
MAX_API_MESSAGE_CHARS = 500


def _api_message(payload: dict[str, Any]) -> str | None:
    message = payload.get("message")
    if not isinstance(message, str) or not message.strip():
        return None
    line = " ".join(message.split())
    if len(line) > MAX_API_MESSAGE_CHARS:
        line = line[: MAX_API_MESSAGE_CHARS - 1].rstrip() + "…"
    return line


def error_from_response(
    status_code: int,
    body: Any,
    headers: httpx.Headers,
    messages: Mapping[type[APIStatusError], str] = ELUMENTA_MESSAGES,
) -> APIStatusError:
    """Build the typed error for an HTTP error answer from its JSON body and headers.

    Reads Elumenta's body (``error`` code, ``message``, ``details``) and OpenAI's
    (``{"error": {"message", "type", "code"}}``, the code falling back to the type).
    Without a message in the body, ``messages`` (written for the server) gives one.

    The API's message is kept as written but on one line of at most
    :data:`MAX_API_MESSAGE_CHARS` characters; it is untrusted text (escape it for markdown).
    """
    cls = STATUS_ERRORS.get(status_code)
    if cls is None:
        cls = ProviderError if status_code >= 500 else BadRequestError
    payload = body if isinstance(body, dict) else {}
    if isinstance(payload.get("error"), dict):  # OpenAI's {"error": {"message", "type", "code"}}
        nested = payload["error"]
        code_or_type = nested.get("code") or nested.get("type")
        # A 429 keeps the playground's own code whatever the server calls it ("429",
        # "requests"...): batches recognise a rate limit by it.
        if cls is RateLimitError:
            code_or_type = None
        payload = {**nested, "error": str(code_or_type) if code_or_type else None}
    code = payload.get("error") if isinstance(payload.get("error"), str) else None
    api_message = _api_message(payload)
    raw_details = payload.get("details")
    details: dict[str, Any] = dict(raw_details) if isinstance(raw_details, dict) else {}
    retry_after = _float_or_none(payload.get("retry_after"))
    if retry_after is None:
        retry_after = _float_or_none(details.get("retry_after"))
    if retry_after is None:
        retry_after = retry_after_seconds(headers.get("retry-after"))
    for key in ("plan", "limit_hour", "limit_day"):
        if key in payload and key not in details:
            details[key] = payload[key]
    message = api_message or messages.get(cls) or f"HTTP {status_code} from the server."
    if cls is RateLimitError and retry_after is not None:
        message = f"{message} Retry in {retry_after:g} s."
    return cls(
        message,
        code=code,
        status_code=status_code,
        details=details,
        retry_after=retry_after,
        rate_limit=RateLimitInfo.from_headers(headers),
    )


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait per a ``Retry-After`` header: a number of seconds, or an HTTP date
    (RFC 9110 IMF-fixdate, also the obsolete forms) counted from ``now``; ``None`` if absent
    or unreadable. A date in the past means: retry now (0)."""
    if value is None:
        return None
    seconds = _float_or_none(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC with no claim about the local zone
        moment = moment.replace(tzinfo=UTC)
    # Whole seconds: the date has no finer resolution, and messages show the figure.
    return float(max(0, math.ceil((moment - (now or datetime.now(UTC))).total_seconds())))


def user_message(exc: BaseException) -> str:
    """A one-line message for ``exc`` fit for the UI; unexpected errors get a generic one."""
    if isinstance(exc, PlaygroundError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}). Details are in the log."
