"""The recorder: rows written as runs happen, prices frozen, cache hits, no secrets stored."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from playground.providers.base import GenerationParams
from playground.results import CompareRequest, ModelResult, ModelTarget
from playground.store import (
    Store,
    StoreRecorder,
    delete_comparison,
    get_comparison,
)
from playground.store.models import Result
from playground.store.stats import latency_by_model, model_summary
from tests.store_fixtures import Outcome, make_request, record_run


def _rows(store: Store) -> list[Result]:
    with store.session() as session:
        return list(session.scalars(sa.select(Result).order_by(Result.id)))


def _running(index: int, request: CompareRequest) -> ModelResult:
    generation = request.generation_request(index)
    provider = request.targets[index].provider
    return ModelResult(
        index=index,
        provider=provider,
        model=generation.model,
        params=generation.params,
        request_hash=generation.request_hash(provider),
        status="running",
    )


def test_comparison_is_stored_faithfully_and_can_be_rebuilt(
    store: Store, recorder: StoreRecorder
) -> None:
    request = make_request(
        title="WAL",
        tags=("db", "sqlite", "db", " "),
        note="first try",
        owner="ana",
        use_cache=True,
        system_prompt="Be brief.",
        params=GenerationParams(temperature=0.2, max_tokens=100),
    )
    request = replace(
        request,
        targets=(
            ModelTarget("demo", "gpt-5"),
            ModelTarget("demo", "claude-haiku-4.5", GenerationParams(temperature=1.5)),
        ),
    )
    comparison_id = recorder.start_comparison(request)

    with store.session() as session:
        stored = get_comparison(session, comparison_id)
    assert stored is not None
    assert stored.request == replace(request, tags=("db", "sqlite"))
    assert [r.status for r in stored.results] == ["pending", "pending"]
    assert [r.params for r in stored.results] == [
        GenerationParams(temperature=0.2, max_tokens=100),
        GenerationParams(temperature=1.5, max_tokens=100),
    ]
    assert [r.price_tokens for r in stored.results] == [2, 1]
    assert stored.results[1].request_hash == request.generation_request(1).request_hash("demo")


def test_rows_are_running_then_flushed_then_final(store: Store, recorder: StoreRecorder) -> None:
    request = make_request(models=("gpt-5",))
    comparison_id = recorder.start_comparison(request)
    running = _running(0, request)
    result_id = recorder.record_started(comparison_id, running)
    (row,) = _rows(store)
    assert (row.id, row.status, row.started_utc is not None) == (result_id, "running", True)

    running = replace(running, result_id=result_id, content="Partial ans", ttft_ms=120.0)
    recorder.record_progress(running)
    (row,) = _rows(store)
    assert (row.status, row.content, row.chars, row.ttft_ms) == (
        "running",
        "Partial ans",
        11,
        120.0,
    )

    finished_at = datetime(2026, 5, 1, 10, 0, 3, tzinfo=UTC)
    recorder.record_finished(
        replace(
            running,
            status="completed",
            content="Partial answer, now whole.",
            generation_id="gen_1",
            tokens_used=2,
            balance_remaining=298,
            latency_ms=1120.0,
            finished_at=finished_at,
        )
    )
    (row,) = _rows(store)
    assert row.status == "completed"
    assert row.content == "Partial answer, now whole."
    assert (row.generation_id, row.tokens_used, row.balance_remaining) == ("gen_1", 2, 298)
    assert row.chars == 26
    assert row.chars_per_s == pytest.approx(26 / 1.0)
    assert row.finished_utc == finished_at
    assert row.price_tokens == 2


def test_price_in_force_is_kept_when_the_catalog_changes(store: Store) -> None:
    prices = {"gpt-5": 2}
    recorder = StoreRecorder(store.engine, prices.get)
    record_run(recorder, make_request(models=("gpt-5",)), [Outcome()])
    prices["gpt-5"] = 5
    record_run(recorder, make_request(models=("gpt-5",)), [Outcome()])
    assert [r.price_tokens for r in _rows(store)] == [2, 5]


def test_a_target_started_twice_gets_a_second_row(store: Store, recorder: StoreRecorder) -> None:
    request = make_request(models=("gpt-5",))
    comparison_id = recorder.start_comparison(request)
    first = recorder.record_started(comparison_id, _running(0, request))
    second = recorder.record_started(comparison_id, _running(0, request))
    assert first != second
    assert [(r.position, r.status) for r in _rows(store)] == [(0, "running"), (0, "running")]


def test_progress_before_start_is_an_error(recorder: StoreRecorder) -> None:
    with pytest.raises(ValueError, match="record_started"):
        recorder.record_progress(_running(0, make_request()))


def test_cache_hit_reuses_a_completed_answer_and_is_marked(
    store: Store, recorder: StoreRecorder
) -> None:
    request = make_request(models=("gpt-5",))
    record_run(recorder, request, [Outcome(content="Cached text", latency_ms=900.0)])
    request_hash = request.generation_request(0).request_hash("demo")

    hit = recorder.find_cached("demo", request_hash)
    assert hit is not None
    assert (hit.cached, hit.status, hit.content, hit.result_id) == (
        True,
        "completed",
        "Cached text",
        None,
    )
    assert recorder.find_cached("elumenta", request_hash) is None
    assert recorder.find_cached("demo", "0" * 64) is None

    comparison_id = recorder.start_comparison(request)
    recorder.record_started(comparison_id, hit)
    rows = _rows(store)
    assert [(r.status, r.cached, r.content) for r in rows] == [
        ("completed", False, "Cached text"),
        ("completed", True, "Cached text"),
    ]
    assert rows[1].finished_utc is not None
    with store.session() as session:
        summary = model_summary(session).iloc[0]
        latency = latency_by_model(session).iloc[0]
    assert (summary["results"], summary["cached"], summary["api_calls"]) == (2, 1, 1)
    assert summary["tokens_spent"] == 1
    assert latency["samples"] == 1


@pytest.mark.parametrize(
    "outcome", [Outcome(status="failed", error_code="provider_error"), Outcome(status="partial")]
)
def test_unfinished_answers_are_never_cache_hits(recorder: StoreRecorder, outcome: Outcome) -> None:
    request = make_request(models=("gpt-5",))
    record_run(recorder, request, [outcome])
    assert recorder.find_cached("demo", request.generation_request(0).request_hash("demo")) is None


def test_deleted_comparisons_and_other_owners_are_not_cache_hits(store: Store) -> None:
    recorder = StoreRecorder(store.engine, owner="ana")
    request = make_request(models=("gpt-5",), owner="bob")
    comparison_id, _ = record_run(recorder, request, [Outcome()])
    request_hash = request.generation_request(0).request_hash("demo")
    assert recorder.find_cached("demo", request_hash) is None
    assert StoreRecorder(store.engine).find_cached("demo", request_hash) is not None

    with store.session() as session, session.begin():
        delete_comparison(session, comparison_id)
    assert StoreRecorder(store.engine).find_cached("demo", request_hash) is None


def test_no_table_holds_an_api_key(
    store: Store, recorder: StoreRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "nb_live_" + "k" * 32
    monkeypatch.setenv("ELUMENTA_API_KEY", key)
    failure = Outcome(status="failed", error_code="not_authenticated", error_message="Bad key.")
    record_run(recorder, make_request(title="key test"), [Outcome(), failure])
    inspector = sa.inspect(store.engine)
    with store.engine.connect() as connection:
        for table in inspector.get_table_names():
            columns = {c["name"] for c in inspector.get_columns(table)}
            keyish = {c for c in columns if "key" in c or "secret" in c or "auth" in c}
            # The one exception: a hosted user's own key, Fernet-encrypted, and its masked hint.
            assert keyish == ({"api_key_encrypted", "api_key_hint"} if table == "users" else set())
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                assert key not in repr(tuple(row))
