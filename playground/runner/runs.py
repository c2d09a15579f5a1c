"""Run one prompt on N models at once and let any thread watch it.

A :class:`Runner` owns one asyncio loop in a daemon thread, so a run outlives the script
(or Streamlit rerun) that started it. Each model is a task streaming from its provider;
one model's failure or cancellation never touches the others. Results are reported to an
optional :class:`~playground.results.Recorder` from a single writer thread
(:mod:`playground.runner.write_queue`: starts first, queued writes committed together), so
database I/O never stalls the streams.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from playground.catalog import Catalog
from playground.config import Settings
from playground.errors import APIError, InvalidRequestError, user_message
from playground.live_feed import GRACE_S, EventFeed
from playground.providers.base import (
    ContentDelta,
    Provider,
    StreamFinished,
    StreamStarted,
    validate_request,
)
from playground.results import (
    CompareRequest,
    ModelResult,
    Recorder,
    StartsLookingUp,
    StartsRunning,
)
from playground.runner.write_queue import WriteQueue
from playground.unsaved import TALLY

log = logging.getLogger(__name__)

MAX_KEPT_RUNS = 200
# A model's error code when its request was not sent because its history row could not be
# written (the database stayed unreachable).
NOT_RECORDED = "not_recorded"


@dataclass(frozen=True)
class ModelStarted:
    """A model's request is about to be sent (or answered from the cache)."""

    index: int
    result: ModelResult


@dataclass(frozen=True)
class ModelDelta:
    """A model streamed more text."""

    index: int
    text: str


@dataclass(frozen=True)
class ModelFinished:
    """A model reached a final status (completed, partial, failed or cancelled)."""

    index: int
    result: ModelResult


RunEvent = ModelStarted | ModelDelta | ModelFinished
EventCallback = Callable[[RunEvent], None]
#: Asked (on the runner's loop) right before a model's request is sent: ``None`` to send
#: it, or why not (the model then ends ``cancelled`` with that message, never sent).
SendCheck = Callable[[int], str | None]
NOT_SENT = "not_sent"


@dataclass(frozen=True)
class ColumnRef:
    """Where a result column's data lives: model ``index`` of run ``run_id``.

    Columns of one comparison usually share a run; re-running one column points it at a
    new single-model run.
    """

    run_id: str
    index: int


@dataclass(frozen=True)
class RunSnapshot:
    """A consistent picture of a run at one moment, safe to read from any thread."""

    run_id: str
    comparison_id: int | None
    results: tuple[ModelResult, ...]
    done: bool
    record_error: str | None = None


PROVIDER_SETUP = {
    "openai_compatible": "Set OPENAI_COMPATIBLE_BASE_URL to the server's URL up to and "
    "including /v1 (e.g. http://localhost:11434/v1) and OPENAI_COMPATIBLE_MODELS to its "
    "model names.",
}
"""How to make a provider that is only there when configured available."""


def unknown_provider_message(name: str) -> str:
    """Why ``name`` cannot be used, and what to set when it only needs configuring."""
    setup = PROVIDER_SETUP.get(name)
    if setup:
        return f"The {name!r} provider is not configured. {setup}"
    return f"Unknown provider {name!r}."


def validate_compare(
    request: CompareRequest, providers: Mapping[str, Provider], *, max_prompt_chars: int = 200_000
) -> None:
    """Raise :class:`InvalidRequestError` for a comparison that cannot be run as asked."""
    if not request.targets:
        raise InvalidRequestError("Pick at least one model.")
    for index in range(len(request.targets)):
        target = request.targets[index]
        provider = providers.get(target.provider)
        if provider is None:
            raise InvalidRequestError(unknown_provider_message(target.provider))
        known = [m.slug for m in provider.models()]
        if known and target.model not in known:
            raise InvalidRequestError(
                f"Unknown model {target.model!r} for {provider.label}. "
                f"Known models: {', '.join(known)}."
            )
        validate_request(request.generation_request(index), max_prompt_chars=max_prompt_chars)


class _Slot:
    """Mutable per-model state, only changed on the loop thread under the handle's lock."""

    def __init__(self, result: ModelResult) -> None:
        self.result = result
        self.chunks: list[str] = []
        self.task: asyncio.Task[None] | None = None
        self.cancel_requested = False
        # The earlier answer found as the comparison was stored (the cache on).
        self.cached: ModelResult | None = None

    def content(self) -> str:
        if len(self.chunks) > 1:
            self.chunks = ["".join(self.chunks)]
        return self.chunks[0] if self.chunks else ""


class RunHandle:
    """A started comparison: poll :meth:`snapshot`, :meth:`cancel` models, :meth:`wait`."""

    def __init__(
        self,
        runner: Runner,
        request: CompareRequest,
        comparison_id: int | None,
        slots: list[_Slot],
        may_send: SendCheck | None = None,
    ) -> None:
        self.run_id = uuid.uuid4().hex
        self.request = request
        self.comparison_id = comparison_id
        self._runner = runner
        self._slots = slots
        self._may_send = may_send
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.record_error: str | None = None
        self.feed = EventFeed()
        """Every change of this run in order, for the browser's live columns."""

    @property
    def done(self) -> bool:
        """Whether every model reached a final status."""
        return self._done.is_set()

    def snapshot(self) -> RunSnapshot:
        """Every model's current result (content so far, status, metrics)."""
        with self._lock:
            results = tuple(replace(s.result, content=s.content()) for s in self._slots)
        return RunSnapshot(
            run_id=self.run_id,
            comparison_id=self.comparison_id,
            results=results,
            done=self.done,
            record_error=self.record_error,
        )

    def cancel(self, index: int | None = None) -> None:
        """Stop one model (by column index) or all; text received so far is kept."""
        targets = self._slots if index is None else [self._slots[index]]
        for slot in targets:
            slot.cancel_requested = True
            task = slot.task
            if task is not None:
                self._runner.loop.call_soon_threadsafe(task.cancel)

    def wait(self, timeout: float | None = None) -> RunSnapshot:
        """Block until the run is done (or ``timeout`` seconds passed); return a snapshot."""
        self._done.wait(timeout)
        return self.snapshot()

    def _update(self, index: int, **changes: Any) -> ModelResult:
        with self._lock:
            slot = self._slots[index]
            slot.result = replace(slot.result, **changes)
            return replace(slot.result, content=slot.content())

    def _append(self, index: int, text: str) -> None:
        with self._lock:
            self._slots[index].chunks.append(text)

    def _publish(self, event: RunEvent) -> None:
        if isinstance(event, ModelDelta):
            self.feed.publish("delta", event.index, event.text)
        elif isinstance(event, ModelStarted):
            self.feed.publish("status", event.index, event.result)
            if event.result.content:  # an answer from the cache arrives whole
                self.feed.publish("delta", event.index, event.result.content)
        else:
            self.feed.publish("finished", event.index, event.result)


class Runner:
    """Runs comparisons on a private event loop in a daemon thread."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        model_timeout_s: float = 300.0,
        flush_interval_s: float = 1.5,
        max_concurrency: int = 8,
        max_prompt_chars: int = 200_000,
    ) -> None:
        self.catalog = catalog
        self.max_prompt_chars = max_prompt_chars
        self.model_timeout_s = model_timeout_s
        self.flush_interval_s = flush_interval_s
        self.loop = asyncio.new_event_loop()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._writer = WriteQueue("playground-writer")
        self._runs: dict[str, RunHandle] = {}
        self._runs_lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="playground-runner", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(
        cls, catalog: Catalog, settings: Settings, *, max_concurrency: int | None = None
    ) -> Runner:
        """A runner with the configured timeout, flush interval and prompt limit.

        At most ``max_concurrency`` requests stream at once (default ``max_streams``: the
        app's comparisons, where every model of a comparison should start at once).
        """
        return cls(
            catalog,
            model_timeout_s=settings.model_timeout_s,
            flush_interval_s=settings.flush_interval_s,
            max_concurrency=max_concurrency or settings.max_streams,
            max_prompt_chars=settings.max_prompt_chars,
        )

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(
        self,
        request: CompareRequest,
        providers: Mapping[str, Provider],
        *,
        recorder: Recorder | None = None,
        on_event: EventCallback | None = None,
        may_send: SendCheck | None = None,
    ) -> RunHandle:
        """Validate ``request``, record the comparison and start every model streaming.

        Models wait for a free slot (``max_concurrency``); ``may_send(index)`` is asked as
        a model gets its slot, right before its request goes out, so a caller that paused
        meanwhile sends nothing new. Returns at once; raises :class:`InvalidRequestError`
        before anything is sent or stored.
        """
        validate_compare(request, providers, max_prompt_chars=self.max_prompt_chars)
        slots = []
        for index, target in enumerate(request.targets):
            generation = request.generation_request(index)
            slots.append(
                _Slot(
                    ModelResult(
                        index=index,
                        provider=target.provider,
                        model=target.model,
                        params=generation.params,
                        request_hash=generation.request_hash(target.provider),
                        price_tokens=self._price(target.provider, target.model),
                    )
                )
            )
        comparison_id = self._record_start(request, slots, recorder) if recorder else None
        handle = RunHandle(self, request, comparison_id, slots, may_send)
        with self._runs_lock:
            self._runs[handle.run_id] = handle
            self._forget_old_runs()
        asyncio.run_coroutine_threadsafe(
            self._run(handle, providers, recorder, on_event), self.loop
        )
        return handle

    @staticmethod
    def _record_start(request: CompareRequest, slots: list[_Slot], recorder: Recorder) -> int:
        """Store the comparison; return its id.

        A recorder that can (``starts_together``: the history store) stores every model's
        row as started in the same transaction, so each request goes out as soon as the
        model gets a stream slot, without waiting for the writer thread. With the cache
        on, one that looks the answers up in that transaction (``StartsLookingUp``: a
        batch's) stores the models without an earlier answer as started and hands back
        the others'; otherwise each model first looks for a cached answer, which it then
        stores instead.
        """
        now = datetime.now(UTC)
        started = [replace(slot.result, status="running", started_at=now) for slot in slots]
        if request.use_cache and isinstance(recorder, StartsLookingUp):
            # The cache look-ups in the same transaction: a model without an earlier answer
            # is stored started, one with it is finished from it (no request either way
            # waits for the writer thread); a model with neither is started as usual.
            comparison_id, found_ids, hits = recorder.start_looking_up(request, started)
            for slot, result, row_id, hit in zip(slots, started, found_ids, hits, strict=True):
                if row_id is not None:
                    slot.result = replace(result, result_id=row_id)
                slot.cached = hit
            return comparison_id
        if (
            request.use_cache
            or not isinstance(recorder, StartsRunning)
            or not recorder.starts_together
        ):
            return recorder.start_comparison(request)
        comparison_id, row_ids = recorder.start_running(request, started)
        for slot, result, row_id in zip(slots, started, row_ids, strict=True):
            slot.result = replace(result, result_id=row_id)
        return comparison_id

    def get(self, run_id: str) -> RunHandle | None:
        """The handle of a recent run, e.g. after a Streamlit rerun; ``None`` if forgotten."""
        with self._runs_lock:
            return self._runs.get(run_id)

    def live_runs(self) -> int:
        """How many runs started here are still streaming (every session's together)."""
        with self._runs_lock:
            return sum(not handle.done for handle in self._runs.values())

    def find_by_comparison(self, comparison_id: int) -> RunHandle | None:
        """The newest recent run recorded as ``comparison_id`` (a share link to a live run)."""
        with self._runs_lock:
            matches = [h for h in self._runs.values() if h.comparison_id == comparison_id]
        return matches[-1] if matches else None

    def close(self, timeout: float = 5.0) -> None:
        """Cancel running work, stop the loop and the writer thread."""
        with self._runs_lock:
            handles = list(self._runs.values())
        for handle in handles:
            handle.cancel()
        for handle in handles:
            handle.wait(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        self._writer.close()

    def run_coroutine(self, coro: Any, timeout: float | None = None) -> Any:
        """Run ``coro`` on the runner's loop (where providers' clients live) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _price(self, provider: str, model: str) -> int | None:
        # Only Elumenta (and the demo that imitates it) bill per request from the catalog.
        if provider in ("elumenta", "demo"):
            return self.catalog.cost_of(model)
        return None

    def _forget_old_runs(self) -> None:
        finished = [rid for rid, h in self._runs.items() if h.done]
        for run_id in finished[: max(0, len(self._runs) - MAX_KEPT_RUNS)]:
            del self._runs[run_id]

    async def _run(
        self,
        handle: RunHandle,
        providers: Mapping[str, Provider],
        recorder: Recorder | None,
        on_event: EventCallback | None,
    ) -> None:
        tasks = []
        for index, slot in enumerate(handle._slots):
            task = asyncio.create_task(
                self._run_model(handle, index, providers, recorder, on_event)
            )
            # A stop that came before this point is seen by the task through cancel_requested.
            slot.task = task
            tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        handle._done.set()
        handle.feed.publish("done")
        # The feed holds the run's text a second time: let it go once no token opens it.
        self.loop.call_later(GRACE_S + 1, handle.feed.release)

    async def _write(
        self, handle: RunHandle, recorder: Recorder, method: str, *args: Any
    ) -> Any | None:
        """Run ``recorder.<method>(*args)`` on the writer thread; a stop never abandons it
        half-way.

        A cancellation that arrives meanwhile is absorbed (the caller sees it through
        ``cancel_requested``), so the row id of a started result is never lost.
        """
        future = asyncio.wrap_future(self._writer.submit(recorder, method, *args), loop=self.loop)
        while True:
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
            except Exception as exc:  # a DB hiccup must not kill the stream
                log.exception("Could not record a result")
                handle.record_error = f"History not saved: {user_message(exc)}"
                return None

    def _flush_soon(self, handle: RunHandle, recorder: Recorder, result: ModelResult) -> None:
        future: Future[None] = self._writer.submit(recorder, "record_progress", result)

        def report(done: Future[None]) -> None:
            error = done.exception()
            if error is not None:
                handle.record_error = f"History not saved: {user_message(error)}"

        future.add_done_callback(report)

    async def _run_model(
        self,
        handle: RunHandle,
        index: int,
        providers: Mapping[str, Provider],
        recorder: Recorder | None,
        on_event: EventCallback | None,
    ) -> None:
        def emit(event: RunEvent) -> None:
            handle._publish(event)
            if on_event is not None:
                try:
                    on_event(event)
                except Exception:  # a broken listener must not stop the run
                    log.exception("Run event listener failed")

        slot = handle._slots[index]
        target = handle.request.targets[index]
        if slot.result.result_id is not None:
            # Stored as started with the comparison: nothing to look up or write first.
            started = handle._update(index)
            emit(ModelStarted(index, started))
            await self._stream_and_finish(handle, index, providers, recorder, emit)
            return
        started = handle._update(index, status="running", started_at=datetime.now(UTC))
        cached = slot.cached
        if (
            cached is None
            and recorder is not None
            and handle.request.use_cache
            and not slot.cancel_requested
        ):
            cached = await self._write(
                handle, recorder, "find_cached", target.provider, started.request_hash
            )
        if cached is not None:
            await self._finish_from_cache(handle, index, cached, recorder, emit)
            return
        if recorder is not None:
            result_id = await self._write(
                handle, recorder, "record_started", handle.comparison_id, started
            )
            if result_id is None:
                # An answer without a row could be paid for and then lost: don't ask.
                final = handle._update(
                    index,
                    status="failed",
                    error_code=NOT_RECORDED,
                    error_message="Not sent: the answer could not be recorded in history.",
                    finished_at=datetime.now(UTC),
                )
                emit(ModelFinished(index, final))
                return
            started = handle._update(index, result_id=result_id)
        emit(ModelStarted(index, started))
        await self._stream_and_finish(handle, index, providers, recorder, emit)

    async def _stream_and_finish(
        self,
        handle: RunHandle,
        index: int,
        providers: Mapping[str, Provider],
        recorder: Recorder | None,
        emit: Callable[[RunEvent], None],
    ) -> None:
        """Stream a started model, then store and announce its final result."""
        target = handle.request.targets[index]
        changes, sent, end = await self._stream(
            handle, index, providers[target.provider], recorder, emit
        )
        final = handle._update(
            index,
            latency_ms=None if sent is None else (end - sent) * 1000,
            finished_at=datetime.now(UTC),
            **changes,
        )
        if recorder is not None:
            TALLY.add_waiting(1)  # until written (or spooled): the app's banner counts it
            try:
                await self._write(handle, recorder, "record_finished", final)
            finally:
                TALLY.add_waiting(-1)
        emit(ModelFinished(index, final))

    async def _finish_from_cache(
        self,
        handle: RunHandle,
        index: int,
        cached: ModelResult,
        recorder: Recorder | None,
        emit: Callable[[RunEvent], None],
    ) -> None:
        final = handle._update(
            index,
            status="completed",
            generation_id=cached.generation_id,
            tokens_used=0,
            balance_remaining=cached.balance_remaining,
            latency_ms=cached.latency_ms,
            ttft_ms=cached.ttft_ms,
            cached=True,
            finished_at=datetime.now(UTC),
        )
        handle._append(index, cached.content)
        final = replace(final, content=cached.content)
        emit(ModelStarted(index, final))
        if recorder is not None:
            result_id = await self._write(
                handle, recorder, "record_started", handle.comparison_id, final
            )
            final = handle._update(index, result_id=result_id)
        emit(ModelFinished(index, final))

    async def _stream(
        self,
        handle: RunHandle,
        index: int,
        provider: Provider,
        recorder: Recorder | None,
        emit: Callable[[RunEvent], None],
    ) -> tuple[dict[str, Any], float | None, float]:
        """Stream one model; returns the result's changes, when it was sent and when it ended."""
        slot = handle._slots[index]
        request = handle.request.generation_request(index)
        changes: dict[str, Any] = {}
        sent: float | None = None
        last_byte: float | None = None
        first_content: float | None = None
        try:
            if slot.cancel_requested:
                raise asyncio.CancelledError
            async with self._semaphore:
                held = handle._may_send(index) if handle._may_send is not None else None
                if held is not None:
                    changes.update(status="cancelled", error_code=NOT_SENT, error_message=held)
                    return changes, None, time.perf_counter()
                sent = last_flush = time.perf_counter()
                async with asyncio.timeout(self.model_timeout_s):
                    async with aclosing(provider.stream(request)) as events:
                        async for event in events:
                            if isinstance(event, ContentDelta):
                                now = time.perf_counter()
                                if first_content is None:
                                    first_content = now
                                    ttft_ms = (now - sent) * 1000
                                    handle._update(index, ttft_ms=ttft_ms)
                                    handle.feed.publish("ttft", index, ttft_ms)
                                handle._append(index, event.text)
                                emit(ModelDelta(index, event.text))
                                if recorder and now - last_flush >= self.flush_interval_s:
                                    last_flush = now
                                    self._flush_soon(handle, recorder, handle._update(index))
                            elif isinstance(event, StreamStarted):
                                handle._update(
                                    index,
                                    generation_id=event.generation_id or slot.result.generation_id,
                                    rate_limit=event.rate_limit or slot.result.rate_limit,
                                )
                            elif isinstance(event, StreamFinished):
                                last_byte = time.perf_counter()
                                changes.update(
                                    tokens_used=event.tokens_used,
                                    balance_remaining=event.balance_remaining,
                                    truncated=event.truncated,
                                )
                                if event.generation_id:
                                    changes["generation_id"] = event.generation_id
            changes["status"] = "completed"
        except asyncio.CancelledError:
            changes.update(
                status="cancelled", error_code="cancelled", error_message="Stopped by the user."
            )
        except TimeoutError:
            changes.update(
                status="partial" if first_content else "failed",
                error_code="timeout",
                error_message=f"No complete answer within {self.model_timeout_s:g} s.",
            )
        except APIError as exc:
            changes.update(
                status="partial" if first_content else "failed",
                error_code=exc.code,
                error_message=exc.message,
                retry_after=exc.retry_after,
                requests_sent=exc.requests_sent,
            )
            if exc.rate_limit is not None:
                changes["rate_limit"] = exc.rate_limit
        except Exception as exc:  # one model's bug must not sink the others
            log.exception("Model %s failed unexpectedly", request.model)
            changes.update(
                status="partial" if first_content else "failed",
                error_code="internal_error",
                error_message=user_message(exc),
            )
        return changes, sent, last_byte or time.perf_counter()
