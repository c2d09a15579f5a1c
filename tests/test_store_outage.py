"""A database outage only delays history writes: retried, kept in memory, spooled, replayed.

PostgreSQL is taken away by a fault-injecting proxy in front of the shared test server
(never by restarting it); SQLite by another connection holding its write lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from playground.catalog import load_catalog
from playground.providers.elumenta import ElumentaProvider
from playground.results import CompareRequest, ModelResult
from playground.runner import NOT_RECORDED, ModelDelta, RunEvent, Runner
from playground.store import Store, StoreRecorder, open_store
from playground.store import db as store_db
from playground.store.models import Result
from playground.store.outage import StoreUnavailableError
from playground.store.postgres import answer_timeout_s, connect_args, unbounded
from playground.store.recorder import AnswerSpooledError
from playground.store.spool import RowUpdate
from playground.unsaved import TALLY, Unsaved, banner_text, unsaved
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.fault_proxy import FaultProxy
from tests.store_fixtures import make_request, running_result, stored_comparisons

CATALOG = load_catalog()
pytestmark = pytest.mark.usefixtures("outage_forgotten")
SIX = ("gpt-5-nano", "claude-haiku-4.5", "gemini-2.5-flash", "deepseek-v3", "grok-4-fast", "gpt-5")


def outage(proxy: FaultProxy, seconds: float) -> threading.Timer:
    """Take the database away now and bring it back after ``seconds``."""
    proxy.outage()
    timer = threading.Timer(seconds, proxy.restore)
    timer.start()
    return timer


def finished(result: ModelResult, text: str) -> ModelResult:
    return replace(
        result,
        status="completed",
        content=text,
        tokens_used=7,
        balance_remaining=93,
        finished_at=datetime.now(UTC),
    )


def rows(store: Store) -> list[Result]:
    with store.session() as session:
        return list(session.scalars(sa.select(Result).order_by(Result.id)))


def started_rows(
    store: Store, models: tuple[str, ...] = SIX
) -> tuple[StoreRecorder, list[ModelResult]]:
    recorder = StoreRecorder(store.engine, writes=store.writes)
    request = make_request(models)
    comparison_id = recorder.start_comparison(request)
    started = []
    for index in range(len(models)):
        result = running_result(request, index)
        started.append(replace(result, result_id=recorder.record_started(comparison_id, result)))
    return recorder, started


@pytest.mark.postgres
def test_final_writes_during_a_postgres_outage_wait_for_it_and_all_land(
    pg: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    proxy, url = pg
    store = open_store(url, spool_dir=tmp_path)
    try:
        recorder, started = started_rows(store)
        outage(proxy, 2.0)
        for result in started:  # partial flushes during the outage are skipped, not raised
            recorder.record_progress(replace(result, content="half"))
        for result in started:
            recorder.record_finished(finished(result, f"the whole answer of {result.model}"))
        stored = rows(store)
    finally:
        store.close()
    assert [(r.status, r.content, r.tokens_used) for r in stored] == [
        ("completed", f"the whole answer of {m}", 7) for m in SIX
    ]
    assert proxy.refused > 0  # the database really was away
    assert unsaved() == Unsaved(database_down=False, waiting=0, spooled=0)


def test_a_sqlite_file_locked_past_its_busy_timeout_delays_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "history.sqlite3"
    store = open_store(f"sqlite:///{path}")
    try:
        recorder, started = started_rows(store, SIX[:2])
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(1.5, holder.execute, ("COMMIT",))
        release.start()
        for result in started:
            recorder.record_finished(finished(result, "after the lock"))
        release.join()
        holder.close()
        assert [r.status for r in rows(store)] == ["completed", "completed"]
    finally:
        store.close()


def test_a_start_whose_commit_was_answered_with_a_lost_connection_keeps_one_row(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    recorder = StoreRecorder(store.engine, writes=store.writes)
    request = make_request(SIX[:2])
    comparison_id = recorder.start_comparison(request)
    lost = {"acks": 1}

    def lose_the_commits_answer(_session: sa.orm.Session) -> None:
        # The transaction is committed; the client sees the connection fail all the same.
        if lost["acks"]:
            lost["acks"] -= 1
            raise sa.exc.OperationalError(
                "COMMIT", {}, sqlite3.OperationalError("database is locked")
            )

    sa.event.listen(sa.orm.Session, "after_commit", lose_the_commits_answer)
    try:
        first = recorder.record_started(comparison_id, running_result(request, 0))
        assert lost["acks"] == 0
        second = recorder.record_started(comparison_id, running_result(request, 1))
        assert [(r.id, r.position, r.status) for r in rows(store)] == [
            (first, 0, "running"),
            (second, 1, "running"),
        ]
    finally:
        sa.event.remove(sa.orm.Session, "after_commit", lose_the_commits_answer)
        store.close()


@pytest.mark.postgres
def test_a_server_that_goes_silent_is_an_outage_not_a_hang(
    pg: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    proxy, url = pg
    # A silent server: the connection stays open, nothing comes back (no reset, no close).
    quick = make_url(url).update_query_dict({"connect_timeout": "1"})
    store = open_store(
        quick.render_as_string(hide_password=False),
        spool_dir=tmp_path,
        outage_wait_s=1.0,
        statement_timeout_s=1.0,
    )
    recorder, (result,) = started_rows(store, ("gpt-5",))
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            recorder.record_finished(finished(result, "kept while the server is silent"))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what the write ended with is the point
            outcome.append(exc)

    proxy.stall()
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(20)
    proxy.restore()
    store.close()
    assert not writer.is_alive(), "the write hung on a silent server"
    (raised,) = outcome
    assert isinstance(raised, AnswerSpooledError)
    spool = store.writes.spool
    assert spool is not None
    assert json.loads(spool.path.read_text())["result_id"] == result.result_id


def test_postgresql_connections_time_out_by_default_and_the_url_overrides_each_limit() -> None:
    plain = connect_args(make_url("postgresql+psycopg://u@db/x"), 30.0)
    assert plain == {
        "connect_timeout": "10",
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "tcp_user_timeout": "30000",
        "options": "-c statement_timeout=30000",
    }
    own = make_url(
        "postgresql+psycopg://u@db/x?connect_timeout=3&keepalives_idle=5"
        "&options=-c%20statement_timeout%3D0"
    )
    chosen = connect_args(own, 30.0)
    assert not {"connect_timeout", "keepalives_idle", "options"} & set(chosen)
    kept = connect_args(make_url("postgresql+psycopg://u@db/x?options=-c%20work_mem%3D8MB"), 2)
    assert kept["options"] == "-c work_mem=8MB -c statement_timeout=2000"
    assert "options" not in connect_args(make_url("postgresql+psycopg://u@db/x"), 0)
    assert (answer_timeout_s(30.0), answer_timeout_s(1.0), answer_timeout_s(0)) == (35.0, 2.0, None)


@pytest.mark.postgres
def test_a_statement_past_the_timeout_is_cancelled_and_migrations_have_none(
    pg: tuple[FaultProxy, str],
) -> None:
    _proxy, url = pg
    engine = store_db.create_store_engine(url, statement_timeout_s=0.5)
    try:
        with (
            pytest.raises(sa.exc.OperationalError, match="statement timeout"),
            engine.connect() as connection,
        ):
            connection.exec_driver_sql("SELECT pg_sleep(2)")
        with engine.begin() as connection, unbounded(connection):
            connection.exec_driver_sql("SELECT pg_sleep(1)")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_comparison_whose_commit_answer_was_lost_is_stored_once(
    pg: tuple[FaultProxy, str],
) -> None:
    proxy, url = pg
    store = open_store(url)
    try:
        recorder = StoreRecorder(store.engine, writes=store.writes)
        proxy.lose_next_commit_answer()
        comparison_id = recorder.start_comparison(make_request(SIX[:2]))
        assert proxy.commit_answers_lost == 1
        stored, rows = stored_comparisons(store)
    finally:
        store.close()
    assert stored == [comparison_id]
    assert [(c, position) for _id, c, position, _status in rows] == [
        (comparison_id, 0),
        (comparison_id, 1),
    ]


@pytest.mark.postgres
def test_a_comparison_started_with_its_rows_whose_commit_answer_was_lost_is_stored_once(
    pg: tuple[FaultProxy, str],
) -> None:
    proxy, url = pg
    store = open_store(url)
    request = make_request(SIX[:2])
    started = [replace(running_result(request, i), started_at=datetime.now(UTC)) for i in (0, 1)]
    try:
        recorder = StoreRecorder(store.engine, writes=store.writes)
        proxy.lose_next_commit_answer()
        comparison_id, row_ids = recorder.start_running(request, started)
        assert proxy.commit_answers_lost == 1
        stored, rows = stored_comparisons(store)
    finally:
        store.close()
    assert stored == [comparison_id]
    assert rows == [
        (row_ids[0], comparison_id, 0, "running"),
        (row_ids[1], comparison_id, 1, "running"),
    ]


@pytest.mark.postgres
def test_an_outage_longer_than_the_wait_spools_the_answer_and_the_next_start_writes_it_once(
    pg: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    proxy, url = pg
    store = open_store(url, spool_dir=tmp_path, outage_wait_s=0.5)
    recorder, (result,) = started_rows(store, ("gpt-5",))
    recorder.record_progress(replace(result, content="the first half"))
    proxy.outage()
    with pytest.raises(AnswerSpooledError) as raised:
        recorder.record_finished(finished(result, "the first half and the rest"))
    spool = store.writes.spool
    assert spool is not None and str(spool.path) in str(raised.value)
    record = spool.path.read_text()
    assert json.loads(record)["result_id"] == result.result_id
    assert unsaved().spooled == 1 and banner_text(unsaved()) is not None
    store.close()
    proxy.restore()
    with store_db.Session(store_db.create_store_engine(url)) as session, session.begin():
        # The process that spooled it is gone: recovery would mark its open row interrupted.
        session.execute(sa.update(Result).values(writer="elsewhere:1:dead"))
    reopened = open_store(url, spool_dir=tmp_path, stale_after=store_db.timedelta(0))
    try:
        (row,) = rows(reopened)
        assert (row.status, row.content, row.tokens_used) == (
            "completed",
            "the first half and the rest",
            7,
        )
        assert not spool.pending()
        # A crash after the replay committed but before the file was emptied: replaying
        # the same record again writes nothing.
        spool.path.write_text(record)
        assert spool.replay(reopened.engine) == 0
        assert rows(reopened)[0].updated_utc == row.updated_utc
    finally:
        reopened.close()


@pytest.mark.postgres
def test_writes_grouped_in_one_transaction_keep_their_own_outage_promises(
    pg: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    proxy, url = pg
    store = open_store(url, spool_dir=tmp_path, outage_wait_s=0.5)
    try:
        recorder, (result,) = started_rows(store, ("gpt-5",))
        request = make_request(("gpt-5", "deepseek-v3"))
        comparison_id = recorder.start_comparison(request)
        proxy.outage()
        flush, final, start = recorder.write_together(
            [
                (recorder, "record_progress", (replace(result, content="the first"),)),
                (recorder, "record_finished", (finished(result, "the whole answer"),)),
                (recorder, "record_started", (comparison_id, running_result(request, 1))),
            ]
        )
        # The answer is spooled, the start refused (its request is not sent), and the
        # flush (optional) skipped: what each does when written alone.
        assert flush is None
        assert isinstance(final, AnswerSpooledError)
        assert isinstance(start, StoreUnavailableError)
        spool = store.writes.spool
        assert spool is not None
        assert json.loads(spool.path.read_text())["result_id"] == result.result_id
        proxy.restore()
        recorder.record_started(comparison_id, running_result(request, 1))
        assert not spool.pending()
        assert (rows(store)[0].status, rows(store)[0].content) == ("completed", "the whole answer")
    finally:
        store.close()


@pytest.mark.postgres
def test_spooled_answers_are_written_as_soon_as_the_database_answers_again(
    pg: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    proxy, url = pg
    store = open_store(url, spool_dir=tmp_path, outage_wait_s=0.3)
    try:
        recorder, started = started_rows(store, SIX[:3])
        proxy.outage()
        for result in started:
            with pytest.raises(AnswerSpooledError):
                recorder.record_finished(finished(result, "kept on disk"))
        assert unsaved().spooled == 3
        proxy.restore()
        recorder.start_comparison(make_request(("gpt-5",)))  # the next write finds it back
        assert [r.content for r in rows(store)[:3]] == ["kept on disk"] * 3
        assert unsaved().spooled == 0 and banner_text(unsaved()) is None
    finally:
        store.close()


@pytest.mark.postgres
def test_without_a_spool_the_write_says_the_database_stayed_away(
    pg: tuple[FaultProxy, str],
) -> None:
    proxy, url = pg
    store = open_store(url, outage_wait_s=0.3)
    try:
        recorder, (result,) = started_rows(store, ("gpt-5",))
        proxy.outage()
        with pytest.raises(StoreUnavailableError, match="PLAYGROUND_DB_OUTAGE_WAIT_S"):
            recorder.record_finished(finished(result, "lost?"))
    finally:
        proxy.restore()
        store.close()


@pytest.mark.postgres
def test_a_six_model_compare_through_an_outage_stores_every_answer_and_asks_each_once(
    pg: tuple[FaultProxy, str], tmp_path: Path, fake_elumenta: FakeElumenta
) -> None:
    proxy, url = pg
    fake_elumenta.script("*", ModelScript(n_deltas=15, delay_ms=100))
    store = open_store(url, spool_dir=tmp_path)
    runner = Runner(CATALOG, flush_interval_s=0.2)
    provider = ElumentaProvider(
        api_key=SecretStr(fake_elumenta.api_key), base_url=fake_elumenta.base_url, catalog=CATALOG
    )
    cut = threading.Event()
    timers: list[threading.Timer] = []

    def on_event(event: RunEvent) -> None:
        if isinstance(event, ModelDelta) and not cut.is_set():
            cut.set()
            timers.append(outage(proxy, 3.0))

    try:
        request = make_request(SIX, provider="elumenta")
        handle = runner.start(
            request,
            {"elumenta": provider},
            recorder=StoreRecorder(store.engine, CATALOG.cost_of, writes=store.writes),
            on_event=on_event,
        )
        snapshot = handle.wait(60)
        stored = rows(store)
    finally:
        runner.run_coroutine(provider.aclose(), timeout=5)
        runner.close()
        store.close()
    assert cut.is_set() and proxy.refused > 0
    assert snapshot.record_error is None
    assert [r.status for r in snapshot.results] == ["completed"] * 6
    assert [(r.status, r.content, r.tokens_used) for r in stored] == [
        (r.status, r.content, r.tokens_used) for r in snapshot.results
    ]
    assert all(r.content and r.tokens_used for r in stored)
    generate = [r for r in fake_elumenta.requests if r.path.endswith("/generate/stream")]
    assert len(generate) == 6


def test_the_banner_counts_answers_kept_and_goes_once_they_are_written() -> None:
    assert banner_text(unsaved()) is None
    TALLY.set_down(True)
    TALLY.add_waiting(2)
    try:
        text = banner_text(unsaved())
        assert text == (
            "History is not being saved right now — 2 answers kept, "
            "will be written when the database returns."
        )
    finally:
        TALLY.add_waiting(-2)
        TALLY.set_down(False)
    assert banner_text(unsaved()) is None


def test_spooled_lines_that_cannot_be_written_are_set_aside_not_dropped(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'history.sqlite3'}", spool_dir=tmp_path)
    try:
        _recorder, (result, other) = started_rows(store, ("gpt-5", "gpt-5-nano"))
        spool = store.writes.spool
        assert spool is not None and result.result_id is not None
        values = {"status": "completed", "content": "kept", "finished_utc": datetime.now(UTC)}
        spool.append(result.result_id, [RowUpdate("results", result.result_id, values)])
        unknown_table = {"v": 1, "result_id": other.result_id, "updates": [{"table": "nope"}]}
        with spool.path.open("a") as file:
            file.write(json.dumps(unknown_table) + "\n")
            file.write('{"v": 1, "result_id": 1, "upd')  # torn by a crash mid-append
        assert spool.replay(store.engine) == 1
        assert [(r.status, r.content) for r in rows(store)] == [
            ("completed", "kept"),
            ("running", ""),
        ]
        assert not spool.pending()
        assert len(spool.rejected_path.read_text().splitlines()) == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_a_model_whose_row_cannot_be_written_is_not_sent(
    pg: tuple[FaultProxy, str], fake_elumenta: FakeElumenta
) -> None:
    proxy, url = pg
    store = open_store(url, outage_wait_s=0.3)

    class AwayAfterTheComparison(StoreRecorder):
        def start_comparison(self, request: CompareRequest) -> int:
            comparison_id = super().start_comparison(request)
            proxy.outage()  # before the model's row is written
            return comparison_id

    runner = Runner(CATALOG)
    provider = ElumentaProvider(
        api_key=SecretStr(fake_elumenta.api_key), base_url=fake_elumenta.base_url, catalog=CATALOG
    )
    try:
        handle = runner.start(
            make_request(("gpt-5",), provider="elumenta"),
            {"elumenta": provider},
            recorder=AwayAfterTheComparison(store.engine, writes=store.writes),
        )
        snapshot = handle.wait(30)
    finally:
        runner.run_coroutine(provider.aclose(), timeout=5)
        runner.close()
        proxy.restore()
        store.close()
    (result,) = snapshot.results
    assert (result.status, result.error_code) == ("failed", NOT_RECORDED)
    assert snapshot.record_error and "PLAYGROUND_DB_OUTAGE_WAIT_S" in snapshot.record_error
    assert not [r for r in fake_elumenta.requests if r.path.endswith("/generate/stream")]
