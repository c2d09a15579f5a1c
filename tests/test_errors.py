"""The error tree: every documented status maps to its type with the API's details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from playground import errors
from playground.errors import RateLimitInfo, error_from_response, user_message

DOCUMENTED = [
    (400, "bad_request", errors.BadRequestError, False),
    (401, "not_authenticated", errors.AuthenticationError, False),
    (401, "token_expired", errors.AuthenticationError, False),
    (402, "insufficient_tokens", errors.InsufficientTokensError, False),
    (403, "insufficient_plan", errors.PermissionDeniedError, False),
    (404, "not_found", errors.NotFoundError, False),
    (422, "validation_error", errors.UnprocessableEntityError, False),
    (429, "rate_limit_exceeded", errors.RateLimitError, True),
    (500, "provider_error", errors.ProviderError, True),
    (503, "model_unavailable", errors.ModelUnavailableError, True),
]


@pytest.mark.parametrize(("status", "code", "cls", "retryable"), DOCUMENTED)
def test_status_maps_to_typed_error(
    status: int, code: str, cls: type[errors.APIStatusError], retryable: bool
) -> None:
    body = {"error": code, "message": "what the API said", "details": {"field": "x"}}
    exc = error_from_response(status, body, httpx.Headers())
    assert type(exc) is cls
    assert exc.code == code
    assert exc.status_code == status
    assert exc.details == {"field": "x"}
    assert exc.retryable is retryable
    assert str(exc) == "what the API said"


def test_rate_limit_error_carries_retry_after_plan_and_headers() -> None:
    headers = httpx.Headers(
        {
            "X-RateLimit-Limit-Hour": "100",
            "X-RateLimit-Remaining-Hour": "0",
            "X-RateLimit-Limit-Day": "1000",
            "X-RateLimit-Remaining-Day": "250",
            "X-RateLimit-Reset-Hour": "2026-11-25T13:00:00Z",
        }
    )
    body = {
        "error": "rate_limit_exceeded",
        "message": "Too many requests",
        "retry_after": 12,
        "plan": "VIP",
        "limit_hour": 100,
        "limit_day": 1000,
    }
    exc = error_from_response(429, body, headers)
    assert isinstance(exc, errors.RateLimitError)
    assert exc.retry_after == 12
    assert exc.details["plan"] == "VIP"
    assert "12 s" in str(exc)
    assert exc.rate_limit == RateLimitInfo(100, 0, 1000, 250, "2026-11-25T13:00:00Z")


def test_unknown_statuses_and_garbage_bodies_still_give_typed_errors() -> None:
    assert isinstance(error_from_response(502, "<html>", httpx.Headers()), errors.ProviderError)
    assert isinstance(error_from_response(418, None, httpx.Headers()), errors.BadRequestError)
    exc = error_from_response(402, {}, httpx.Headers())
    assert "Not enough billing tokens" in str(exc)


def test_the_apis_message_is_kept_on_one_bounded_line() -> None:
    body = {"error": "server_error", "message": "line one\n\nline   two " + "x" * 5000}
    message = str(error_from_response(500, body, httpx.Headers()))
    assert message.startswith("line one line two xxx")
    assert len(message) == errors.MAX_API_MESSAGE_CHARS and message.endswith("…")
    blank = error_from_response(500, {"message": "  \n "}, httpx.Headers())
    assert str(blank) == "The upstream model failed (this request was not charged)."


def test_user_message_hides_unexpected_details() -> None:
    assert user_message(errors.RateLimitError("slow down")) == "slow down"
    message = user_message(KeyError("nb_secret"))
    assert "nb_secret" not in message
    assert "KeyError" in message


NOW = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        ("1.5", 1.5),
        ("Sun, 06 Dec 2026 08:00:30 GMT", 30.0),  # RFC 9110 IMF-fixdate
        ("Sunday, 06-Dec-26 08:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Sun Dec  6 08:00:05 2026", 5.0),  # obsolete asctime form (no zone: UTC)
        ("Sun, 06 Dec 2026 07:59:00 GMT", 0.0),  # in the past: retry now
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, seconds: float | None
) -> None:
    assert errors.retry_after_seconds(header, NOW) == seconds


def test_a_429_with_an_http_date_says_how_long_to_wait() -> None:
    moment = datetime.now(UTC) + timedelta(seconds=40)
    headers = httpx.Headers({"Retry-After": format_datetime(moment, usegmt=True)})
    exc = error_from_response(429, {"error": "rate_limit_exceeded"}, headers)
    assert exc.retry_after is not None and 39 <= exc.retry_after <= 41
    assert exc.unprocessed
