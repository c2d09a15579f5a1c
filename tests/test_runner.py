"""The runner: models run concurrently, fail and stop independently, and are recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from playground.catalog import load_catalog
from playground.config import Settings
from playground.errors import InvalidRequestError
from playground.providers.base import GenerationParams, Message, Provider
from playground.providers.demo import DemoProvider
from playground.providers.elumenta import ElumentaProvider
from playground.providers.registry import build_providers
from playground.results import CompareRequest, ModelResult, ModelTarget
from playground.runner import ModelDelta, ModelFinished, ModelStarted, RunEvent, Runner
from playground.store import Store, StoreRecorder
from playground.store.models import Result
from tests.fake_elumenta import FakeElumenta, ModelScript

CATALOG = load_catalog()


@pytest.fixture
def runner() -> Iterator[Runner]:
    runner = Runner(CATALOG, flush_interval_s=0.05)
    yield runner
    runner.close()


def demo(time_scale: float = 0.05) -> dict[str, Provider]:
    return {"demo": DemoProvider(CATALOG, time_scale=time_scale)}


def request(*models: str, provider: str = "demo", **kwargs: object) -> CompareRequest:
    return CompareRequest(
        messages=(Message("user", "Compare these models"),),
        targets=tuple(ModelTarget(provider, m) for m in models),
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass
class ListRecorder:
    """Keeps what the runner reports, in order, like the history store would persist it."""

    calls: list[tuple[str, ModelResult | CompareRequest]] = field(default_factory=list)
    cache: dict[str, ModelResult] = field(default_factory=dict)
    threads: set[str] = field(default_factory=set)

    def start_comparison(self, request: CompareRequest) -> int:
        self.calls.append(("comparison", request))
        return 42

    def find_cached(self, provider: str, request_hash: str) -> ModelResult | None:
        self.threads.add(threading.current_thread().name)
        return self.cache.get(request_hash)

    def record_started(self, comparison_id: int, result: ModelResult) -> int:
        assert comparison_id == 42
        self.threads.add(threading.current_thread().name)
        self.calls.append(("started", result))
        return 1000 + result.index

    def record_progress(self, result: ModelResult) -> None:
        self.calls.append(("progress", result))

    def record_finished(self, result: ModelResult) -> None:
        self.calls.append(("finished", result))


def test_models_stream_concurrently_and_complete(runner: Runner) -> None:
    events: list[RunEvent] = []
    models = ("gpt-5-nano", "claude-opus-4.5", "gemini-3-pro")
    started = time.perf_counter()
    handle = runner.start(request(*models), demo(), on_event=events.append)
    snapshot = handle.wait(30)
    wall = time.perf_counter() - started
    assert snapshot.done
    assert [r.status for r in snapshot.results] == ["completed"] * 3
    assert [r.model for r in snapshot.results] == list(models)
    for result in snapshot.results:
        assert "simulated answer" in result.content
        assert result.tokens_used == CATALOG.cost_of(result.model)
        assert result.price_tokens == CATALOG.cost_of(result.model)
        assert 0 < result.ttft_ms < result.latency_ms  # type: ignore[operator]
        assert result.chars_per_s and result.chars_per_s > 0
    slowest = max(r.latency_ms for r in snapshot.results)  # type: ignore[type-var]
    assert wall * 1000 >= slowest
    # Concurrent, told by order rather than by durations a loaded machine stretches: every
    # model was streaming before the first one finished (one at a time, the second model's
    # first words would come after the first model's end).
    first_words = [
        next(n for n, e in enumerate(events) if isinstance(e, ModelDelta) and e.index == i)
        for i in range(3)
    ]
    first_end = next(n for n, e in enumerate(events) if isinstance(e, ModelFinished))
    assert max(first_words) < first_end
    # Every model reports started, then deltas, then finished exactly once.
    for index in range(3):
        kinds = [type(e) for e in events if e.index == index]
        assert kinds[0] is ModelStarted and kinds[-1] is ModelFinished
        assert kinds.count(ModelFinished) == 1
        text = "".join(e.text for e in events if isinstance(e, ModelDelta) and e.index == index)
        assert text == snapshot.results[index].content


def test_snapshot_shows_live_partial_text(runner: Runner) -> None:
    handle = runner.start(request("gpt-5.2-pro"), demo(time_scale=0.5))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        snap = handle.snapshot()
        if snap.results[0].content:
            break
        time.sleep(0.01)
    assert snap.results[0].status == "running"
    assert not snap.done
    handle.cancel()
    handle.wait(10)


def test_cancel_one_model_keeps_its_partial_text_and_others_finish(runner: Runner) -> None:
    handle = runner.start(request("gpt-5-nano", "gpt-5.2-pro"), demo(time_scale=0.3))
    while not handle.snapshot().results[1].content:
        time.sleep(0.01)
    handle.cancel(1)
    snapshot = handle.wait(30)
    nano, pro = snapshot.results
    assert nano.status == "completed"
    assert pro.status == "cancelled"
    assert pro.content.startswith("*Demo mode")
    assert len(pro.content) < len(nano.content)  # stopped mid-answer
    assert pro.latency_ms is not None


def test_cancel_all(runner: Runner) -> None:
    handle = runner.start(request("gpt-5", "claude-opus-4.5"), demo(time_scale=1.0))
    time.sleep(0.05)
    handle.cancel()
    snapshot = handle.wait(10)
    assert snapshot.done
    assert {r.status for r in snapshot.results} == {"cancelled"}


def test_per_model_timeout_marks_partial_or_failed(fake_elumenta: FakeElumenta) -> None:
    # Streams that stall for good, so only the timeout ends them, however slow the machine.
    fake_elumenta.script("gpt-5-nano", ModelScript(text="quick and done"))
    fake_elumenta.script("gpt-5.2-pro", ModelScript(text="first words", hang_after_deltas=1))
    fake_elumenta.script("gpt-5", ModelScript(hang_after_deltas=0))
    provider = ElumentaProvider(
        api_key=SecretStr(fake_elumenta.api_key), base_url=fake_elumenta.base_url, catalog=CATALOG
    )
    runner = Runner(CATALOG, model_timeout_s=3.0)
    try:
        handle = runner.start(
            request("gpt-5-nano", "gpt-5.2-pro", "gpt-5", provider="elumenta"),
            {"elumenta": provider},
        )
        nano, pro, silent = handle.wait(30).results
    finally:
        runner.run_coroutine(provider.aclose())
        runner.close()
    assert (nano.status, nano.content) == ("completed", "quick and done")
    assert (pro.status, pro.error_code, pro.content) == ("partial", "timeout", "first")
    assert (silent.status, silent.error_code, silent.content) == ("failed", "timeout", "")
    assert pro.error_message == "No complete answer within 3 s."


def test_one_failing_provider_does_not_affect_the_others(runner: Runner) -> None:
    providers = demo() | {
        "elumenta": ElumentaProvider(api_key=None, base_url="http://127.0.0.1:9", catalog=CATALOG)
    }
    mixed = CompareRequest(
        messages=(Message("user", "hi"),),
        targets=(ModelTarget("elumenta", "gpt-5"), ModelTarget("demo", "gpt-5")),
    )
    failed, ok = runner.start(mixed, providers).wait(30).results
    assert failed.status == "failed"
    assert failed.error_code == "not_authenticated"
    assert "API key" in (failed.error_message or "")
    assert ok.status == "completed"


def test_unreachable_server_is_a_connection_error(runner: Runner) -> None:
    provider = ElumentaProvider(
        api_key=SecretStr("nb_x"), base_url="http://127.0.0.1:9", catalog=CATALOG
    )
    provider._retry = provider._retry.__class__(max_retries=1, base_backoff_s=0.01)
    result = runner.start(request("gpt-5", provider="elumenta"), {"elumenta": provider})
    (failed,) = result.wait(30).results
    assert failed.status == "failed"
    assert failed.error_code == "connection_error"
    runner.run_coroutine(provider.aclose())


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (request(), "Pick at least one model"),
        (request("nope"), "Unknown model 'nope'"),
        (request("gpt-5", provider="nobody"), "Unknown provider"),
        (request("llama3", provider="openai_compatible"), "Set OPENAI_COMPATIBLE_BASE_URL"),
        (request("gpt-5", params=GenerationParams(temperature=2.5)), "Temperature"),
        (request("gpt-5", params=GenerationParams(max_tokens=0)), "max_tokens"),
        (
            CompareRequest(
                messages=(Message("user", "  "),), targets=(ModelTarget("demo", "gpt-5"),)
            ),
            "prompt is empty",
        ),
        (
            CompareRequest(
                messages=(Message("user", "x" * 300_000),), targets=(ModelTarget("demo", "gpt-5"),)
            ),
            "limit is",
        ),
    ],
)
def test_invalid_requests_are_refused_before_anything_runs(
    runner: Runner, req: CompareRequest, message: str
) -> None:
    recorder = ListRecorder()
    with pytest.raises(InvalidRequestError, match=message):
        runner.start(req, demo(), recorder=recorder)
    assert recorder.calls == []


def test_recorder_sees_start_progress_and_finish_off_the_loop_thread(runner: Runner) -> None:
    recorder = ListRecorder()
    handle = runner.start(request("gpt-5.2-pro", "gpt-5-nano"), demo(0.3), recorder=recorder)
    snapshot = handle.wait(30)
    assert handle.comparison_id == 42
    assert recorder.calls[0][0] == "comparison"
    for index in (0, 1):
        mine = [(kind, r) for kind, r in recorder.calls[1:] if r.index == index]  # type: ignore[union-attr]
        assert mine[0][0] == "started" and mine[0][1].status == "running"
        assert mine[-1][0] == "finished" and mine[-1][1].status == "completed"
        assert mine[-1][1].content == snapshot.results[index].content
        assert snapshot.results[index].result_id == 1000 + index
    progress = [r for kind, r in recorder.calls if kind == "progress"]
    assert progress, "partial text must be flushed while streaming"
    assert all(len(r.content) > 0 for r in progress)  # type: ignore[union-attr]
    assert recorder.threads == {"playground-writer"}


def test_cache_hit_reuses_the_stored_answer_without_calling_the_provider(runner: Runner) -> None:
    recorder = ListRecorder()
    req = request("gpt-5", use_cache=True)
    first = runner.start(req, demo(), recorder=recorder).wait(30).results[0]
    recorder.cache[first.request_hash] = first
    provider = DemoProvider(CATALOG, time_scale=0.05)
    second = runner.start(req, {"demo": provider}, recorder=recorder).wait(30).results[0]
    assert second.cached
    assert second.status == "completed"
    assert second.content == first.content
    assert second.tokens_used == 0
    assert provider._counter == 0  # the provider was never asked


def test_a_broken_recorder_does_not_stop_the_run(runner: Runner) -> None:
    class Broken(ListRecorder):
        def record_finished(self, result: ModelResult) -> None:
            raise OSError("disk full")

    handle = runner.start(request("gpt-5-nano"), demo(), recorder=Broken())
    snapshot = handle.wait(30)
    assert snapshot.results[0].status == "completed"
    assert snapshot.record_error and "History not saved" in snapshot.record_error


def test_each_column_fails_its_own_way_against_the_fake_server(
    runner: Runner, fake_elumenta: FakeElumenta
) -> None:
    scripts = {
        "gpt-5-nano": ModelScript(text="all good", ttft_ms=20),
        "gpt-5": ModelScript(status=402),
        "claude-haiku-4.5": ModelScript(deltas=["half ", "an ", "answer"], drop_after_deltas=2),
        "gemini-3-pro": ModelScript(status=429, retry_after_s=600),
        "deepseek-r1": ModelScript(deltas=["so ", "far"], error_event_after=1),
        "grok-4-fast": ModelScript(status=403),
    }
    for model, script in scripts.items():
        fake_elumenta.script(model, script)
    elumenta = ElumentaProvider(
        api_key=SecretStr(fake_elumenta.api_key), base_url=fake_elumenta.base_url, catalog=CATALOG
    )
    handle = runner.start(request(*scripts, provider="elumenta"), {"elumenta": elumenta})
    results = {r.model: r for r in handle.wait(30).results}
    runner.run_coroutine(elumenta.aclose())
    assert results["gpt-5-nano"].status == "completed"
    assert results["gpt-5-nano"].content == "all good"
    assert results["gpt-5-nano"].tokens_used == 1
    assert results["gpt-5-nano"].balance_remaining is not None
    assert results["gpt-5-nano"].generation_id
    assert (results["gpt-5"].status, results["gpt-5"].error_code) == (
        "failed",
        "insufficient_tokens",
    )
    dropped = results["claude-haiku-4.5"]
    assert (dropped.status, dropped.content) == ("partial", "half an ")
    assert dropped.error_code == "stream_interrupted"
    limited = results["gemini-3-pro"]
    assert (limited.status, limited.error_code, limited.retry_after) == (
        "failed",
        "rate_limit_exceeded",
        600,
    )
    assert limited.rate_limit is not None
    errored = results["deepseek-r1"]
    assert (errored.status, errored.content) == ("partial", "so ")
    assert results["grok-4-fast"].error_code == "insufficient_plan"


def test_stop_right_after_start_still_records_every_column(runner: Runner) -> None:
    recorder = ListRecorder()
    handle = runner.start(request("gpt-5", "gpt-5-nano"), demo(1.0), recorder=recorder)
    handle.cancel()
    snapshot = handle.wait(10)
    assert snapshot.done
    assert [r.status for r in snapshot.results] == ["cancelled", "cancelled"]
    finished = [r for kind, r in recorder.calls if kind == "finished"]
    assert sorted(r.index for r in finished) == [0, 1]  # type: ignore[union-attr]
    assert all(r.result_id is not None for r in finished)  # type: ignore[union-attr]


def test_every_model_of_every_comparison_streams_at_once_in_the_app_runner(
    fake_elumenta: FakeElumenta,
) -> None:
    # Two users' six-model comparisons: twelve streams, more than a batch worker's
    # default concurrency (8), which once capped the app's runner too and made columns
    # wait for other users' answers to end. Each stream sends one word, then hangs.
    models = (
        "gpt-5-nano",
        "gpt-5",
        "claude-haiku-4.5",
        "gemini-3-pro",
        "deepseek-r1",
        "grok-4-fast",
    )
    for model in models:
        fake_elumenta.script(model, ModelScript(text="first words", hang_after_deltas=1))
    settings = Settings(
        _env_file=None,
        elumenta_base_url=fake_elumenta.base_url,
        elumenta_api_key=SecretStr(fake_elumenta.api_key),
    )
    assert settings.max_concurrency < 2 * len(models) <= settings.max_streams
    runner = Runner.from_settings(CATALOG, settings)
    providers = build_providers(settings, CATALOG, demo_spent=None)
    handles = []
    try:
        for _ in range(2):
            handles.append(runner.start(request(*models, provider="elumenta"), providers))
        deadline = time.monotonic() + 60  # only against a hang
        while time.monotonic() < deadline:
            results = [r for h in handles for r in h.snapshot().results]
            if all(r.content for r in results):
                break
            time.sleep(0.05)
        assert [r.content for r in results] == ["first"] * 12
        assert runner.live_runs() == 2
    finally:
        for handle in handles:
            handle.cancel()
            handle.wait(10)
        runner.run_coroutine(providers["elumenta"].aclose())
        runner.close()
    assert runner.live_runs() == 0


def test_every_models_row_is_stored_started_with_the_comparison(
    runner: Runner, store: Store, recorder: StoreRecorder
) -> None:
    """A request may go out only once its "started" row is stored: with the history store,
    start() stores those rows itself, so no model waits for the writer thread first. The
    runner's loop is held while start() runs: whatever is stored then, start() wrote."""
    loop_held, release = threading.Event(), threading.Event()

    def hold() -> None:
        loop_held.set()
        release.wait(30)

    runner.loop.call_soon_threadsafe(hold)
    assert loop_held.wait(10)
    try:
        handle = runner.start(request("gpt-5", "gpt-5-nano"), demo(), recorder=recorder)
        with store.session() as session:
            rows = session.execute(
                sa.select(Result.position, Result.id, Result.status, Result.started_utc)
                .where(Result.comparison_id == handle.comparison_id)
                .order_by(Result.position)
            ).all()
        assert [(row.status, row.started_utc is not None) for row in rows] == [
            ("running", True),
            ("running", True),
        ]
        assert [r.result_id for r in handle.snapshot().results] == [row.id for row in rows]
    finally:
        release.set()
    snapshot = handle.wait(30)
    assert [r.status for r in snapshot.results] == ["completed", "completed"]
    with store.session() as session:
        stored = session.execute(
            sa.select(Result.id, Result.status, Result.content)
            .where(Result.comparison_id == handle.comparison_id)
            .order_by(Result.position)
        ).all()
    assert [(row.id, row.status, row.content) for row in stored] == [
        (r.result_id, "completed", r.content) for r in snapshot.results
    ]
