"""Per-user spending limits enforced on the server: daily/monthly billing tokens, requests/min.

Spend is read from the history, so every app process and worker sees the same figure: a
finished answer counts its ``tokens_used``, an answer still running counts the price in
force when it started (so two quick runs cannot both slip under the limit), and cached
answers count nothing. Days and months are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.access.principal import Principal
from playground.access.users import Limits
from playground.errors import SpendingLimitError
from playground.store.models import OPEN_STATUSES, Comparison, Result


@dataclass(frozen=True)
class Spend:
    """A user's billing tokens spent today and this month, and requests in the last minute."""

    today_tokens: int
    month_tokens: int
    requests_last_minute: int


def spend_of(session: Session, subject: str, *, now: datetime | None = None) -> Spend:
    """What ``subject`` has spent (see the module docstring for what counts)."""
    now = now or datetime.now(UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    minute_ago = now - timedelta(minutes=1)
    charged = sa.case(
        (Result.status.in_(OPEN_STATUSES), sa.func.coalesce(Result.price_tokens, 0)),
        else_=sa.func.coalesce(Result.tokens_used, 0),
    )
    row = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((Result.created_utc >= day_start, charged))), 0),
            sa.func.coalesce(sa.func.sum(charged), 0),
            sa.func.count().filter(Result.created_utc >= minute_ago),
        )
        .join(Comparison, Comparison.id == Result.comparison_id)
        .where(
            Comparison.owner == subject,
            Result.cached.is_(False),
            Result.created_utc >= month_start,
        )
    ).one()
    return Spend(today_tokens=int(row[0]), month_tokens=int(row[1]), requests_last_minute=row[2])


def check_spending(
    session: Session,
    principal: Principal,
    limits: Limits,
    *,
    requests: int,
    estimated_tokens: int,
    now: datetime | None = None,
) -> Spend:
    """Raise :class:`SpendingLimitError` if ``requests`` more costing ``estimated_tokens``
    would pass a limit; otherwise return the spend so far. Viewers are refused first."""
    principal.require_run()
    now = now or datetime.now(UTC)
    spend = spend_of(session, principal.subject, now=now)
    if spend.requests_last_minute + requests > limits.requests_per_minute:
        raise SpendingLimitError(
            f"Request limit reached: {limits.requests_per_minute} model requests per minute "
            f"per user ({spend.requests_last_minute} in the last minute). Try again in a minute.",
            retry_after=60.0,
        )
    for label, spent, budget, resets in (
        ("daily", spend.today_tokens, limits.daily_budget_tokens, "at midnight UTC"),
        ("monthly", spend.month_tokens, limits.monthly_budget_tokens, "on the 1st (UTC)"),
    ):
        if budget is not None and spent + estimated_tokens > budget:
            raise SpendingLimitError(
                f"Your {label} budget is {budget:,} billing tokens; you have used {spent:,} "
                f"and this needs about {estimated_tokens:,}. It resets {resets}, "
                "or an admin can raise it."
            )
    return spend
