"""Running a batch in the background: resumable, rate-limit aware, budget capped.

A :class:`BatchJob` drives one stored batch from a daemon thread. Each (template version,
dataset row) becomes one comparison in the history whose targets are the models still to
do; the :class:`~playground.runner.Runner` streams them under its concurrency limit and a
:class:`BatchRecorder` writes the history rows and the cells from the runner's writer
thread. Resuming after a crash re-runs only cells that are not completed, with the response
cache on, so an answer already paid for is never requested again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from playground.catalog import Catalog
from playground.errors import InvalidRequestError, user_message
from playground.evaluation.grading import make_grader
from playground.evaluation.judging import grade_batch, is_judged, judge_cost, judge_price_of
from playground.evaluation.plan import BatchInputs, BatchSpec, load_inputs
from playground.evaluation.quota import DEFAULT_RATE_LIMIT_PAUSE_S, quota_reaction
from playground.evaluation.recording import BatchProgress, BatchRecorder, RunningCell, cell_outcome
from playground.providers.base import Message, Provider
from playground.results import CompareRequest, ModelResult, ModelTarget
from playground.runner import ModelFinished, RunEvent, RunHandle, Runner
from playground.store.db import Store
from playground.store.eval_repository import (
    CellState,
    batch_cells,
    get_batch,
    set_batch_status,
    update_cells,
)
from playground.store.recovery import writer_id

log = logging.getLogger(__name__)

ProvidersFactory = Callable[[], Mapping[str, Provider]]
TODO_STATUSES = frozenset({"pending", "running", "cancelled"})
RATE_LIMITED = "rate_limit_exceeded"


class BatchJob:
    """One batch running in a daemon thread; poll :meth:`progress`, steer with pause/resume/cancel.

    ``providers_factory`` builds fresh providers for the job's own runner loop (HTTP clients
    belong to one event loop). ``low_watermark``: when the API reports this few requests
    left this hour, only one request is in flight at a time.
    """

    def __init__(
        self,
        store: Store,
        batch_id: int,
        catalog: Catalog,
        providers_factory: ProvidersFactory,
        *,
        model_timeout_s: float = 300.0,
        max_attempts: int = 5,
        low_watermark: int = 10,
        concurrency: int | None = None,
    ) -> None:
        self.batch_id = batch_id
        self._store = store
        self._catalog = catalog
        self._providers_factory = providers_factory
        self._model_timeout_s = model_timeout_s
        self._max_attempts = max_attempts
        self._low_watermark = low_watermark
        self._concurrency_override = concurrency
        self._cond = threading.Condition()
        self._paused = False
        self._cancelled = False
        self._blocked_until = 0.0
        self._slow = False
        self._in_flight = 0
        self._handles: dict[int, RunHandle] = {}
        self._group_left: dict[int, int] = {}
        self._inputs: BatchInputs | None = None
        self._counts = {"completed": 0, "failed": 0, "cached": 0, "assertion_failures": 0}
        self._total = 0
        self._spent = 0
        self._judge_spent = 0
        self._unjudged = 0
        self._finished_now = 0
        self._started_at: float | None = None
        self._status = "pending"
        self._message = ""
        self._queue: deque[list[RunningCell]] = deque()
        self._thread = threading.Thread(target=self._main, name=f"batch-{batch_id}", daemon=True)
        self._done = threading.Event()

    # -- control, from any thread ------------------------------------------------------

    def start(self) -> BatchJob:
        """Start (or resume, for a batch with cells left) in the background; returns at once."""
        self._thread.start()
        return self

    def pause(self) -> None:
        """Send no new requests; answers in flight still finish."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()
        self._set_status("paused")

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()
        self._set_status("running")

    def cancel(self) -> None:
        """Stop: no new requests, answers in flight are cancelled (the batch stays resumable)."""
        with self._cond:
            self._cancelled = True
            handles = list(self._handles.values())
            self._cond.notify_all()
        for handle in handles:
            handle.cancel()

    def wait(self, timeout: float | None = None) -> BatchProgress:
        """Block until the job ends (or ``timeout`` seconds); return the progress then."""
        self._done.wait(timeout)
        return self.progress()

    @property
    def finished(self) -> bool:
        """Whether the job's thread has ended."""
        return self._done.is_set()

    def progress(self) -> BatchProgress:
        """Done/failed/running/pending counts, tokens spent so far and an ETA."""
        with self._cond:
            pending = sum(len(group) for group in self._queue)
            eta = None
            if self._started_at is not None and self._finished_now:
                rate = self._finished_now / max(1e-6, time.monotonic() - self._started_at)
                eta = (pending + self._in_flight) / rate
            return BatchProgress(
                batch_id=self.batch_id,
                status=self._status,
                total=self._total,
                completed=self._counts["completed"],
                failed=self._counts["failed"],
                running=self._in_flight,
                pending=pending,
                cached=self._counts["cached"],
                assertion_failures=self._counts["assertion_failures"],
                spent_tokens=self._spent,
                eta_s=eta,
                message=self._message,
                judge_tokens=self._judge_spent,
            )

    # -- called by the recorder on the runner's writer thread ----------------------------

    def cell_values(self, cell: RunningCell, result: ModelResult) -> dict[str, Any]:
        """The cell's new columns for ``result``; a rate-limited cell goes back to pending."""
        assert self._inputs is not None
        if result.status == "cancelled":
            return {"status": "cancelled", "result_id": result.result_id}
        if result.error_code == RATE_LIMITED and cell.attempts < self._max_attempts:
            return {"status": "pending", "result_id": result.result_id}
        prompt = self._inputs.render(cell.version_id, cell.row_index)
        row = self._inputs.dataset.rows[cell.row_index]
        return cell_outcome(result, self._inputs.spec.assertions, row, prompt.user)

    # -- the job's own thread --------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the thread must always end with a status, never silently
            log.exception("Batch %s failed", self.batch_id)
            with self._cond:
                self._message = user_message(exc)
            self._set_status("interrupted")
        finally:
            self._done.set()

    def _load(self, session: Session) -> tuple[BatchSpec, list[CellState]]:
        batch = get_batch(session, self.batch_id)
        if batch is None:
            raise InvalidRequestError(f"No batch #{self.batch_id}.")
        # The column is the budget's source of truth: it can be raised before a resume.
        spec = replace(BatchSpec.from_json(batch.spec_json), budget_tokens=batch.budget_tokens)
        self._inputs = load_inputs(session, spec)
        return spec, batch_cells(session, self.batch_id)

    def _run(self) -> None:
        with self._store.session() as session, session.begin():
            spec, cells = self._load(session)
        groups: dict[tuple[int, int], list[RunningCell]] = {}
        for state in cells:
            self._count_existing(state)
            if state.status in TODO_STATUSES:
                key = (state.key.template_version_id, state.key.row_index)
                groups.setdefault(key, []).append(
                    RunningCell(state.id, *key, state.key.provider, state.key.model, state.attempts)
                )
        concurrency = self._concurrency_override or spec.concurrency
        with self._cond:
            self._total = len(cells)
            self._queue.extend(groups.values())
            self._started_at = time.monotonic()
        self._set_status("paused" if self._paused else "running")
        runner = Runner(
            self._catalog, model_timeout_s=self._model_timeout_s, max_concurrency=concurrency
        )
        providers = self._providers_factory()
        recorder = BatchRecorder(self._store, self._catalog, self.cell_values)
        try:
            budget_hit = self._schedule(spec, runner, providers, recorder, concurrency)
            if not self._cancelled:
                self._judge(spec, runner, providers)
        finally:
            for provider in providers.values():
                runner.run_coroutine(provider.aclose(), timeout=5)
            runner.close()
        self._set_status(self._final_status(budget_hit))

    def _count_existing(self, state: CellState) -> None:
        if state.status == "completed":
            self._counts["completed"] += 1
            self._counts["cached"] += state.cached
            self._counts["assertion_failures"] += state.passed is False
            self._spent += state.tokens_used or 0
            self._judge_spent += judge_cost(state.assertions)
            self._unjudged += not is_judged(state.assertions)
        elif state.status == "failed":
            self._counts["failed"] += 1

    def _final_status(self, budget_hit: bool) -> str:
        with self._cond:
            if self._cancelled:
                return "cancelled"
            if budget_hit:
                self._message = "Stopped at the budget cap; raise it and resume to continue."
                return "budget_reached"
            return "completed" if not self._queue else "paused"

    def _schedule(
        self,
        spec: BatchSpec,
        runner: Runner,
        providers: Mapping[str, Provider],
        recorder: BatchRecorder,
        concurrency: int,
    ) -> bool:
        """Submit groups while the window allows; returns whether the budget stopped it.

        Each cell reserves its answer's price plus the judge's, so judging stays in budget.
        """
        judge_price = judge_price_of(spec, self._catalog.cost_of) or 0
        committed = self._spent + self._judge_spent + judge_price * self._unjudged
        while True:
            with self._cond:
                group = self._next_group(concurrency)
                if group is None:
                    return False
                price = sum((self._catalog.cost_of(c.model) or 0) + judge_price for c in group)
                if spec.budget_tokens is not None and committed + price > spec.budget_tokens:
                    self._queue.appendleft(group)
                    self._wait_in_flight()
                    return True
                self._in_flight += len(group)
            committed += price
            self._submit(spec, runner, providers, recorder, group)

    def _judge(self, spec: BatchSpec, runner: Runner, providers: Mapping[str, Provider]) -> None:
        """Grade the completed answers' ``llm_judge`` assertions, within what the budget leaves."""
        price = judge_price_of(spec, self._catalog.cost_of)
        if spec.judge is None or price is None:
            return
        assert self._inputs is not None
        max_cells = None
        if spec.budget_tokens is not None and price:
            max_cells = max(0, spec.budget_tokens - self._spent - self._judge_spent) // price
        with self._cond:
            self._message = f"Judging the answers with {spec.judge.model}…"
        grader = make_grader(providers[spec.judge.provider], spec.judge.model)
        grading = grade_batch(self._store, self.batch_id, self._inputs, grader, max_cells=max_cells)
        cost = runner.run_coroutine(grading)
        with self._store.session() as session, session.begin():
            failures = sum(c.passed is False for c in batch_cells(session, self.batch_id))
        with self._cond:
            self._judge_spent += cost
            self._counts["assertion_failures"] = failures
            self._message = ""

    def _next_group(self, concurrency: int) -> list[RunningCell] | None:
        """Wait (lock held) until a group may be sent; ``None`` when there is nothing left to do."""
        while True:
            if self._cancelled:
                self._wait_in_flight()
                return None
            if not self._queue:
                if self._in_flight == 0:
                    return None
                self._cond.wait(0.5)
                continue
            if self._slow and len(self._queue[0]) > 1:
                # One request at a time: split the row's models into separate submissions.
                head = self._queue.popleft()
                self._queue.extendleft([cell] for cell in reversed(head))
            now = time.monotonic()
            window = 1 if self._slow else 2 * concurrency
            fits = self._in_flight == 0 or self._in_flight + len(self._queue[0]) <= window
            if not self._paused and now >= self._blocked_until and fits:
                return self._queue.popleft()
            timeout = self._blocked_until - now if now < self._blocked_until else 0.5
            self._cond.wait(max(0.01, timeout))

    def _wait_in_flight(self) -> None:
        while self._in_flight > 0:
            self._cond.wait(0.5)

    def _submit(
        self,
        spec: BatchSpec,
        runner: Runner,
        providers: Mapping[str, Provider],
        recorder: BatchRecorder,
        group: list[RunningCell],
    ) -> None:
        assert self._inputs is not None
        first = group[0]
        prompt = self._inputs.render(first.version_id, first.row_index)
        version = self._inputs.versions[first.version_id]
        request = CompareRequest(
            messages=(Message("user", prompt.user),),
            system_prompt=prompt.system,
            targets=tuple(ModelTarget(c.provider, c.model) for c in group),
            params=spec.params,
            title=f"{spec.title} · {version.name} v{version.version} · row {first.row_index + 1}",
            tags=("batch", f"batch-{self.batch_id}"),
            use_cache=spec.use_cache,
        )
        recorder.expect(request, group)
        key = id(group)
        with self._cond:
            self._group_left[key] = len(group)
        try:
            handle = runner.start(
                request,
                providers,
                recorder=recorder,
                on_event=lambda event: self._on_event(key, group, event),
            )
        except InvalidRequestError as exc:  # a row the API cannot take fails its cells only
            message = user_message(exc)
            with self._store.session() as session, session.begin():
                update_cells(session, [c.id for c in group], status="failed", error_message=message)
            with self._cond:
                self._in_flight -= len(group)
                self._group_left.pop(key, None)
                self._counts["failed"] += len(group)
                self._cond.notify_all()
            return
        with self._cond:
            if key not in self._group_left:
                return
            self._handles[key] = handle
            if self._cancelled:
                handle.cancel()

    def _on_event(self, key: int, group: list[RunningCell], event: RunEvent) -> None:
        """Runner callback (on its loop thread): count a finished cell, react to rate limits."""
        if not isinstance(event, ModelFinished):
            return
        result, cell = event.result, group[event.index]
        with self._cond:
            self._in_flight -= 1
            self._finished_now += 1
            self._react_to_quota(result)
            if result.status == "cancelled":
                self._queue.appendleft([cell])
            elif result.error_code == RATE_LIMITED and cell.attempts < self._max_attempts:
                self._queue.appendleft([cell])
                pause = result.retry_after or DEFAULT_RATE_LIMIT_PAUSE_S
                self._blocked_until = max(self._blocked_until, time.monotonic() + pause)
                self._message = f"Rate limited: waiting {pause:g} s before sending more."
            elif result.status == "completed":
                self._counts["completed"] += 1
                self._counts["cached"] += result.cached
                self._spent += result.tokens_used or 0
                self._counts["assertion_failures"] += cell.passed is False
            else:
                self._counts["failed"] += 1
            self._group_left[key] -= 1
            if self._group_left[key] == 0:
                del self._group_left[key]
                self._handles.pop(key, None)
            self._cond.notify_all()

    def _react_to_quota(self, result: ModelResult) -> None:
        """Slow down near the end of the hourly quota; wait for its reset when it is used up."""
        reaction = quota_reaction(result.rate_limit, self._low_watermark)
        if reaction is None:
            return
        self._slow = reaction.slow
        if reaction.wait_s is not None:
            self._blocked_until = max(self._blocked_until, time.monotonic() + reaction.wait_s)
        self._message = reaction.message or self._message

    def _set_status(self, status: str) -> None:
        with self._cond:
            self._status = status
        with self._store.session() as session, session.begin():
            set_batch_status(session, self.batch_id, status, writer=writer_id())
