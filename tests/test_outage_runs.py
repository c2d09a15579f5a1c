"""Runs through a database outage, end to end: the CLI, the app and a batch lose nothing.

PostgreSQL goes away through a fault proxy while the fake Elumenta server streams; every
answer that arrived must be in history afterwards, and no request may be sent twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from playground.services import runtime
from playground.store import Store, open_store
from playground.store import outage as outage_module
from playground.store.eval_claims import renew_heartbeat
from playground.store.eval_models import BatchCellRow
from playground.store.eval_repository import batch_cells, set_batch_status, update_cells
from playground.store.models import Result
from playground.unsaved import unsaved
from playground.workers.dispatch import queue_batch
from tests.app_harness import click, open_page, run_until_done, texts
from tests.evaluation_fixtures import job, plan
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.fault_proxy import FaultProxy, proxied
from tests.worker_fixtures import WorkerProcess, started_together, worker_settings

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("outage_forgotten")]

SIX = ("gpt-5-nano", "claude-haiku-4.5", "gemini-2.5-flash", "deepseek-v3", "grok-4-fast", "gpt-5")
BANNER = "History is not being saved right now"


@pytest.fixture
def streaming(fake_elumenta: FakeElumenta) -> FakeElumenta:
    """Every model streams its answer over about two seconds."""
    fake_elumenta.script("*", ModelScript(n_deltas=20, delay_ms=100))
    return fake_elumenta


def generations(fake: FakeElumenta) -> int:
    return sum(r.path.endswith("/generate/stream") for r in fake.requests)


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def rows(url: str) -> list[Result]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.select(Result).order_by(Result.id)).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def cli(
    args: list[str], fake: FakeElumenta, url: str, data: Path, **env: str
) -> subprocess.Popen[str]:
    environment = os.environ | {
        "PLAYGROUND_PROVIDER": "elumenta",
        "ELUMENTA_BASE_URL": fake.base_url,
        "ELUMENTA_API_KEY": fake.api_key,
        "PLAYGROUND_DATABASE_URL": url,
        "PLAYGROUND_DATA_DIR": str(data),
        "PLAYGROUND_FLUSH_INTERVAL_S": "0.2",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "playground", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def compare_args() -> list[str]:
    return ["compare", *[a for m in SIX for a in ("-m", m)], "-p", "Outage?", "--json"]


def test_the_cli_waits_out_a_3_s_outage_and_stores_all_six_answers(
    pg: tuple[FaultProxy, str], streaming: FakeElumenta, tmp_path: Path
) -> None:
    proxy, url = pg
    proc = cli(compare_args(), streaming, url, tmp_path)
    wait_for(lambda: generations(streaming) == 6)
    time.sleep(0.5)  # a partial flush or two first
    proxy.outage()
    threading.Timer(3.0, proxy.restore).start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    printed = [json.loads(line) for line in out.strip().splitlines()]
    stored = rows(url)
    assert proxy.refused > 0
    assert [(r.status, r.content, r.tokens_used) for r in stored] == [
        ("completed", p["content"], p["tokens_used"]) for p in printed
    ]
    assert all(r.content and r.tokens_used for r in stored)
    assert generations(streaming) == 6


def test_the_cli_spools_what_it_cannot_write_exits_4_and_the_next_start_writes_it_once(
    pg: tuple[FaultProxy, str], streaming: FakeElumenta, tmp_path: Path
) -> None:
    proxy, url = pg
    proc = cli(compare_args(), streaming, url, tmp_path, PLAYGROUND_DB_OUTAGE_WAIT_S="1")
    wait_for(lambda: generations(streaming) == 6)
    proxy.outage()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    spool_files = list((tmp_path / "spool").glob("unsaved-answers-*.jsonl"))
    assert len(spool_files) == 1 and str(spool_files[0]) in err
    assert len(spool_files[0].read_text().splitlines()) == 6
    printed = [json.loads(line) for line in out.strip().splitlines()]
    proxy.restore()
    for _ in range(2):  # the first start writes them; the second finds nothing to write
        history = cli(["history", "--json"], streaming, url, tmp_path)
        _, history_err = history.communicate(timeout=60)
        assert history.returncode == 0, history_err
    assert spool_files[0].read_text() == ""
    stored = rows(url)
    assert [(r.status, r.content, r.tokens_used) for r in stored] == [
        ("completed", p["content"], p["tokens_used"]) for p in printed
    ]
    assert generations(streaming) == 6


def test_answers_waiting_in_memory_when_the_process_is_killed_keep_their_last_flush(
    pg: tuple[FaultProxy, str], streaming: FakeElumenta, tmp_path: Path
) -> None:
    proxy, url = pg
    proc = cli(compare_args(), streaming, url, tmp_path)
    wait_for(lambda: generations(streaming) == 6)
    wait_for(lambda: all(r.content for r in rows(url)), timeout_s=10)  # flushed once
    proxy.outage()
    time.sleep(3.0)  # the streams end; their final writes wait for the database
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    proxy.restore()
    open_store(url, spool_dir=tmp_path / "spool").close()
    stored = rows(url)
    assert [r.status for r in stored] == ["interrupted"] * 6
    assert all(r.content and r.tokens_used is None for r in stored)


def test_a_batch_pauses_through_an_outage_and_finishes_by_itself_asking_each_cell_once(
    pg: tuple[FaultProxy, str], fake_elumenta: FakeElumenta, tmp_path: Path
) -> None:
    proxy, url = pg
    fake_elumenta.quota_hour = fake_elumenta.quota_day = None
    fake_elumenta.script("*", ModelScript(n_deltas=5, delay_ms=40))
    store = open_store(url, spool_dir=tmp_path)
    try:
        batch_id = plan(store, ["gpt-5-nano", "claude-haiku-4.5", "deepseek-v3"], rows=12)
        running = job(store, batch_id, fake_elumenta.base_url, fake_elumenta.api_key).start()
        wait_for(lambda: running.progress().completed >= 6)
        proxy.outage()
        threading.Timer(3.0, proxy.restore).start()
        progress = running.wait(120)
        assert (progress.status, progress.completed, progress.failed) == ("completed", 36, 0)
        with store.session() as session, session.begin():
            cells = batch_cells(session, batch_id)
    finally:
        store.close()
    assert proxy.refused > 0
    assert [c.status for c in cells] == ["completed"] * 36
    assert generations(fake_elumenta) == 36


def test_a_claim_its_owner_could_not_renew_during_an_outage_is_not_taken_over_after_it(
    pg: tuple[FaultProxy, str],
    fake_elumenta: FakeElumenta,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, url = pg
    # Writes retry at once when the database returns: the job's next claim comes before
    # the other owner's next heartbeat, as it can on a busy server.
    monkeypatch.setattr(outage_module, "MAX_BACKOFF_S", 0.05)
    fake_elumenta.quota_hour = fake_elumenta.quota_day = None
    fake_elumenta.script("*", ModelScript(n_deltas=50, delay_ms=100))  # streams through it
    store = open_store(url, spool_dir=tmp_path)
    owner = "elsewhere:1:alive/a"  # another worker, alive, with a request in flight
    try:
        batch_id = plan(store, ["gpt-5-nano"], rows=2)
        with store.session() as session, session.begin():
            set_batch_status(session, batch_id, "running", execution="worker")
            theirs = batch_cells(session, batch_id)[0].id
            update_cells(
                session,
                [theirs],
                status="running",
                claimed_by=owner,
                heartbeat_utc=datetime.now(UTC),
            )
        beating, stop = threading.Event(), threading.Event()
        beating.set()

        def the_other_owner() -> None:
            while not stop.wait(0.1):
                if beating.is_set():
                    with suppress(sa.exc.OperationalError), store.session() as s, s.begin():
                        renew_heartbeat(s, batch_id, owner, [theirs], now=datetime.now(UTC))

        heart = threading.Thread(target=the_other_owner, daemon=True)
        heart.start()
        running = job(
            store,
            batch_id,
            fake_elumenta.base_url,
            fake_elumenta.api_key,
            heartbeat_s=0.1,
            stale_after_s=2.0,
            execution="worker",
        ).start()
        wait_for(lambda: generations(fake_elumenta) == 1)
        beating.clear()  # nobody can write a heartbeat while the database is away
        proxy.outage()
        time.sleep(3.0)  # longer than the stale interval
        proxy.restore()
        # The owner's heartbeats resume a second later, well within a stale interval.
        threading.Timer(1.0, beating.set).start()
        wait_for(lambda: running.progress().completed == 1)
        with store.session() as session, session.begin():
            update_cells(session, [theirs], status="completed")  # the owner's answer
        stop.set()
        heart.join()
        progress = running.wait(60)
        with store.session() as session:
            claimed_by = session.get(BatchCellRow, theirs).claimed_by  # type: ignore[union-attr]
    finally:
        store.close()
    assert proxy.refused > 0
    assert progress.status == "completed"
    assert claimed_by == owner
    assert generations(fake_elumenta) == 1


def test_the_app_says_answers_are_kept_during_an_outage_and_stores_them_after(
    pg: tuple[FaultProxy, str],
    streaming: FakeElumenta,
    app_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, url = pg
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", url)
    monkeypatch.setenv("ELUMENTA_BASE_URL", streaming.base_url)
    monkeypatch.setenv("ELUMENTA_API_KEY", streaming.api_key)
    runtime.reset()
    at = open_page()
    at.text_area(key="compare.prompt").set_value("Outage?")
    at.multiselect(key="compare.models").set_value([f"elumenta:{m}" for m in SIX])
    click(at.run(), "Run")
    wait_for(lambda: generations(streaming) == 6)
    proxy.outage()
    wait_for(lambda: unsaved().waiting > 0)
    # AppTest runs app.py's frame (where the banner is) on a session's first run only.
    assert any(BANNER in text for text in texts(open_page(), "warning"))
    proxy.restore()
    wait_for(lambda: not unsaved().alarming and unsaved().waiting == 0)
    run_until_done(at, timeout=30)
    assert not any(BANNER in text for text in texts(open_page(), "warning"))
    stored = rows(url)
    assert [r.status for r in stored] == ["completed"] * 6
    assert all(r.content and r.tokens_used for r in stored)
    assert generations(streaming) == 6


def test_two_workers_wait_out_an_outage_and_ask_each_cell_once(
    worker_store: Store, worker_database_url: str, fake_elumenta: FakeElumenta, tmp_path: Path
) -> None:
    fake_elumenta.quota_hour = fake_elumenta.quota_day = None
    fake_elumenta.balance = 10**6
    fake_elumenta.script("*", ModelScript(ttft_ms=150))
    batch_id = plan(worker_store, ["gpt-5-nano", "claude-haiku-4.5"], rows=30)
    with proxied(worker_database_url) as (proxy, via_proxy):
        a = WorkerProcess(via_proxy, fake_elumenta, tmp_path, log_path=tmp_path / "a.log")
        b = WorkerProcess(via_proxy, fake_elumenta, tmp_path, log_path=tmp_path / "b.log")
        with started_together(a, b):
            handle = queue_batch(worker_store, worker_settings(worker_database_url), batch_id)
            wait_for(lambda: handle.progress().completed >= 10)
            proxy.outage()
            time.sleep(3.0)  # as long as the stale interval: no heartbeat is written meanwhile
            proxy.restore()
            progress = handle.wait(120)
    assert proxy.refused > 0
    assert (progress.status, progress.completed, progress.failed) == ("completed", 60, 0)
    # The outage does not count toward the stale interval: no claim in flight is taken over.
    assert generations(fake_elumenta) == 60
