"""How a batch reacts to the API's quota headers: slow down near the end, wait when used up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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


def _seconds_until(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
