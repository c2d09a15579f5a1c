"""Error answers of the fake, in the Elumenta body format and in the OpenAI one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fake_elumenta.scripts import ModelScript
from tests.fake_elumenta.state import FakeState

#: Default ``message`` for each Elumenta error code.
MESSAGES: dict[str, str] = {
    "bad_request": "Malformed request.",
    "not_authenticated": "Invalid or missing API key.",
    "token_expired": "The API key has expired.",
    "insufficient_tokens": "Not enough tokens on the balance for this model.",
    "insufficient_plan": "API access requires the VIP or Elite plan.",
    "not_found": "Not found.",
    "validation_error": "A field is out of range.",
    "rate_limit_exceeded": "Rate limit exceeded.",
    "provider_error": "The upstream model failed; the request was not charged.",
    "model_unavailable": "The model is temporarily unavailable.",
}

_OPENAI_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class FakeApiError(Exception):
    """An HTTP error answer; raised anywhere in an endpoint, rendered by :func:`handle`."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


async def handle(request: Request, exc: Exception) -> Response:
    """Starlette exception handler turning :class:`FakeApiError` into its JSON answer."""
    assert isinstance(exc, FakeApiError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def retry_after_header(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header (whole seconds when the value is whole)."""
    return {"Retry-After": f"{seconds:g}"}


def elumenta_error(
    status: int,
    code: str,
    message: str | None = None,
    details: dict[str, Any] | None = None,
) -> FakeApiError:
    """``{"error": code, "message": ..., "details": {...}}`` with ``status``."""
    body = {"error": code, "message": message or MESSAGES.get(code, code), "details": details or {}}
    return FakeApiError(status, body)


def rate_limited(
    state: FakeState, retry_after_s: float, message: str | None = None
) -> FakeApiError:
    """429 with ``retry_after``, ``plan``, ``limit_hour``, ``limit_day`` and ``Retry-After``."""
    error = elumenta_error(429, "rate_limit_exceeded", message)
    error.body.update(
        retry_after=retry_after_s,
        plan=state.plan,
        limit_hour=state.quota_hour,
        limit_day=state.quota_day,
    )
    error.headers.update(retry_after_header(retry_after_s))
    return error


def scripted_error(state: FakeState, script: ModelScript, status: int, code: str) -> FakeApiError:
    """The Elumenta error a script asked for; 429s and 503s carry its ``retry_after_s``
    (as an HTTP date in the header alone with ``retry_after_date``)."""
    if status == 429:
        error = rate_limited(state, script.retry_after_s, script.error_message)
    else:
        error = elumenta_error(status, code, script.error_message, {"scripted": True})
        if status != 503:
            return error
        error.body["retry_after"] = script.retry_after_s
        error.headers.update(retry_after_header(script.retry_after_s))
    if script.retry_after_date:
        error.body.pop("retry_after", None)
        moment = datetime.now(UTC) + timedelta(seconds=script.retry_after_s)
        error.headers["Retry-After"] = format_datetime(moment, usegmt=True)
    return error


def openai_error(
    status: int, code: str, message: str, retry_after_s: float | None = None
) -> FakeApiError:
    """``{"error": {"message", "type", "code"}}``, the OpenAI error format."""
    error_type = _OPENAI_TYPES.get(status, "server_error")
    body = {"error": {"message": message, "type": error_type, "code": code}}
    headers = retry_after_header(retry_after_s) if retry_after_s is not None else None
    return FakeApiError(status, body, headers)
