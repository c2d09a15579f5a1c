"""Running a batch: cells claimed from the database, run on a runner, resumable, budget capped.

A :class:`BatchJob` works on one stored batch from a daemon thread. It claims cells still
to do (pending, cancelled, or running under a claim nobody renewed for ``stale_after_s``),
submits each (template version, dataset row) as one comparison whose targets are the
claimed models, and a :class:`BatchRecorder` writes the history rows and the cells from the
runner's writer thread. The same job runs a whole batch in the app's process
(``execution="in_process"``) or is one of several shards of it on queue workers
(``execution="worker"``): claims are atomic, so shards never run a cell twice, and the job
renews a heartbeat so cells of a process that died are taken over. Control (pause, cancel,
the budget) is read from the database between claims. Resuming re-runs only cells that are
not completed, with the response cache on, so an answer already paid for is never
requested again. A hosted batch (one with an owner) also keeps to its owner's limits while
it runs: their daily/monthly budget pauses it, their requests per minute slow it down.

The job keeps the state its threads share; the steps it takes live beside it:
:mod:`~playground.evaluation.scheduling` (what to claim, within the budget and the owner's
limits), :mod:`~playground.evaluation.watch` (status polls and heartbeats) and
:mod:`~playground.evaluation.judging.final_pass` (the judging that ends a batch).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from playground import config
from playground.access.spending import GATE_REFRESH_S, Admission, SpendingGate
from playground.catalog import Catalog
from playground.config import BatchExecution, Settings
from playground.errors import (
    InsufficientTokensError,
    InvalidRequestError,
    PlaygroundError,
    RateLimitInfo,
    user_message,
)
from playground.evaluation.budget import rows_of
from playground.evaluation.judging.cells import judge_price_of
from playground.evaluation.judging.final_pass import judge_answers
from playground.evaluation.plan import BatchInputs, BatchSpec, load_inputs
from playground.evaluation.quota import DEFAULT_RATE_LIMIT_PAUSE_S, newer_report, quota_reaction
from playground.evaluation.recording import (
    BUDGET_MESSAGE,
    BatchProgress,
    BatchRecorder,
    RunningCell,
    Tally,
    cell_outcome,
)
from playground.evaluation.scheduling import (
    Claim,
    JobRun,
    claim_cells,
    claim_limit,
    row_request,
)
from playground.evaluation.watch import Sight, Watcher, poll_batch
from playground.providers.base import Provider
from playground.results import ModelResult
from playground.runner import ModelFinished, RunEvent, RunHandle, Runner
from playground.store.db import Store
from playground.store.eval_claims import (
    ClaimedCell,
    cell_figures,
    finish_batch,
    has_live_claims,
)
from playground.store.eval_repository import (
    get_batch,
    set_batch_status,
    transition_batch,
    update_cells,
)
from playground.store.recovery import writer_id
from playground.templates import RenderedPrompt

log = logging.getLogger(__name__)

ProvidersFactory = Callable[[], Mapping[str, Provider]]
RATE_LIMITED = "rate_limit_exceeded"
# Every later request would be refused the same way: the batch pauses until a top-up.
NO_BALANCE = InsufficientTokensError.code
# How a job ended: nothing left to do, the budget stopped it, cancelled, or it left the
# batch to others (paused in worker mode, finished elsewhere, or this process shutting down).
Outcome = Literal["done", "budget", "cancelled", "left"]
_Control = Literal["run", "pause", "cancel", "leave", "fail"]
# Why a claimed cell's request was not sent after all (it stays to do).
NOT_SENT_BECAUSE: dict[_Control, str] = {
    "pause": "Not sent: the batch was paused; it is sent when the batch resumes.",
    "cancel": "Not sent: the batch was cancelled.",
    "leave": "Not sent: this process left the batch (paused, or shutting down).",
    "fail": "Not sent: the batch stopped on an error.",
}


def stopped_message(exc: Exception) -> str:
    """What a batch that stopped on ``exc`` says (stored with it, shown by the UI and CLI)."""
    return (
        f"Stopped by an error: {user_message(exc)} Answers received so far are kept; "
        "resume to continue."
    )


class BatchFault(PlaygroundError):
    """The job hit an error of its own while handling an answer: the batch stops (visibly)
    rather than run on with wrong figures or a model group that never completes."""


class BatchJob:
    """One batch (or a shard of it) running in a daemon thread; poll :meth:`progress`.

    ``providers_factory`` builds fresh providers for the job (HTTP clients belong to the
    runner's loop). ``runner``: a runner shared with other jobs (a worker process's, whose
    concurrency limit they share); by default the job runs its own. ``concurrency``
    overrides the batch's; ``max_concurrency`` caps it. ``low_watermark``: when the API
    reports this few requests left this hour, only one request is in flight at a time.
    ``heartbeat_s``/``stale_after_s``: how often the job renews its claims, and after how
    long without renewal other processes take over a claim. ``settings``: the server's,
    for the default limits of a batch's owner (the process's settings when not given).
    """

    def __init__(
        self,
        store: Store,
        batch_id: int,
        catalog: Catalog,
        providers_factory: ProvidersFactory,
        *,
        model_timeout_s: float = 300.0,
        max_attempts: int | None = None,
        low_watermark: int = 10,
        concurrency: int | None = None,
        max_concurrency: int | None = None,
        execution: BatchExecution = "in_process",
        runner: Runner | None = None,
        heartbeat_s: float = 10.0,
        stale_after_s: float = 60.0,
        settings: Settings | None = None,
    ) -> None:
        self.batch_id = batch_id
        self._settings = settings
        self._store = store
        self._catalog = catalog
        self._providers_factory = providers_factory
        self._model_timeout_s = model_timeout_s
        # One retry budget per cell, shared with the provider's own retries (README).
        self._max_attempts = (
            max_attempts
            if max_attempts is not None
            else (settings or config.get_settings()).max_retries + 1
        )
        self._low_watermark = low_watermark
        self._concurrency_override = concurrency
        self._max_concurrency = max_concurrency
        self._execution = execution
        self._shared_runner = runner
        self._heartbeat_s = heartbeat_s
        self._stale_after = timedelta(seconds=stale_after_s)
        self._poll_s = min(1.0, heartbeat_s)
        # An unanswered stretch up to half the slack between renewing and going stale still
        # counts as seen: the owner of a claim had the rest of the interval to renew it.
        self._sight = Sight(gap_s=max(2 * self._poll_s, (stale_after_s - heartbeat_s) / 2))
        # host:pid:token/shard: liveness checks read the process part, claims the whole.
        self._claimer = f"{writer_id()}/{uuid.uuid4().hex[:8]}"
        self._cond = threading.Condition()
        self._batch_status: str | None = None  # as last read from (or written to) the database
        self._control_epoch = 0  # bumped by every local write, so a slower read never undoes it
        self._steering = 0  # status writes under way (:meth:`_steer`)
        self._cancelled = False
        self._stopping = False
        self._drain_until: float | None = None
        self._blocked_until = 0.0
        self._slow = False
        self._quota: RateLimitInfo | None = None  # the newest quota report (lock held)
        self._in_flight: set[int] = set()
        self._sent: set[int] = set()  # cells of _in_flight whose request went out
        self._handles: dict[int, RunHandle] = {}
        self._group_left: dict[int, int] = {}
        self._inputs: BatchInputs | None = None
        self._tally = Tally()
        self._total = 0
        self._finished_now = 0
        self._started_at: float | None = None
        self._status = "pending"
        self._message = ""
        self._refused: str | None = None  # why the API refused for lack of balance, to pause
        self._fault: str | None = None  # an error while handling an answer: the batch stops
        self._outcome: Outcome | None = None
        self._thread = threading.Thread(target=self._main, name=f"batch-{batch_id}", daemon=True)
        self._done = threading.Event()

    @classmethod
    def from_settings(
        cls,
        store: Store,
        batch_id: int,
        catalog: Catalog,
        settings: Settings,
        providers_factory: ProvidersFactory,
        *,
        concurrency: int | None = None,
        max_concurrency: int | None = None,
        execution: BatchExecution = "in_process",
        runner: Runner | None = None,
    ) -> BatchJob:
        """A job timed and limited as ``settings`` say: the model timeout, heartbeats and
        the default limits of the batch's owner (the other arguments as for the class)."""
        return cls(
            store,
            batch_id,
            catalog,
            providers_factory,
            model_timeout_s=settings.model_timeout_s,
            concurrency=concurrency,
            max_concurrency=max_concurrency,
            execution=execution,
            runner=runner,
            heartbeat_s=settings.batch_heartbeat_s,
            stale_after_s=settings.batch_stale_after_s,
            settings=settings,
        )

    # -- control, from any thread ------------------------------------------------------

    def start(self) -> BatchJob:
        """Start (or resume, for a batch with cells left) in the background; returns at once."""
        self._thread.start()
        return self

    def pause(self) -> None:
        """Send no new requests; answers in flight still finish."""
        self._steer("paused")

    def resume(self) -> None:
        """Continue after :meth:`pause` (or after the owner's budget or balance paused it)."""
        with self._cond:
            self._message = ""
            self._refused = None
        self._steer("running")

    def cancel(self) -> None:
        """Stop: no new requests, answers in flight are cancelled (the batch stays resumable)."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
        self._cancel_in_flight()

    def stop(self, drain_s: float) -> None:
        """Leave the batch to other processes: claim nothing more, let answers in flight
        finish for up to ``drain_s`` seconds, then cancel the rest (they stay to do)."""
        with self._cond:
            self._stopping = True
            self._drain_until = time.monotonic() + drain_s
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> BatchProgress:
        """Block until the job ends (or ``timeout`` seconds); return the progress then."""
        self._done.wait(timeout)
        return self.progress()

    @property
    def finished(self) -> bool:
        """Whether the job's thread has ended."""
        return self._done.is_set()

    @property
    def outcome(self) -> Outcome | None:
        """How the job ended (``None`` while it runs)."""
        return self._outcome

    def progress(self) -> BatchProgress:
        """Done/failed/running/pending counts, tokens spent so far and an ETA.

        The figures are this job's view; :func:`~playground.evaluation.recording.stored_progress`
        reads a batch's from the database, whoever runs it.
        """
        with self._cond:
            tally, running = self._tally, len(self._in_flight)
            pending = max(0, self._total - tally.completed - tally.failed - running)
            eta = None
            if self._started_at is not None and self._finished_now:
                rate = self._finished_now / max(1e-6, time.monotonic() - self._started_at)
                eta = (pending + running) / rate
            return BatchProgress.of(
                self.batch_id,
                self._status,
                self._total,
                tally,
                running,
                eta,
                self._message,
                finishing=len(self._sent),
            )

    # -- called by the recorder on the runner's writer thread ----------------------------

    def cell_values(self, cell: RunningCell, result: ModelResult) -> dict[str, Any]:
        """The cell's new columns for ``result``; a rate-limited cell goes back to pending."""
        assert self._inputs is not None
        if result.status == "cancelled":
            return {"status": "cancelled", "result_id": result.result_id}
        if result.error_code == NO_BALANCE or self._retries_later(result):
            # Released, not kept: any shard may take it once the API lets requests through
            # (for a 402: once the balance is topped up and the paused batch resumed).
            # ``attempts`` counts the requests sent: the next try gets what is left of them.
            return {
                "status": "pending",
                "result_id": result.result_id,
                "claimed_by": None,
                "attempts": result.requests_sent,
            }
        prompt = self._prompt(cell.version_id, cell.row_index)
        row = self._inputs.dataset.rows[cell.row_index]
        return cell_outcome(result, self._inputs.spec.assertions, row, prompt.user)

    def _retries_later(self, result: ModelResult) -> bool:
        """A rate-limited cell whose retry budget (requests sent, the provider's retries
        included) is not used up goes back to pending, to be sent after the pause."""
        return result.error_code == RATE_LIMITED and result.requests_sent < self._max_attempts

    def _prompt(self, version_id: int, row_index: int) -> RenderedPrompt:
        """A row's prompt (rendered once, as its inputs were loaded)."""
        assert self._inputs is not None
        return self._inputs.render(version_id, row_index)

    # -- the job's own thread --------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the thread must always end with a status, never silently
            log.exception("Batch %s failed", self.batch_id)
            message = stopped_message(exc)
            with self._cond:
                self._message = message
                self._status = "interrupted"
            try:
                with self._store.session() as session, session.begin():
                    transition_batch(
                        session,
                        self.batch_id,
                        "interrupted",
                        only_from=("running", "paused", "judging"),
                        message=message,
                    )
            except (SQLAlchemyError, PlaygroundError):
                # The database stayed away: recovery marks the batch on the next start.
                log.warning("Batch %s: could not store that it stopped", self.batch_id)
        finally:
            self._done.set()

    def _run(self) -> None:
        with self._store.session() as session, session.begin():
            batch = get_batch(session, self.batch_id)
            if batch is None:
                raise InvalidRequestError(f"No batch #{self.batch_id}.")
            # The column is the budget's source of truth: it can be raised before a resume.
            spec = replace(BatchSpec.from_json(batch.spec_json), budget_tokens=batch.budget_tokens)
            self._inputs = load_inputs(session, spec)
            cells = cell_figures(session, self.batch_id)
            status = batch.status
            owner = batch.owner
        self._sight.answered()
        with self._cond:
            self._total = len(cells)
            self._tally = Tally.of(cells)
            self._started_at = time.monotonic()
            if self._execution == "worker":
                self._batch_status = self._status = status
        if self._execution == "in_process":
            # This process takes the batch over (a resume after a crash included).
            self._steer("paused" if self._batch_status == "paused" else "running", take_over=True)
        concurrency = self._concurrency_override or spec.concurrency
        concurrency = min(concurrency, self._max_concurrency or concurrency)
        runner = self._shared_runner or Runner(
            self._catalog, model_timeout_s=self._model_timeout_s, max_concurrency=concurrency
        )
        run = JobRun(
            spec=spec,
            inputs=self._inputs,
            runner=runner,
            providers=self._providers_factory(),
            # The batch owner's: answers count toward their spend and history, and the
            # response cache reuses only their own earlier answers (hosted mode).
            recorder=BatchRecorder(
                self._store, self._catalog, self.cell_values, batch_id=self.batch_id, owner=owner
            ),
            owner=owner,
            spending=None
            if owner is None
            else SpendingGate(owner, self._settings or config.get_settings()),
            concurrency=concurrency,
            judge_price=judge_price_of(spec, self._catalog.cost_of),
            row_size=len(spec.targets),
        )
        watcher = Watcher(
            self.batch_id, self._poll, poll_s=self._poll_s, heartbeat_s=self._heartbeat_s
        )
        watcher.start()
        try:
            self._outcome = self._schedule(run)
            self._finish(run, self._outcome)
        finally:
            watcher.stop()
            for provider in run.providers.values():
                runner.run_coroutine(provider.aclose(), timeout=5)
            if self._shared_runner is None:
                runner.close()

    def _schedule(self, run: JobRun) -> Outcome:
        """Claim and submit cells while the window allows; returns why it stopped."""
        while True:
            with self._cond:
                control, limit = self._next_claim(run)
                epoch = self._control_epoch
                control_fault = self._fault or ""
            if control == "cancel":
                self._cancel_in_flight()
                self._drain()
                return "cancelled"
            if control == "leave":
                self._drain()
                return "left"
            if control == "fail":
                self._drain()
                raise BatchFault(control_fault)
            with self._cond:
                refused, self._refused = self._refused, None
            if refused is not None:
                self._hold(Admission(0, pause=True, message=refused))
                continue
            claimed = self._claim(run, limit)
            if claimed.cells:
                self._submit_claim(run, claimed.cells)
                continue
            if claimed.held is not None:
                self._hold(claimed.held)
                continue
            if claimed.budget_hit:
                return "budget" if self._drain() else "left"
            if claimed.status != "running":
                self._observe(claimed.status, epoch)
                continue
            with self._cond:
                if self._in_flight:  # what they release (rate limits) is claimable again
                    self._cond.wait(0.5)
                    continue
            if not self._others_running():
                return "done"
            # Cells another process runs: wait, and take them over if its heartbeat stops.
            with self._cond:
                self._cond.wait(self._poll_s)

    def _control(self) -> _Control:
        """What the job should do now (lock held)."""
        status = self._batch_status
        if self._fault is not None:
            return "fail"
        if self._cancelled or status == "cancelled":
            return "cancel"
        if self._stopping or status not in ("running", "paused"):
            return "leave"
        if status == "paused":
            # A worker gives its slot to other batches; Resume queues new shards.
            return "leave" if self._execution == "worker" else "pause"
        return "run"

    def _next_claim(self, run: JobRun) -> tuple[_Control, int]:
        """Wait (lock held) until cells may be claimed (:func:`claim_limit`); the control and
        how many to claim.

        A wait for the quota or a rate limit is cut short when every cell is done: the
        claim then finds nothing and the batch completes (the last answer may well have
        used up the hour's quota).
        """
        while True:
            control = self._control()
            if control in ("cancel", "leave", "fail"):
                return control, 0
            now = time.monotonic()
            all_done = (
                not self._in_flight and self._tally.completed + self._tally.failed >= self._total
            )
            if control == "run" and (now >= self._blocked_until or all_done):
                limit = claim_limit(run, len(self._in_flight), self._slow)
                if limit is not None:
                    return "run", limit
            timeout = self._blocked_until - now if now < self._blocked_until else 0.5
            self._cond.wait(max(0.01, timeout))

    def _claim(self, run: JobRun, limit: int) -> Claim:
        """Claim up to ``limit`` cells in one transaction, within the budget."""
        return claim_cells(
            self._store,
            self.batch_id,
            run,
            limit,
            claimer=self._claimer,
            stale_before=self._stale_before,
            cost_of=self._catalog.cost_of,
            settling=self._settling,
        )

    def _settling(self) -> bool:
        """Whether answers are in flight, whose final cost may be below what they reserve."""
        with self._cond:
            return bool(self._in_flight)

    def _hold(self, admission: Admission) -> None:
        """Keep to the owner's limits: pause the batch (stored, saying why) or wait."""
        paused = False
        if admission.pause:
            with self._store.session() as session, session.begin():
                paused = transition_batch(
                    session,
                    self.batch_id,
                    "paused",
                    only_from=("running",),
                    message=admission.message,
                )
        with self._cond:
            self._message = admission.message
            if paused:
                self._batch_status = self._status = "paused"
                self._control_epoch += 1
            else:  # to wait, or the status changed elsewhere: the watcher reads it soon
                wait_s = admission.wait_s or GATE_REFRESH_S
                self._blocked_until = max(self._blocked_until, time.monotonic() + wait_s)
            self._cond.notify_all()

    def _submit_claim(self, run: JobRun, cells: list[ClaimedCell]) -> None:
        for row in rows_of(cells):
            group = [
                RunningCell(c.id, c.version_id, c.row_index, c.provider, c.model, c.attempts)
                for c in row
            ]
            with self._cond:
                self._in_flight.update(c.id for c in group)
            self._submit(run, group)

    def _submit(self, run: JobRun, group: list[RunningCell]) -> None:
        first = group[0]
        prompt = self._prompt(first.version_id, first.row_index)
        request = row_request(run, self.batch_id, group, prompt)
        run.recorder.expect(request, group)
        key = id(group)
        with self._cond:
            self._group_left[key] = len(group)
        try:
            handle = run.runner.start(
                request,
                run.providers,
                recorder=run.recorder,
                on_event=lambda event: self._on_event(key, group, event),
                may_send=lambda index: self._may_send(group[index]),
            )
        except InvalidRequestError as exc:  # a row the API cannot take fails its cells only
            message = user_message(exc)
            with self._store.session() as session, session.begin():
                update_cells(session, [c.id for c in group], status="failed", error_message=message)
            with self._cond:
                self._in_flight.difference_update(c.id for c in group)
                self._group_left.pop(key, None)
                self._tally.failed += len(group)
                self._cond.notify_all()
            return
        with self._cond:
            if key not in self._group_left:
                return
            self._handles[key] = handle
            if self._cancelled or self._batch_status == "cancelled":
                handle.cancel()

    def _on_event(self, key: int, group: list[RunningCell], event: RunEvent) -> None:
        """Runner callback (on its loop thread): count a finished cell, react to rate limits.

        The cell leaves the flight whatever happens; an error in handling its answer
        stops the batch with the reason stored (never just a line in the log).
        """
        if not isinstance(event, ModelFinished):
            return
        result, cell = event.result, group[event.index]
        with self._cond:
            try:
                self._count(cell, result)
            except Exception as exc:  # logged, and it stops the batch
                log.exception("Batch %s: handling cell %s's answer failed", self.batch_id, cell.id)
                self._fault = self._fault or user_message(exc)
            finally:
                self._in_flight.discard(cell.id)
                self._sent.discard(cell.id)
                self._group_left[key] -= 1
                if self._group_left[key] == 0:
                    del self._group_left[key]
                    self._handles.pop(key, None)
                self._cond.notify_all()

    def _may_send(self, cell: RunningCell) -> str | None:
        """Runner check (on its loop thread), as ``cell``'s request is about to go out:
        only a running batch sends; otherwise why not (the cell stays to do)."""
        with self._cond:
            control = self._control()
            if control == "run":
                self._sent.add(cell.id)
                return None
            return NOT_SENT_BECAUSE[control]

    def _count(self, cell: RunningCell, result: ModelResult) -> None:
        """Count a finished cell, then react to its quota headers and errors (lock held)."""
        self._finished_now += 1
        if self._retries_later(result):
            pause = result.retry_after or DEFAULT_RATE_LIMIT_PAUSE_S
            self._blocked_until = max(self._blocked_until, time.monotonic() + pause)
            self._message = f"Rate limited: waiting {pause:g} s before sending more."
        elif result.error_code == NO_BALANCE:  # not failed: pending again (cell_values)
            # Once paused, a late refusal of a request sent before is no news.
            if self._batch_status != "paused":
                self._refused = (
                    f"Paused: {cell.model} was refused for lack of balance "
                    f"({result.error_message or 'HTTP 402'}). Top up the balance, then "
                    "resume; answers already completed are not requested again."
                )
        elif result.status == "completed":
            self._tally.completed += 1
            self._tally.cached += result.cached
            self._tally.spent_tokens += result.tokens_used or 0
            self._tally.assertion_failures += cell.passed is False
        elif result.status != "cancelled":
            self._tally.failed += 1
        self._react_to_quota(result)

    def _react_to_quota(self, result: ModelResult) -> None:
        """Slow down near the end of the hourly quota; wait for its reset when it is used up.

        Only the newest report counts (:func:`newer_report`).
        """
        report = result.rate_limit if newer_report(self._quota, result.rate_limit) else None
        self._quota = report or self._quota
        reaction = quota_reaction(report, self._low_watermark)
        if reaction is None:
            return
        self._slow = reaction.slow
        if reaction.wait_s is not None:
            self._blocked_until = max(self._blocked_until, time.monotonic() + reaction.wait_s)
        self._message = reaction.message or self._message

    def _drain(self) -> bool:
        """Wait for the answers in flight; ``False`` when a shutdown's drain time ran out
        first (what was still streaming is then cancelled: those cells stay to do)."""
        with self._cond:
            while self._in_flight:
                if self._drain_until is not None and time.monotonic() >= self._drain_until:
                    break
                self._cond.wait(0.2)
            else:
                return True
        self._cancel_in_flight()
        with self._cond:
            while self._in_flight:
                self._cond.wait(0.2)
        return False

    def _cancel_in_flight(self) -> None:
        with self._cond:
            handles = list(self._handles.values())
        for handle in handles:
            handle.cancel()

    def _stale_before(self, now: datetime) -> datetime:
        """Others' claims renewed before this may be taken over at ``now``: their owners had
        a whole stale interval of database time (as this job saw it) to renew them."""
        return self._sight.stale_before(self._stale_after, now)

    def _others_running(self) -> bool:
        return self._store.retrying(
            lambda session: has_live_claims(
                session, self.batch_id, self._stale_before(datetime.now(UTC))
            )
        )

    def _finish(self, run: JobRun, outcome: Outcome) -> None:
        """Record how the batch ended; of several shards, the last one finishes it."""
        if outcome == "left":
            with self._cond:
                self._status = self._batch_status or self._status
            return
        if outcome == "cancelled":
            if self._execution == "in_process":
                self._steer("cancelled")
            with self._cond:
                self._status = "cancelled"
            return
        final = "completed" if outcome == "done" else "budget_reached"
        judging = run.judge_price is not None

        def finish(session: Session) -> tuple[bool, str]:
            won = finish_batch(
                session,
                self.batch_id,
                "judging" if judging else final,
                all_done=outcome == "done",
                stale_before=self._stale_before(datetime.now(UTC)),
            )
            batch = get_batch(session, self.batch_id)
            return won, batch.status if batch is not None else "interrupted"

        won, status = self._store.retrying(finish)
        if won and judging:
            refused = self._judge(run)
            status = final if refused is None else "paused"
            with self._store.session() as session, session.begin():
                transition_batch(
                    session, self.batch_id, status, only_from=("judging",), message=refused
                )
        with self._cond:
            self._status = status
            if outcome == "budget" and status != "paused":  # a refused judge says why
                self._message = BUDGET_MESSAGE

    def _judge(self, run: JobRun) -> str | None:
        """Grade the completed answers' ``llm_judge`` assertions (:func:`judge_answers`).

        Returns why the batch must pause when the judge was refused for lack of balance
        (the answers not graded yet are graded on a resume), else ``None``.
        """
        judged = judge_answers(self._store, self.batch_id, run, self._announce)
        if judged is None:
            return None
        refused, tally = judged
        with self._cond:
            self._tally = tally
            self._message = refused or ""
        return refused

    def _announce(self, message: str) -> None:
        with self._cond:
            self._message = message

    def _poll(self, beat: bool) -> None:
        """The watcher's call: adopt the stored status; with ``beat``, renew heartbeats."""
        with self._cond:
            epoch, in_flight = self._control_epoch, list(self._in_flight)
            # While this job writes a status, the database may still hold the one before.
            trusted = not self._steering
        status = poll_batch(self._store, self.batch_id, self._claimer, in_flight, beat=beat)
        self._sight.answered()
        if status is not None and trusted:
            self._observe(status, epoch)

    def _observe(self, status: str, epoch: int) -> None:
        """Adopt a status read from the database, unless this job changed it since the read."""
        with self._cond:
            if epoch != self._control_epoch or status == self._batch_status:
                return
            self._batch_status = status
            if status in ("running", "paused", "cancelled"):
                self._status = status
            self._cond.notify_all()
        if status == "cancelled":
            self._cancel_in_flight()

    def _steer(self, status: str, *, take_over: bool = False) -> None:
        """Write the batch's status (``take_over``: as this process's in-process batch)."""
        with self._cond:
            self._batch_status = self._status = status
            self._control_epoch += 1
            self._steering += 1
            self._cond.notify_all()
        writer, execution = (writer_id(), self._execution) if take_over else (None, None)
        try:
            with self._store.session() as session, session.begin():
                set_batch_status(session, self.batch_id, status, writer=writer, execution=execution)
        finally:
            with self._cond:
                self._steering -= 1
