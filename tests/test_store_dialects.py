"""The SQLite stand-ins: percentile_cont and utc_day give what PostgreSQL gives."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from playground.store import Store
from playground.store.dialects import PercentileCont, utc_day
from playground.store.models import Result
from tests.store_fixtures import seed_comparison, seed_result


def _percentile(values: list[float | None], fraction: float) -> float | None:
    aggregate = PercentileCont()
    for value in values:
        aggregate.step(value, fraction)
    return aggregate.finalize()


def test_percentile_cont_interpolates_linearly_and_ignores_nulls() -> None:
    values = [random.Random(3).uniform(0, 1000) for _ in range(101)]
    cut_points = statistics.quantiles(values, n=20, method="inclusive")
    assert _percentile([*values, None], 0.95) == pytest.approx(cut_points[18])
    assert _percentile([*values, None], 0.5) == pytest.approx(statistics.median(values))
    assert _percentile([10.0, 20.0], 0.95) == pytest.approx(19.5)
    assert _percentile([7.0], 0.5) == 7.0
    assert _percentile([None], 0.5) is None
    assert _percentile([], 0.5) is None


def test_percentile_cont_and_utc_day_in_sql(store: Store) -> None:
    with store.session() as session, session.begin():
        comparison = seed_comparison(session)
        for latency, created in [
            (1.0, datetime(2026, 3, 1, 23, 30, tzinfo=UTC)),
            (2.0, datetime(2026, 3, 1, 0, 0, tzinfo=UTC)),
            (4.0, datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        ]:
            seed_result(session, comparison, "m", latency_ms=latency, created=created)
    day = utc_day(Result.created_utc)
    query = (
        sa.select(day, sa.func.percentile_cont(0.5).within_group(Result.latency_ms))
        .group_by(day)
        .order_by(day)
    )
    with store.session() as session:
        rows = session.execute(query).all()
    assert [tuple(r) for r in rows] == [(date(2026, 3, 1), 1.5), (date(2026, 3, 2), 4.0)]
