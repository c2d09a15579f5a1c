"""Per-user spend read from the history and the limits checked before a run (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.access import Principal
from playground.access.spending import Spend, check_spending, spend_of
from playground.access.users import Limits
from playground.catalog import load_catalog
from playground.errors import AccessDeniedError, SpendingLimitError
from playground.store import Store, StoreRecorder
from playground.store.models import Result
from tests.store_fixtures import Outcome, make_request, record_run, seed_comparison, seed_result
from tests.test_access_users import user_with_role

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.replace(hour=0)
MONTH = TODAY.replace(day=1)
ANA = "ana@example.org"
UNLIMITED = Limits(daily_budget_tokens=None, monthly_budget_tokens=None, requests_per_minute=1000)


@pytest.fixture
def store(reused_store: Store) -> Store:
    """The session's migrated store on each backend, emptied for this test."""
    return reused_store


def charge(
    session: Session,
    created: datetime,
    *,
    owner: str | None = ANA,
    status: str = "completed",
    tokens_used: int | None = None,
    price_tokens: int | None = None,
    cached: bool = False,
) -> Result:
    """One answer of ``owner`` created at ``created`` with exactly these figures."""
    comparison = seed_comparison(session, created=created, owner=owner)
    result = seed_result(
        session, comparison, "gpt-5", status=status, tokens_used=tokens_used, cached=cached
    )
    result.price_tokens = price_tokens
    session.flush()
    return result


# --- spend_of ---------------------------------------------------------------------------


def test_nothing_spent_is_zero(session: Session) -> None:
    assert spend_of(session, ANA, now=NOW) == Spend(0, 0, 0)


@pytest.mark.parametrize(
    ("status", "tokens_used", "price_tokens", "charged"),
    [
        ("completed", 10, 99, 10),  # finished: what was billed, not the list price
        ("partial", 4, 99, 4),
        ("failed", 3, 99, 3),
        ("failed", None, 99, 0),  # nothing billed
        ("cancelled", 2, None, 2),
        ("interrupted", None, 99, 0),
        ("running", None, 7, 7),  # open: the price in force when it started
        ("running", 1, 7, 7),
        ("pending", None, 5, 5),
        ("pending", None, None, 0),  # a model without a known price
    ],
)
def test_what_one_answer_counts(
    session: Session, status: str, tokens_used: int | None, price_tokens: int | None, charged: int
) -> None:
    charge(
        session,
        NOW - timedelta(hours=1),
        status=status,
        tokens_used=tokens_used,
        price_tokens=price_tokens,
    )
    spend = spend_of(session, ANA, now=NOW)
    assert (spend.today_tokens, spend.month_tokens) == (charged, charged)


def test_finished_and_running_answers_add_up(session: Session) -> None:
    charge(session, NOW - timedelta(hours=3), tokens_used=10)
    charge(session, NOW - timedelta(hours=2), status="failed", tokens_used=3)
    charge(session, NOW - timedelta(seconds=5), status="running", price_tokens=7)
    charge(session, NOW - timedelta(seconds=5), status="pending", price_tokens=5)
    assert spend_of(session, ANA, now=NOW) == Spend(
        today_tokens=25, month_tokens=25, requests_last_minute=2
    )


def test_cached_answers_and_other_people_count_nothing(session: Session) -> None:
    charge(session, NOW - timedelta(hours=1), tokens_used=10)
    charge(session, NOW - timedelta(seconds=1), tokens_used=100, cached=True)
    charge(session, NOW - timedelta(seconds=1), status="running", price_tokens=50, cached=True)
    charge(session, NOW - timedelta(seconds=1), owner="bob@example.org", tokens_used=1000)
    charge(session, NOW - timedelta(seconds=1), owner=None, tokens_used=1000)
    charge(session, NOW - timedelta(seconds=1), owner="ANA@example.org", tokens_used=1000)
    assert spend_of(session, ANA, now=NOW) == Spend(10, 10, 0)
    assert spend_of(session, "bob@example.org", now=NOW) == Spend(1000, 1000, 1)


def test_today_and_this_month_are_utc_calendar_windows(session: Session) -> None:
    charge(session, TODAY, tokens_used=1)  # midnight belongs to today
    charge(session, NOW - timedelta(hours=1), tokens_used=2)
    charge(session, TODAY - timedelta(microseconds=1), tokens_used=10)  # yesterday
    charge(session, NOW - timedelta(days=1), tokens_used=20)
    charge(session, MONTH, tokens_used=100)  # the 1st at midnight belongs to this month
    charge(session, MONTH - timedelta(seconds=1), tokens_used=1000)  # last month
    charge(session, NOW - timedelta(days=31), tokens_used=10_000)
    charge(session, NOW - timedelta(days=365), tokens_used=100_000)
    assert spend_of(session, ANA, now=NOW) == Spend(
        today_tokens=3, month_tokens=133, requests_last_minute=0
    )


def test_a_new_month_starts_from_zero(session: Session) -> None:
    first_of_april = datetime(2026, 4, 1, 0, 30, tzinfo=UTC)
    charge(session, first_of_april - timedelta(hours=1), tokens_used=500)  # 31 March
    charge(session, first_of_april - timedelta(minutes=10), tokens_used=5)
    assert spend_of(session, ANA, now=first_of_april) == Spend(5, 5, 0)


def test_a_timestamp_in_another_zone_is_converted(session: Session) -> None:
    # 01:00 on the 15th in Moscow is 22:00 UTC on the 14th: yesterday in UTC.
    moscow = datetime(2026, 3, 15, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    charge(session, moscow, tokens_used=8)
    assert spend_of(session, ANA, now=NOW) == Spend(0, 8, 0)


def test_requests_in_the_last_minute(session: Session) -> None:
    for seconds in (0, 1, 30, 59, 60):
        charge(session, NOW - timedelta(seconds=seconds), tokens_used=1)
    charge(session, NOW - timedelta(seconds=61), tokens_used=1)
    charge(session, NOW - timedelta(hours=1), tokens_used=1)
    charge(session, NOW - timedelta(seconds=10), status="failed")  # failed requests count too
    charge(session, NOW - timedelta(seconds=10), tokens_used=1, cached=True)  # no request made
    charge(session, NOW - timedelta(seconds=10), owner="bob@example.org", tokens_used=1)
    assert spend_of(session, ANA, now=NOW).requests_last_minute == 6


def test_spend_follows_the_recording_path(store: Store) -> None:
    catalog = load_catalog()
    price = catalog.cost_of("gpt-5")
    assert price
    recorder = StoreRecorder(store.engine, catalog.cost_of, owner=ANA)

    comparison_id = recorder.start_comparison(make_request(("gpt-5", "gpt-5"), owner=ANA))
    with store.session() as s, s.begin():
        started = s.scalars(sa.select(Result).where(Result.comparison_id == comparison_id)).all()
        now = max(r.created_utc for r in started)
        spend = spend_of(s, ANA, now=now)
    assert spend == Spend(today_tokens=2 * price, month_tokens=2 * price, requests_last_minute=2)

    request = make_request(("gpt-5", "claude-haiku-4.5"), prompt="Finished", owner=ANA)
    finished_id, _ = record_run(
        recorder, request, [Outcome(tokens_used=price + 3), Outcome(tokens_used=0)]
    )
    with store.session() as s, s.begin():
        results = s.scalars(sa.select(Result).where(Result.comparison_id == finished_id)).all()
        assert {r.status for r in results} == {"completed"}
        now = max(r.created_utc for r in [*started, *results])
        spend = spend_of(s, ANA, now=now)
        assert spend_of(s, "bob@example.org", now=now) == Spend(0, 0, 0)
    assert spend.month_tokens == 2 * price + price + 3
    assert spend.requests_last_minute == 4


# --- check_spending ---------------------------------------------------------------------


@pytest.fixture
def ana(session: Session) -> Principal:
    return user_with_role(session, ANA, "member")


def test_under_every_limit_the_spend_is_returned(session: Session, ana: Principal) -> None:
    charge(session, NOW - timedelta(hours=1), tokens_used=40)
    limits = Limits(daily_budget_tokens=100, monthly_budget_tokens=1000, requests_per_minute=5)
    spend = check_spending(session, ana, limits, requests=2, estimated_tokens=20, now=NOW)
    assert spend == Spend(40, 40, 0)


def test_no_budget_means_unlimited_tokens(session: Session, ana: Principal) -> None:
    charge(session, NOW - timedelta(hours=1), tokens_used=10**9)
    spend = check_spending(session, ana, UNLIMITED, requests=1, estimated_tokens=10**9, now=NOW)
    assert spend.today_tokens == 10**9


def test_the_daily_budget(session: Session, ana: Principal) -> None:
    charge(session, NOW - timedelta(hours=1), tokens_used=90)
    limits = Limits(daily_budget_tokens=100, monthly_budget_tokens=None, requests_per_minute=60)
    check_spending(session, ana, limits, requests=1, estimated_tokens=10, now=NOW)  # exactly
    with pytest.raises(SpendingLimitError) as caught:
        check_spending(session, ana, limits, requests=1, estimated_tokens=11, now=NOW)
    message = str(caught.value)
    assert "daily budget is 100 billing tokens" in message
    assert "used 90" in message
    assert "about 11" in message
    assert "midnight UTC" in message
    assert caught.value.retry_after is None


def test_yesterday_does_not_count_against_the_daily_budget(
    session: Session, ana: Principal
) -> None:
    charge(session, TODAY - timedelta(minutes=1), tokens_used=100)
    limits = Limits(daily_budget_tokens=100, monthly_budget_tokens=None, requests_per_minute=60)
    check_spending(session, ana, limits, requests=1, estimated_tokens=100, now=NOW)
    with pytest.raises(SpendingLimitError, match="daily"):
        check_spending(
            session, ana, limits, requests=1, estimated_tokens=1, now=TODAY - timedelta(seconds=1)
        )


def test_an_exhausted_budget_refuses_even_a_free_request(session: Session, ana: Principal) -> None:
    charge(session, NOW - timedelta(hours=1), tokens_used=101)
    limits = Limits(daily_budget_tokens=100, monthly_budget_tokens=None, requests_per_minute=60)
    with pytest.raises(SpendingLimitError, match="used 101"):
        check_spending(session, ana, limits, requests=1, estimated_tokens=0, now=NOW)


def test_a_budget_of_zero_refuses_any_cost(session: Session, ana: Principal) -> None:
    limits = Limits(daily_budget_tokens=0, monthly_budget_tokens=None, requests_per_minute=60)
    with pytest.raises(SpendingLimitError, match="daily budget is 0"):
        check_spending(session, ana, limits, requests=1, estimated_tokens=1, now=NOW)


def test_the_monthly_budget(session: Session, ana: Principal) -> None:
    charge(session, NOW - timedelta(days=3), tokens_used=1950)
    charge(session, NOW - timedelta(hours=1), tokens_used=40)
    charge(session, MONTH - timedelta(days=1), tokens_used=10**6)  # last month: forgotten
    limits = Limits(daily_budget_tokens=100, monthly_budget_tokens=2000, requests_per_minute=60)
    check_spending(session, ana, limits, requests=1, estimated_tokens=10, now=NOW)
    with pytest.raises(SpendingLimitError) as caught:
        check_spending(session, ana, limits, requests=1, estimated_tokens=20, now=NOW)
    message = str(caught.value)
    assert "monthly budget is 2,000 billing tokens" in message
    assert "used 1,990" in message
    assert "1st (UTC)" in message
    assert "daily" not in message


def test_running_answers_hold_their_price_against_the_budget(
    session: Session, ana: Principal
) -> None:
    # Two quick runs cannot both slip under the limit while the first is still streaming.
    charge(session, NOW - timedelta(seconds=5), status="running", price_tokens=60)
    limits = Limits(daily_budget_tokens=100, monthly_budget_tokens=None, requests_per_minute=60)
    with pytest.raises(SpendingLimitError, match="used 60"):
        check_spending(session, ana, limits, requests=1, estimated_tokens=60, now=NOW)


def test_the_requests_per_minute_limit(session: Session, ana: Principal) -> None:
    for seconds in (5, 15, 25, 35):
        charge(session, NOW - timedelta(seconds=seconds), tokens_used=1)
    charge(session, NOW - timedelta(minutes=5), tokens_used=1)
    limits = Limits(daily_budget_tokens=None, monthly_budget_tokens=None, requests_per_minute=5)
    check_spending(session, ana, limits, requests=1, estimated_tokens=1, now=NOW)
    with pytest.raises(SpendingLimitError) as caught:
        check_spending(session, ana, limits, requests=2, estimated_tokens=1, now=NOW)
    message = str(caught.value)
    assert "5 model requests per minute" in message
    assert "4 in the last minute" in message
    assert caught.value.retry_after == 60.0
    # A minute later the window is clear again.
    later = NOW + timedelta(minutes=1)
    spend = check_spending(session, ana, limits, requests=5, estimated_tokens=1, now=later)
    assert spend.requests_last_minute == 0


def test_one_run_of_more_models_than_the_rate_allows_is_refused(
    session: Session, ana: Principal
) -> None:
    limits = Limits(daily_budget_tokens=None, monthly_budget_tokens=None, requests_per_minute=3)
    with pytest.raises(SpendingLimitError, match="3 model requests per minute"):
        check_spending(session, ana, limits, requests=4, estimated_tokens=0, now=NOW)


def test_a_viewer_is_refused_before_anything_else(session: Session) -> None:
    viewer = user_with_role(session, ANA, "viewer")
    with pytest.raises(AccessDeniedError, match="viewer"):
        check_spending(session, viewer, UNLIMITED, requests=1, estimated_tokens=0, now=NOW)


def test_an_admin_is_limited_like_anyone(session: Session) -> None:
    admin = user_with_role(session, ANA, "admin")
    charge(session, NOW - timedelta(hours=1), tokens_used=100)
    limits = Limits(daily_budget_tokens=100, monthly_budget_tokens=None, requests_per_minute=60)
    with pytest.raises(SpendingLimitError, match="daily"):
        check_spending(session, admin, limits, requests=1, estimated_tokens=1, now=NOW)
