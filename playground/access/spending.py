"""Per-user spending limits enforced on the server: daily/monthly billing tokens, requests/min.

Spend is read from the history, so every app process and worker sees the same figure: a
finished answer counts its ``tokens_used``, an answer still running counts the price in
force when it started (so two quick runs cannot both slip under the limit), cached
answers count nothing, and an LLM judge's grading of a batch's answers counts on the day
it graded them (requests per minute count answers only). Days and months are UTC.
:func:`check_spending` refuses a run that would pass a limit; a :class:`SpendingGate` keeps
a long one (a batch) within the limits while it runs.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.access.users import Limits, limits_of_subject
from playground.config import Settings
from playground.errors import SpendingLimitError
from playground.principal import Principal
from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.models import OPEN_STATUSES, Comparison, Result

GATE_REFRESH_S = 1.0
GATE_SLICE = 8


@dataclass(frozen=True)
class Spend:
    """A user's billing tokens spent today and this month, and requests in the last minute."""

    today_tokens: int
    month_tokens: int
    requests_last_minute: int


def spend_of(session: Session, subject: str, *, now: datetime | None = None) -> Spend:
    """What ``subject`` has spent (see the module docstring for what counts)."""
    spend = spend_query(subject, now=now)
    return spend_from(session.execute(_spend_select(), spend.params).one())


@dataclass(frozen=True)
class SpendQuery:
    """A user's spend as a one-row subquery (:func:`spend_from` reads its columns) and the
    values of its bound parameters, to pass with the statement that reads it."""

    subquery: sa.Subquery
    params: dict[str, Any]


def spend_query(subject: str, *, now: datetime | None = None) -> SpendQuery:
    """``subject``'s spend: join :attr:`SpendQuery.subquery` into another statement and run
    that with :attr:`SpendQuery.params` to read the spend in the same round trip.

    The subquery is one object for every user and moment (:func:`_spend_subquery`): every
    page run reads the spend, and building the statement and its cache key took longer
    than the database took to answer it.
    """
    now = now or datetime.now(UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return SpendQuery(
        _spend_subquery(),
        {
            "spend_subject": subject,
            "spend_day": day_start,
            "spend_month": day_start.replace(day=1),
            "spend_minute": now - timedelta(minutes=1),
        },
    )


@functools.cache
def _spend_subquery() -> sa.Subquery:
    """The statement of :func:`spend_query`, its values bound parameters."""
    subject = sa.bindparam("spend_subject", type_=sa.String())
    day_start, month_start = (
        sa.bindparam(name, type_=Result.created_utc.type) for name in ("spend_day", "spend_month")
    )
    charged = sa.case(
        (Result.status.in_(OPEN_STATUSES), sa.func.coalesce(Result.price_tokens, 0)),
        else_=sa.func.coalesce(Result.tokens_used, 0),
    )
    # The answers' sums, and the judge's spend as two scalar subqueries: one scan.
    return (
        sa.select(
            sa.func.coalesce(
                sa.func.sum(sa.case((Result.created_utc >= day_start, charged))), 0
            ).label("spend_answers_today"),
            sa.func.coalesce(sa.func.sum(charged), 0).label("spend_answers_month"),
            sa.func.count()
            .filter(
                Result.created_utc >= sa.bindparam("spend_minute", type_=Result.created_utc.type)
            )
            .label("spend_requests_last_minute"),
            _judge_spent(subject, "spend_day").label("spend_judge_today"),
            _judge_spent(subject, "spend_month").label("spend_judge_month"),
        )
        .join(Comparison, Comparison.id == Result.comparison_id)
        .where(
            Comparison.owner == subject,
            Result.cached.is_(False),
            Result.created_utc >= month_start,
        )
        .subquery("spend")
    )


@functools.cache
def _spend_select() -> sa.Select[Any]:
    return sa.select(_spend_subquery())


def spend_from(row: Sequence[Any]) -> Spend:
    """The :class:`Spend` in the columns of :func:`spend_query`, in their order."""
    answers_today, answers_month, last_minute, judge_today, judge_month = row
    return Spend(
        today_tokens=int(answers_today) + int(judge_today),
        month_tokens=int(answers_month) + int(judge_month),
        requests_last_minute=int(last_minute),
    )


def _judge_spent(subject: sa.BindParameter[str], since: str) -> sa.ScalarSelect[int]:
    """What the LLM judge charged for ``subject``'s batches since the parameter ``since``."""
    return (
        sa.select(sa.func.coalesce(sa.func.sum(BatchCellRow.judge_tokens), 0))
        .join(BatchRow, BatchRow.id == BatchCellRow.batch_id)
        .where(
            BatchRow.owner == subject,
            BatchCellRow.judged_utc >= sa.bindparam(since, type_=BatchCellRow.judged_utc.type),
        )
        .scalar_subquery()
    )


def check_spending(
    session: Session,
    principal: Principal,
    limits: Limits,
    *,
    requests: int,
    estimated_tokens: int,
    now: datetime | None = None,
    spend_so_far: Spend | None = None,
) -> Spend:
    """Raise :class:`SpendingLimitError` if ``requests`` more costing ``estimated_tokens``
    would pass a limit; otherwise return the spend so far (``spend_so_far``: read by the caller
    in this transaction, else read here). Viewers are refused first."""
    principal.require_run()
    spend = (
        spend_so_far
        if spend_so_far is not None
        else spend_of(session, principal.subject, now=now or datetime.now(UTC))
    )
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


@dataclass(frozen=True)
class Admission:
    """How many of the offered requests may go now; if none, wait or pause, and why."""

    rows: int
    wait_s: float = 0.0
    pause: bool = False
    message: str = ""


class SpendingGate:
    """Keeps a long run (a batch of thousands of requests) within its owner's limits.

    The budgets pause it: rows of requests are admitted only while the owner's spend,
    counted like :func:`spend_of` (in-flight answers at their price), stays within them.
    The request rate slows it: a row waits until the last minute's requests leave room.

    :func:`spend_of` sums a month of the owner's history, too heavy to run for every
    cell, so the gate reads it at most every :data:`GATE_REFRESH_S` and adds what it
    admitted since (exact for this process: the runner records a request's price before
    it returns). Other processes spending for the same owner show up at the next read; so
    that they cannot together overshoot meanwhile, each admits at most 1/:data:`GATE_SLICE`
    of what was left before it reads again: up to that many processes stay within the
    budget, and the last few requests each get a fresh read.
    """

    def __init__(
        self, subject: str, settings: Settings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.subject = subject
        self._settings = settings
        self._clock = clock
        self._read_at: float | None = None
        self._spend = Spend(0, 0, 0)
        self._limits = Limits(None, None, settings.default_requests_per_minute)
        self._admitted_requests = 0  # since the last read
        self._admitted_tokens = 0

    def admit(
        self, session: Session, rows: Sequence[tuple[int, int]], *, settling: bool
    ) -> Admission:
        """How many leading ``rows`` (each: requests, billing tokens) may be sent now.

        None fits: wait and ask again for the request rate; for a budget, pause, or wait
        when ``settling`` (this process has answers in flight, whose final cost may be
        below the price they reserve).
        """
        if not rows:
            return Admission(0)
        fresh = self._read_at is None or self._clock() - self._read_at >= GATE_REFRESH_S
        if fresh:
            self._read(session)
        count, blocker = self._fitting(rows)
        if not count and blocker != "rate" and not fresh:
            self._read(session)
            count, blocker = self._fitting(rows)
        if count:
            self._admitted_requests += sum(requests for requests, _ in rows[:count])
            self._admitted_tokens += sum(tokens for _, tokens in rows[:count])
            return Admission(count)
        if blocker == "rate":
            assert self._read_at is not None
            wait_s = max(0.05, self._read_at + GATE_REFRESH_S - self._clock())
            return Admission(0, wait_s=wait_s, message=self._rate_message())
        if settling:
            return Admission(
                0, wait_s=GATE_REFRESH_S, message=self._budget_message(rows[0][1], settling)
            )
        return Admission(0, pause=True, message=self._budget_message(rows[0][1], settling))

    def budget_left(self, session: Session) -> int | None:
        """Billing tokens the owner may still spend now (fresh from the history; never
        negative), or ``None`` without a budget: what a batch's judge may use."""
        self._read(session)
        left = self._budget_left()
        return None if left is None else max(0, left)

    def budget_message(self, session: Session, needed: int) -> str:
        """Why a batch pauses at the owner's budget (spend read afresh), when the next work
        needs ``needed``."""
        self._read(session)
        return self._budget_message(needed, settling=False)

    def _read(self, session: Session) -> None:
        self._limits = limits_of_subject(session, self.subject, self._settings)
        self._spend = spend_of(session, self.subject)
        self._read_at = self._clock()
        self._admitted_requests = self._admitted_tokens = 0

    def _fitting(self, rows: Sequence[tuple[int, int]]) -> tuple[int, str | None]:
        """How many leading rows fit, and what stops the next: rate, budget or slice."""
        rate_left = self._limits.requests_per_minute - self._spend.requests_last_minute
        budget_left = self._budget_left()
        requests, tokens = self._admitted_requests, self._admitted_tokens
        for count, (row_requests, row_tokens) in enumerate(rows):
            # A row wider than the whole rate goes alone into an empty minute.
            alone = requests == 0 and self._spend.requests_last_minute == 0
            if requests + row_requests > rate_left and not alone:
                return count, "rate"
            if budget_left is not None:
                if tokens + row_tokens > budget_left:
                    return count, "budget"
                if tokens and tokens + row_tokens > budget_left // GATE_SLICE:
                    return count, "slice"
            requests += row_requests
            tokens += row_tokens
        return len(rows), None

    def _budget_left(self) -> int | None:
        binding = self._binding_budget()
        return None if binding is None else binding[1] - binding[2]

    def _binding_budget(self) -> tuple[str, int, int] | None:
        """The budget with the least left (label, budget, spent); ``None`` when unlimited."""
        budgets = [
            (label, budget, spent)
            for label, budget, spent in (
                ("daily", self._limits.daily_budget_tokens, self._spend.today_tokens),
                ("monthly", self._limits.monthly_budget_tokens, self._spend.month_tokens),
            )
            if budget is not None
        ]
        return min(budgets, key=lambda b: b[1] - b[2]) if budgets else None

    def _budget_message(self, needed: int, settling: bool) -> str:
        binding = self._binding_budget()
        assert binding is not None
        label, budget, spent = binding
        used = f"{spent:,} used or reserved, the next requests need {needed:,}"
        if settling:
            return (
                f"Waiting for the answers in flight: {self.subject} is at the {label} budget "
                f"of {budget:,} billing tokens ({used})."
            )
        resume = (
            "tomorrow (it resets at midnight UTC)"
            if label == "daily"
            else "next month (it resets on the 1st, UTC)"
        )
        return (
            f"Paused: {self.subject} reached the {label} budget of {budget:,} billing tokens "
            f"({used}); an admin can raise it, or resume {resume}."
        )

    def _rate_message(self) -> str:
        return (
            f"Slowed down: {self.subject} may send {self._limits.requests_per_minute} model "
            "requests per minute; more go as the last minute's requests age out."
        )
