"""Nothing lost: a process killed mid-stream leaves its partial answers, recovered at start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from playground.store import open_store
from playground.store.models import Result
from tests.fake_elumenta import FakeElumenta, ModelScript


def test_killed_cli_run_becomes_interrupted_with_its_partial_text(
    fake_elumenta: FakeElumenta, store_url: str
) -> None:
    fake_elumenta.script(
        "gpt-5", ModelScript(deltas=[f"word{i} " for i in range(400)], delay_ms=25)
    )
    fake_elumenta.script("gpt-5-nano", ModelScript(text="quick and done"))
    env = os.environ | {
        "ELUMENTA_API_KEY": fake_elumenta.api_key,
        "ELUMENTA_BASE_URL": fake_elumenta.base_url,
        "PLAYGROUND_DATABASE_URL": store_url,
        "PLAYGROUND_FLUSH_INTERVAL_S": "0.2",
        "PLAYGROUND_PROVIDER": "elumenta",
    }
    open_store(store_url).close()  # migrated up front, so polling can start at once
    command = [sys.executable, "-m", "playground", "compare", "-m", "gpt-5", "-m", "gpt-5-nano"]
    process = subprocess.Popen(
        [*command, "-p", "write a long answer", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    engine = sa.create_engine(store_url)
    try:
        deadline = time.monotonic() + 90  # only against a hang: the start is slow under load
        partial = ""
        while time.monotonic() < deadline and "word10 " not in partial:
            time.sleep(0.1)
            assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
            with engine.connect() as connection:
                partial = (
                    connection.execute(
                        sa.select(Result.content).where(
                            Result.model == "gpt-5", Result.status == "running"
                        )
                    ).scalar()
                    or ""
                )
        assert "word10 " in partial, "partial text must be flushed while streaming"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()

    store = open_store(store_url)
    try:
        with store.session() as session, session.begin():
            rows = {r.model: r for r in session.scalars(sa.select(Result))}
    finally:
        store.close()
    slow, quick = rows["gpt-5"], rows["gpt-5-nano"]
    assert slow.status == "interrupted"
    assert slow.content.startswith("word0 word1 ")
    assert len(slow.content) >= len(partial)
    assert quick.status == "completed"
    assert quick.content == "quick and done"
