"""The usage rollups stay equal to the results they add up, through every kind of write."""

from __future__ import annotations

import io
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.cli import main
from playground.config import Settings
from playground.results import ModelResult
from playground.store import HistoryFilter, Store, StoreRecorder
from playground.store.dialects import merged_bins
from playground.store.models import BinCounts, Comparison, Result, UsageRollup, UsageTiming
from playground.store.recovery import recover_interrupted
from playground.store.repository import delete_comparison, share_comparison
from playground.store.rollups import (
    KEYS,
    RELATIVE_ERROR,
    ROLLUP_FUNCTION,
    rebuild,
    rollup_function_body,
)
from playground.store.spool import RowUpdate, apply_update
from playground.store.stats import from_rollups, latency_by_model, model_summary
from tests.store_fixtures import (
    Outcome,
    ReusedStores,
    make_request,
    new_postgres_store,
    record_run,
    running_result,
    seed_comparison,
    seed_result,
)
from tests.test_access_visibility import Team, team  # noqa: F401 (a fixture)

MODELS = ("gpt-5", "claude-haiku-4.5")


def rollup_rows(store: Store) -> set[tuple[Any, ...]]:
    """Every non-empty rollup and timing bin (rounded sums), comparable across rebuilds."""
    with store.session() as session:
        rollups = session.scalars(sa.select(UsageRollup).where(UsageRollup.results != 0))
        timings = session.scalars(sa.select(UsageTiming))
        bins = [
            (*bucket(t), t.measure, t.period, t.low + int(k), int(t.counts[k]))
            for t in timings
            for k in np.flatnonzero(t.counts)
        ]
        return {
            *(
                (
                    *bucket(r),
                    *(r.results, r.tokens_spent, r.output_chars, r.latency_n, r.ttft_n),
                    *(round(r.latency_sum, 6), round(r.ttft_sum, 6)),
                )
                for r in rollups
            ),
            *bins,
        }


def bucket(row: UsageRollup | UsageTiming) -> tuple[Any, ...]:
    return tuple(getattr(row, key) for key in KEYS)


def assert_in_step(store: Store) -> set[tuple[Any, ...]]:
    """The rollups kept by the writes equal a rebuild from the rows; returns them."""
    kept = rollup_rows(store)
    with store.session() as session, session.begin():
        rebuild(session)
    assert rollup_rows(store) == kept
    return kept


def finished_calls(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(sa.select(sa.func.sum(UsageRollup.results))) or 0)


@pytest.fixture
def store(reused_store: Store) -> Store:
    return reused_store


def test_every_finished_answer_is_counted_once(store: Store) -> None:
    recorder = StoreRecorder(store.engine)
    record_run(recorder, make_request(MODELS), [Outcome(), Outcome(status="failed")])
    assert finished_calls(store) == 2
    assert assert_in_step(store)


def test_a_repeated_or_replayed_final_write_counts_once(store: Store) -> None:
    recorder = StoreRecorder(store.engine)
    _, (first, _) = record_run(recorder, make_request(MODELS), [Outcome(), Outcome()])
    with store.session() as session:
        row = session.get_one(Result, first)
    final = ModelResult(
        index=0,
        provider=row.provider,
        model=row.model,
        params=make_request(MODELS).generation_request(0).params,
        request_hash=row.request_hash,
        status="completed",
        content="A longer answer.",
        tokens_used=5,
        latency_ms=1000.0,
        result_id=first,
        finished_at=datetime.now(UTC),
    )
    recorder.record_finished(final)  # the write retried after a lost commit acknowledgement
    recorder.record_finished(final)
    with store.session() as session, session.begin():  # and replayed from the spool
        apply_update(session, RowUpdate("results", first, {"status": "completed"}))
    assert finished_calls(store) == 2
    kept = assert_in_step(store)
    assert any(row[7] == 1 and row[8] == 5 for row in kept if len(row) > 7)


def test_a_final_write_keeps_its_rollups_without_reading_its_row(
    store: Store,
) -> None:
    recorder = StoreRecorder(store.engine)
    request = make_request(MODELS)
    comparison_id = recorder.start_comparison(request)
    running = running_result(request, 0)
    running = replace(running, result_id=recorder.record_started(comparison_id, running))
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        recorder.record_finished(
            replace(
                running,
                status="completed",
                content="Done.",
                tokens_used=3,
                latency_ms=900.0,
                ttft_ms=150.0,
                finished_at=datetime.now(UTC),
            )
        )
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    # The write, then its figures added by SQL from the row: no read in between. On
    # PostgreSQL one statement does it all: the update, and a call of the database
    # function on the row it returns. On SQLite an insert into the connection's TEMP view
    # (whose trigger runs both upserts) follows the update.
    if store.backend == "postgresql":
        assert len(seen) == 1
        assert seen[0].startswith("WITH written AS (UPDATE results SET")
        assert f"THEN CAST({ROLLUP_FUNCTION}(written.id," in seen[0]
    else:
        assert [" ".join(s.split()[:3]) for s in seen] == [
            "UPDATE results SET",
            f"INSERT INTO {ROLLUP_FUNCTION}",
        ]
    assert finished_calls(store) == 1
    kept = assert_in_step(store)
    # Latency and TTFT, each for its day and its month.
    assert sum(1 for row in kept if "month" in row or "day" in row) == 4


def test_crash_recovery_deletion_and_sharing_move_the_figures(store: Store) -> None:
    recorder = StoreRecorder(store.engine)
    comparison_id, _ = record_run(recorder, make_request(MODELS), [Outcome(), Outcome()])
    abandoned = recorder.start_comparison(make_request(MODELS, "left running"))
    with store.session() as session, session.begin():
        later = datetime.now(UTC) + timedelta(hours=1)
        assert recover_interrupted(session, now=later, is_alive=lambda _w: True) == 2
    assert finished_calls(store) == 4
    assert_in_step(store)
    with store.session() as session, session.begin():
        share_comparison(
            session, comparison_id, None, visibility="workspace", workspace_id=7, link=False
        )
    shared = assert_in_step(store)
    assert {row[4] for row in shared} == {0, 7}
    with store.session() as session, session.begin():
        delete_comparison(session, abandoned)  # soft: its calls were really made
    assert finished_calls(store) == 4
    with store.session() as session, session.begin():
        delete_comparison(session, abandoned, purge=True)
    assert finished_calls(store) == 2
    assert_in_step(store)


@pytest.mark.postgres
def test_the_databases_rollup_function_runs_this_codes_statements(
    reused_stores: ReusedStores,
) -> None:
    # A change to the rollups' statements needs a migration that replaces the function.
    store = reused_stores.emptied("postgres")
    with store.session() as session:
        stored = session.scalar(
            sa.text(
                "SELECT prosrc FROM pg_proc WHERE proname = :name"
                " AND pronamespace = current_schema()::regnamespace"
            ),
            {"name": ROLLUP_FUNCTION},
        )
    assert stored is not None
    assert stored.split() == rollup_function_body().split()


@pytest.mark.postgres
def test_a_final_write_held_up_by_a_sharing_change_counts_under_the_new_sharing() -> None:
    # PostgreSQL only: there a write waits for a row lock inside a statement that read its
    # snapshot before the wait (on SQLite a writer waits before its transaction starts).
    with new_postgres_store() as store:
        recorder = StoreRecorder(store.engine)
        request = make_request(MODELS)
        comparison_id = recorder.start_comparison(request)
        running = running_result(request, 0)
        running = replace(running, result_id=recorder.record_started(comparison_id, running))
        final = replace(running, status="completed", tokens_used=3, latency_ms=900.0)
        with ThreadPoolExecutor(1) as pool, store.session() as sharing, sharing.begin():
            # The change holds its rows' locks until it commits, so the final write waits.
            share_comparison(
                sharing, comparison_id, None, visibility="workspace", workspace_id=7, link=False
            )
            written = pool.submit(recorder.record_finished, final)
            wait_until_blocked_by(store, sharing, written)
        written.result()
        kept = assert_in_step(store)
    assert {row[4] for row in kept} == {7}


@pytest.mark.postgres
def test_a_rebuild_leaves_the_planner_statistics_of_the_rollups_it_wrote() -> None:
    # A new schema: its tables were never analyzed, and autovacuum has not seen them yet.
    with new_postgres_store() as store:
        recorder = StoreRecorder(store.engine)
        for _ in range(3):
            record_run(recorder, make_request(MODELS), [Outcome(), Outcome(status="failed")])
        with store.session() as session, session.begin():
            rebuild(session)
        with store.session() as session:
            rows = session.scalar(sa.select(sa.func.count()).select_from(UsageRollup))
            estimated = session.scalar(
                sa.text(
                    "SELECT reltuples FROM pg_class WHERE relname = 'usage_rollups'"
                    " AND relnamespace = current_schema()::regnamespace"
                )
            )
    assert rows and estimated == rows


def wait_until_blocked_by(store: Store, holder: Session, work: Future[Any]) -> None:
    """Return once another connection waits for a lock that ``holder``'s transaction holds."""
    holder_pid = holder.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    blocked = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
    )
    with store.engine.connect() as connection:
        while not connection.execute(blocked, {"holder": holder_pid}).scalar():
            assert not work.done(), "the write did not wait for the lock"
            time.sleep(0.01)


def test_concurrent_writers_add_up(store: Store) -> None:
    recorder = StoreRecorder(store.engine)

    def run(writer: int) -> None:
        for n in range(3):
            record_run(recorder, make_request(MODELS, f"{writer}/{n}"), [Outcome(), Outcome()])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(run, range(6)))
    assert finished_calls(store) == 6 * 3 * 2
    assert_in_step(store)


def test_each_viewer_gets_the_same_figures_as_from_the_results(
    store: Store,
    team: Team,  # noqa: F811 (the fixture)
) -> None:
    recorder = StoreRecorder(store.engine)
    with store.session() as session, session.begin():
        comparisons = session.scalars(sa.select(Comparison)).all()
        for comparison in comparisons:
            session.execute(
                sa.update(Result)
                .where(Result.comparison_id == comparison.id)
                .values(
                    status="completed", tokens_used=comparison.id, latency_ms=100.0 * comparison.id
                )
            )
        rebuild(session)  # the fixture wrote the rows directly
    record_run(recorder, make_request(MODELS, owner="ana@example.org"), [Outcome(), Outcome()])
    now = datetime.now(UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    for viewer in (team.ana, team.bob, team.cat, team.dan, None):
        whole_days = HistoryFilter(
            since=day - timedelta(days=2), until=day + timedelta(days=1), viewer=viewer
        )
        # A bound inside a day cannot be answered from the rollups: the exact path.
        exact = replace(whole_days, since=whole_days.since + timedelta(seconds=1))
        assert from_rollups(whole_days) and not from_rollups(exact)
        with store.session() as session:
            rolled, counted = model_summary(session, whole_days), model_summary(session, exact)
            timings = latency_by_model(session, whole_days), latency_by_model(session, exact)
        pd.testing.assert_frame_equal(rolled, counted, check_dtype=False)
        rolled_p95, exact_p95 = (t["p95_latency_ms"].to_numpy() for t in timings)
        assert rolled_p95 == pytest.approx(exact_p95, rel=RELATIVE_ERROR)


def test_the_cli_rebuilds_the_rollups(store: Store, tmp_path: Path) -> None:
    record_run(StoreRecorder(store.engine), make_request(MODELS), [Outcome(), Outcome()])
    with store.session() as session, session.begin():
        session.execute(sa.delete(UsageRollup))
    out = io.StringIO()
    settings = Settings(
        database_url=store.engine.url.render_as_string(hide_password=False), data_dir=tmp_path
    )
    assert main.main(["rollups", "rebuild"], settings=settings, out=out) == main.EXIT_OK
    assert out.getvalue() == "Usage rollups rebuilt from 2 finished result(s).\n"
    assert finished_calls(store) == 2


def test_whole_days_are_read_from_the_rollups_and_a_time_inside_a_day_from_the_results(
    store: Store,
) -> None:
    recorder = StoreRecorder(store.engine)
    record_run(recorder, make_request(MODELS), [Outcome(), Outcome()])
    with store.session() as session, session.begin():
        # A row changed behind the rollups' back: only the exact path sees it.
        session.execute(sa.update(Result).values(tokens_used=1_000))
    now = datetime.now(UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    whole_days = HistoryFilter(since=day, until=day + timedelta(days=1))
    exact = replace(whole_days, since=day + timedelta(seconds=1) - timedelta(days=1))
    with store.session() as session:
        rolled, counted = model_summary(session, whole_days), model_summary(session, exact)
    assert rolled["tokens_spent"].sum() != 2_000
    assert counted["tokens_spent"].sum() == 2_000


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-01-01", "2026-04-01"),  # whole months only
        ("2026-01-10", "2026-03-20"),  # a month and the days around it
        ("2026-01-10", "2026-02-05"),  # days only, across a month's end
        ("2025-12-20", "2026-02-01"),  # across a year's end
        (None, "2026-02-14"),
        ("2026-02-14", None),
    ],
)
def test_timings_of_whole_months_and_the_other_days_add_up_to_the_period(
    store: Store, since: str | None, until: str | None
) -> None:
    start = datetime(2025, 12, 1, 12, tzinfo=UTC)
    with store.session() as session, session.begin():
        for n in range(0, 130, 3):
            comparison = seed_comparison(session, created=start + timedelta(days=n))
            seed_result(session, comparison, "gpt-5", latency_ms=100.0 + 37 * n, ttft_ms=5.0 + n)
        rebuild(session)

    def moment(day: str | None) -> datetime | None:
        return None if day is None else datetime.fromisoformat(day).replace(tzinfo=UTC)

    period = HistoryFilter(since=moment(since), until=moment(until))
    # A bound a second off midnight reads the answers themselves (exact percentiles).
    exact = replace(
        period, since=(period.since or start - timedelta(days=1)) + timedelta(seconds=1)
    )
    with store.session() as session:
        rolled, counted = latency_by_model(session, period), latency_by_model(session, exact)
    assert rolled["samples"].tolist() == counted["samples"].tolist()
    for column in ("p50_latency_ms", "p95_latency_ms", "p50_ttft_ms", "p95_ttft_ms"):
        assert rolled[column].to_numpy() == pytest.approx(
            counted[column].to_numpy(), rel=RELATIVE_ERROR
        )


@pytest.mark.parametrize(
    ("low_a", "a", "low_b", "b"),
    [
        (10, [1, 2, 3], 10, [5]),  # one count into the first stored bin
        (10, [1, 2, 3], 11, [5]),  # … a middle one
        (10, [1, 2, 3], 12, [-1]),  # … the last one, taken out
        (10, [1, 2, 3], 9, [5]),  # just below the stored bins
        (10, [1, 2, 3], 13, [5]),  # just above
        (10, [1, 2, 3], 20, [5]),  # a gap above
        (10, [1, 2, 3], 4, [5]),  # a gap below
        (10, [4], 10, [1]),  # a single stored bin
        (10, [1, 2, 3], 8, [1, 1, 1, 1]),  # several bins overlapping
        (10, [1, 2, 3], 11, [7, 7]),  # several bins inside
        (10, list(range(300)), 200, list(range(400))),  # long arrays (merged with numpy)
    ],
)
def test_bin_arrays_merge_bin_by_bin(
    store: Store, low_a: int, a: list[int], low_b: int, b: list[int]
) -> None:
    low = min(low_a, low_b)
    expected = np.zeros(max(low_a + len(a), low_b + len(b)) - low, dtype=np.int64)
    expected[low_a - low : low_a - low + len(a)] += a
    expected[low_b - low : low_b - low + len(b)] += b
    merged = merged_bins(
        sa.literal(low_a, sa.Integer),
        sa.literal(np.array(a), BinCounts()),
        sa.literal(low_b, sa.Integer),
        sa.literal(np.array(b), BinCounts()),
    )
    with store.engine.connect() as connection:
        found = connection.scalar(sa.select(sa.type_coerce(merged, BinCounts())))
    assert found is not None
    assert found.tolist() == expected.tolist()
