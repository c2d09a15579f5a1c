"""Start-up recovery: rows a dead process left open become ``interrupted``, text kept."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from playground.results import ModelResult
from playground.store import Store, StoreRecorder, open_store, recover_interrupted
from playground.store.models import Result
from playground.store.recovery import INTERRUPTED_CODE, writer_alive, writer_id
from tests.store_fixtures import make_request


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _open_run(recorder: StoreRecorder, content: str) -> int:
    """A comparison of two targets: the first streaming ``content``, the second pending."""
    request = make_request(models=("gpt-5", "claude-haiku-4.5"))
    comparison_id = recorder.start_comparison(request)
    generation = request.generation_request(0)
    running = ModelResult(
        index=0,
        provider="demo",
        model="gpt-5",
        params=generation.params,
        request_hash=generation.request_hash("demo"),
        status="running",
    )
    result_id = recorder.record_started(comparison_id, running)
    recorder.record_progress(replace(running, result_id=result_id, content=content))
    return comparison_id


def _set_writer(store: Store, comparison_id: int, writer: str | None, updated: datetime) -> None:
    with store.session() as session, session.begin():
        session.execute(
            sa.update(Result)
            .where(Result.comparison_id == comparison_id)
            .values(writer=writer, updated_utc=updated)
        )


def _states(store: Store, comparison_id: int) -> list[tuple[str, str, str | None]]:
    with store.session() as session:
        rows = session.execute(
            sa.select(Result.status, Result.content, Result.error_code)
            .where(Result.comparison_id == comparison_id)
            .order_by(Result.position)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_open_rows_of_dead_or_stale_writers_become_interrupted(
    store: Store, recorder: StoreRecorder
) -> None:
    now = datetime.now(UTC)
    host = socket.gethostname()
    cases = {
        "dead process on this host": (f"{host}:{_dead_pid()}:abc", now, True),
        "earlier process with our pid": (f"{host}:{os.getpid()}:old", now, True),
        "no writer recorded": (None, now, True),
        "stale on another host": ("elsewhere:1:abc", now - timedelta(hours=2), True),
        "this process": (writer_id(), now, False),
        "live process on this host": (f"{host}:{os.getppid()}:abc", now, False),
        "fresh on another host": ("elsewhere:1:abc", now - timedelta(minutes=5), False),
    }
    comparisons = {}
    for name, (writer, updated, _) in cases.items():
        comparisons[name] = _open_run(recorder, f"partial text of {name}")
        _set_writer(store, comparisons[name], writer, updated)

    with store.session() as session, session.begin():
        changed = recover_interrupted(session, stale_after=timedelta(hours=1))

    assert changed == 2 * sum(recovered for _, _, recovered in cases.values())
    for name, (_, _, recovered) in cases.items():
        states = _states(store, comparisons[name])
        if recovered:
            assert states == [
                ("interrupted", f"partial text of {name}", INTERRUPTED_CODE),
                ("interrupted", "", INTERRUPTED_CODE),
            ], name
        else:
            assert states == [
                ("running", f"partial text of {name}", None),
                ("pending", "", None),
            ], name


def test_finished_rows_are_never_touched(store: Store, recorder: StoreRecorder) -> None:
    comparison_id = _open_run(recorder, "done")
    with store.session() as session, session.begin():
        session.execute(sa.update(Result).values(status="completed", writer=None))
        assert recover_interrupted(session) == 0
    assert [s for s, _, _ in _states(store, comparison_id)] == ["completed", "completed"]


def test_open_store_recovers_rows_left_by_a_crashed_process(store_url: str) -> None:
    store = open_store(store_url)
    comparison_id = _open_run(StoreRecorder(store.engine), "half an answer")
    _set_writer(store, comparison_id, f"{socket.gethostname()}:{_dead_pid()}:x", datetime.now(UTC))
    store.close()

    reopened = open_store(store_url)
    assert [s[:2] for s in _states(reopened, comparison_id)] == [
        ("interrupted", "half an answer"),
        ("interrupted", ""),
    ]
    with reopened.session() as session:
        finished = session.scalars(sa.select(Result.finished_utc)).all()
    assert all(f is not None for f in finished)
    reopened.close()


def test_writer_liveness() -> None:
    host = socket.gethostname()
    assert writer_alive(writer_id())
    assert not writer_alive(None)
    assert not writer_alive(f"{host}:{_dead_pid()}:x")
    assert writer_alive(f"{host}:{os.getppid()}:x")
    assert writer_alive("other-host:1:x")
