"""How a batch reacts to the API's quota headers: slow down near the end, wait when used up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from playground.errors import RateLimitInfo

DEFAULT_RATE_LIMIT_PAUSE_S = 5.0


@dataclass(frozen=True)
class QuotaReaction:
    """What to do after an answer: one request at a time or not, a pause, a message."""

    slow: bool
    wait_s: float | None
    message: str | None


def quota_reaction(limits: RateLimitInfo | None, low_watermark: int) -> QuotaReaction | None:
    """The reaction to an answer's quota headers; ``None`` when it reported no hourly quota.

    At ``low_watermark`` requests left this hour or fewer, go one at a time; at 0, wait
    until the hourly reset (or a default pause when the reset time is unknown).
    """
    if limits is None or limits.remaining_hour is None:
        return None
    slow = limits.remaining_hour <= low_watermark
    if limits.remaining_hour == 0:
        wait_s = _seconds_until(limits.reset_hour) or DEFAULT_RATE_LIMIT_PAUSE_S
        return QuotaReaction(
            slow, wait_s, f"Hourly quota used up: waiting {wait_s:.0f} s for it to reset."
        )
    message = f"{limits.remaining_hour} requests left this hour: slowing down." if slow else None
    return QuotaReaction(slow, None, message)


def newer_report(seen: RateLimitInfo | None, report: RateLimitInfo | None) -> bool:
    """Whether ``report`` may replace ``seen`` as what the job knows of the hourly quota.

    Answers finish out of order: one sent early carries the count from when its response
    began. Within one hour (the same ``reset_hour``) the count only goes down, so a higher
    one is older news and must not undo a slowdown.
    """
    if report is None or report.remaining_hour is None:
        return False
    if seen is None or seen.remaining_hour is None or report.reset_hour is None:
        return True
    return report.reset_hour != seen.reset_hour or report.remaining_hour <= seen.remaining_hour


def _seconds_until(value: str | None) -> float | None:
    moment = reset_moment(value)
    return None if moment is None else max(0.0, (moment - datetime.now(UTC)).total_seconds())


def reset_moment(value: str | None) -> datetime | None:
    """When the hourly quota resets, per ``X-RateLimit-Reset-Hour``; ``None`` if unreadable.

    The API sends an ISO 8601 UTC time (``2026-03-01T13:00:00Z``); a time without an offset
    is UTC too, and Unix seconds and HTTP dates are read as well.
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        try:
            return datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
