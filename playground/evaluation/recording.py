"""The batch's bookkeeping: progress snapshots, cell outcomes and the recorder writing cells.

:class:`BatchRecorder` is the history recorder plus the batch cells: it runs on the
runner's writer thread, so the cell of a result is updated in the same order as its row.
:func:`stored_progress` reads the same figures back from the database, for a batch that
another process (a queue worker) runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from playground.catalog import Catalog
from playground.errors import PlaygroundError, user_message
from playground.evaluation.assertions import (
    AssertionOutcome,
    AssertionSpec,
    Observation,
    check,
    judge_cost,
)
from playground.results import CompareRequest, ModelResult
from playground.store.db import Store
from playground.store.eval_claims import CellFigures, cell_figures
from playground.store.eval_repository import CellState, get_batch, mark_running, update_cells
from playground.store.recorder import StoreRecorder, committed_rows
from playground.store.repository import find_cached_results
from playground.store.spool import RowUpdate

log = logging.getLogger(__name__)

BUDGET_MESSAGE = "Stopped at the budget cap; raise it and resume to continue."
WAITING_MESSAGE = "Waiting for a worker process to take it."
# The ETA of a stored batch extrapolates the cells finished in this last stretch of time.
ETA_WINDOW = timedelta(seconds=30)


@dataclass(frozen=True)
class BatchProgress:
    """A consistent picture of a batch, safe to read from any thread."""

    batch_id: int
    status: str
    total: int
    completed: int
    failed: int
    running: int
    pending: int
    cached: int
    assertion_failures: int
    spent_tokens: int
    eta_s: float | None
    message: str = ""
    judge_tokens: int = 0  # the LLM judge's spend, on top of spent_tokens; both count to the cap
    finishing: int = 0  # requests sent and not answered yet (what a paused batch still awaits)

    @classmethod
    def of(
        cls,
        batch_id: int,
        status: str,
        total: int,
        tally: Tally,
        running: int,
        eta_s: float | None,
        message: str,
        *,
        finishing: int = 0,
    ) -> BatchProgress:
        """The progress of ``total`` cells counted by ``tally``, ``running`` of them in flight
        (``finishing`` of them sent). A paused batch's message says how many are finishing."""
        if status == "paused":
            message = paused_message(message, finishing)
        return cls(
            batch_id=batch_id,
            status=status,
            total=total,
            completed=tally.completed,
            failed=tally.failed,
            running=running,
            pending=max(0, total - tally.completed - tally.failed - running),
            cached=tally.cached,
            assertion_failures=tally.assertion_failures,
            spent_tokens=tally.spent_tokens,
            eta_s=eta_s,
            message=message,
            judge_tokens=tally.judge_tokens,
            finishing=finishing,
        )

    @property
    def done(self) -> int:
        """Cells that reached a final state (completed or failed)."""
        return self.completed + self.failed

    @property
    def fraction(self) -> float:
        """Share of cells done, 0..1, for a progress bar."""
        return self.done / self.total if self.total else 1.0


def paused_message(message: str, finishing: int) -> str:
    """A paused batch's ``message``, saying how many requests sent before the pause are
    still finishing (pausing sends nothing new; those answers are kept)."""
    if not finishing:
        return message
    note = f"{finishing} request{'' if finishing == 1 else 's'} still finishing"
    return f"{message} ({note}.)" if message else f"Paused — {note}."


@dataclass
class Tally:
    """Counts and spend of a batch's finished cells."""

    completed: int = 0
    failed: int = 0
    cached: int = 0
    assertion_failures: int = 0
    spent_tokens: int = 0
    judge_tokens: int = 0

    def add(self, cell: CellState | CellFigures) -> None:
        """Count one stored cell (only completed and failed ones count)."""
        if cell.status == "completed":
            self.completed += 1
            self.cached += cell.cached
            self.assertion_failures += cell.passed is False
            self.spent_tokens += cell.tokens_used or 0
            self.judge_tokens += judge_cost(cell.assertions)
        elif cell.status == "failed":
            self.failed += 1

    @classmethod
    def of(cls, cells: Sequence[CellState | CellFigures]) -> Tally:
        """The tally of these stored cells."""
        tally = cls()
        for cell in cells:
            tally.add(cell)
        return tally


def stored_progress(
    session: Session, batch_id: int, *, now: datetime, stale_before: datetime
) -> BatchProgress | None:
    """A batch's progress as the database has it (whichever processes run it); ``None`` if unknown.

    ``stale_before``: a running batch with no heartbeat since then is waiting for a worker.
    """
    batch = get_batch(session, batch_id)
    if batch is None:
        return None
    cells = cell_figures(session, batch_id)
    tally = Tally.of(cells)
    running = sum(c.status == "running" for c in cells)
    pending = len(cells) - tally.completed - tally.failed - running
    recent = sum(
        c.status in ("completed", "failed") and c.updated_utc >= now - ETA_WINDOW for c in cells
    )
    eta = (pending + running) / (recent / ETA_WINDOW.total_seconds()) if recent else None
    message = ""
    if batch.status == "budget_reached":
        message = BUDGET_MESSAGE
    elif batch.status == "judging":
        message = "Judging the answers…"
    elif batch.status == "running" and (batch.heartbeat_utc or batch.updated_utc) < stale_before:
        message = WAITING_MESSAGE
    # The cells of a paused batch still running were sent before the pause (or are about
    # to be released unsent, at once).
    return BatchProgress.of(
        batch_id, batch.status, len(cells), tally, running, eta, message, finishing=running
    )


@dataclass
class RunningCell:
    """In-memory state of one cell while the job runs (guarded by the job's lock)."""

    id: int
    version_id: int
    row_index: int
    provider: str
    model: str
    attempts: int
    passed: bool | None = None


CellValues = Callable[[RunningCell, ModelResult], dict[str, Any]]


def cell_outcome(
    result: ModelResult,
    assertions: tuple[AssertionSpec, ...],
    row: Mapping[str, Any],
    question: str,
) -> dict[str, Any]:
    """The cell columns for a finished result: status, result id, assertion outcomes.

    Only completed answers are checked; ``llm_judge`` assertions are graded later by
    :func:`playground.evaluation.judging.cells.grade_batch` (they need a model call). An
    assertion that cannot run is an errored outcome saying why (:func:`graded`), and
    the cell's ``error_message`` repeats the reason.
    """
    values: dict[str, Any] = {"result_id": result.result_id}
    if result.status != "completed":
        values.update(status="failed", error_message=result.error_message, passed=None)
        return values
    observation = Observation(result.content, result.latency_ms, result.tokens_used, question)
    checked = [graded(a, observation, row) for a in assertions if a.kind != "llm_judge"]
    errors = [o.message for o in checked if o.error]
    values.update(
        status="completed",
        error_message="; ".join(errors) if errors else None,
        assertions_json=[o.to_dict() for o in checked],
        passed=all(o.passed for o in checked) if checked else None,
    )
    return values


def graded(
    spec: AssertionSpec, observation: Observation, row: Mapping[str, Any]
) -> AssertionOutcome:
    """:func:`check`, except that a check that cannot run (a dataset value it cannot use,
    such as a schema column that is not JSON, or a bug) is an errored outcome giving the
    reason instead of an exception: the answer was paid for and must be stored either way."""
    try:
        return check(spec, observation, row)
    except Exception as exc:  # noqa: BLE001 - reported in the outcome (and logged if a bug)
        return grading_error(spec.label(), exc)


def grading_error(label: str, exc: Exception) -> AssertionOutcome:
    """The errored outcome of a check (``label``) that raised ``exc``, with a readable reason."""
    if isinstance(exc, PlaygroundError):
        reason = user_message(exc)
    else:
        log.warning("Assertion %s could not run", label, exc_info=exc)
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return AssertionOutcome(label, False, f"Could not check this answer: {reason}", error=True)


class BatchRecorder(StoreRecorder):
    """The history recorder plus the batch cells: each finished result updates its cell.

    A result row and its cell are written in one transaction, and a row's comparison, its
    cells' ``running`` mark and its response-cache look-ups in another; the writer thread
    writes the starts (or the final writes) queued meanwhile together, in one transaction:
    the fewer transactions a batch opens, the less its writer thread holds the GIL and
    SQLite's lock.
    ``cell_values(cell, result)`` decides the cell's new columns (the job knows retries).
    """

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        cell_values: CellValues,
        *,
        batch_id: int,
        owner: str | None = None,
    ) -> None:
        super().__init__(
            store.engine, catalog.cost_of, owner=owner, writes=store.writes, batch_id=batch_id
        )
        self._cell_values = cell_values
        self._expected: dict[int, list[RunningCell]] = {}
        self._by_comparison: dict[int, list[RunningCell]] = {}
        self._by_result: dict[int, RunningCell] = {}
        # Cache look-ups made with the comparison, by (provider, request hash); a target's
        # entry is dropped when its result row is written.
        self._cached: dict[tuple[str, str], ModelResult | None] = {}

    def expect(self, request: CompareRequest, cells: list[RunningCell]) -> None:
        """Register the cells ``request`` (about to be started) runs, in target order."""
        self._expected[id(request)] = cells

    def start_comparison(self, request: CompareRequest) -> int:
        """Store the comparison, mark its cells running (one more attempt each) and, for a
        cached request, look up every target's earlier answer."""
        cells = self._running_cells(request)
        insert = self._comparison_work(request)

        def write(session: Session) -> int:
            comparison_id, _ = insert(session)
            _mark_running(session, cells)
            if request.use_cache:
                keys = _cache_keys(request)
                found = find_cached_results(session, keys, owner=self._owner)
                self._cached.update({key: found.get(key) for key in keys})
            return comparison_id

        comparison_id = self._retrying(write)
        self._by_comparison[comparison_id] = cells
        return comparison_id

    def start_looking_up(
        self, request: CompareRequest, started: Sequence[ModelResult]
    ) -> tuple[int, list[int | None], list[ModelResult | None]]:
        """:meth:`start_comparison` with the rows of targets that have no cached answer
        stored ``running`` as ``started[i]`` (see ``StartsLookingUp``): their requests go
        out without a start written first by the writer thread (in a batch, a quarter of
        that thread's time holding the GIL). A target neither started nor found in the
        cache (its answer left the history between two attempts of this transaction)
        gets ``None`` twice: the runner then looks it up and starts it as usual."""
        cells = self._running_cells(request)
        # The runner hashed each target's request already: its started result carries it.
        keys = [(result.provider, result.request_hash) for result in started]
        rows: list[ModelResult | None] = list(started)
        # One work for every attempt: a retry finds the comparison an earlier one committed.
        insert = self._comparison_work(request, rows)

        def write(session: Session) -> tuple[int, list[int | None], list[ModelResult | None]]:
            found = find_cached_results(session, keys, owner=self._owner)
            hits = [found.get(key) for key in keys]
            rows[:] = [None if hit else given for hit, given in zip(hits, started, strict=True)]
            comparison_id, ids = insert(session)
            if ids is None:  # committed by an earlier attempt: its rows say which started
                committed = committed_rows(session, comparison_id)
                ids = {position: row_id for position, (row_id, _) in committed.items()}
                ran = {
                    position for position, (_, status) in committed.items() if status != "pending"
                }
                hits = [None if i in ran else hit for i, hit in enumerate(hits)]
            else:
                ran = {i for i, hit in enumerate(hits) if hit is None}
            _mark_running(session, cells)
            return comparison_id, [ids[i] if i in ran else None for i in range(len(keys))], hits

        comparison_id, row_ids, hits = self._retrying(write)
        self._by_comparison[comparison_id] = cells
        for index, row_id in enumerate(row_ids):
            if row_id is not None:  # its final write finds the cell by the row
                self._by_result[row_id] = cells[index]
        return comparison_id, row_ids, hits

    def _running_cells(self, request: CompareRequest) -> list[RunningCell]:
        """The cells ``request`` runs, each counting one more attempt."""
        cells = self._expected.pop(id(request))
        for cell in cells:
            cell.attempts += 1
        return cells

    @property
    def group_key(self) -> object | None:
        """This recorder's queued calls share a transaction (each result with its cell, see
        :meth:`_work`), never with another recorder's."""
        return (self._engine, self._writes, id(self))

    def write_together(
        self, calls: Sequence[tuple[StoreRecorder, str, tuple[Any, ...]]]
    ) -> list[Any]:
        """The base class's, then the finished results' cells are forgotten."""
        try:
            return super().write_together(calls)
        finally:
            for _recorder, method, args in calls:
                if method == "record_finished":
                    self._by_result.pop(args[0].result_id, None)

    def record_finished(self, result: ModelResult) -> None:
        """Write the final result row and its cell (retried, else spooled, together)."""
        try:
            super().record_finished(result)
        finally:
            self._by_result.pop(result.result_id or 0, None)

    def _find_cached_work(
        self, provider: str, request_hash: str
    ) -> Callable[[Session], ModelResult | None]:
        """The earlier answer looked up with the comparison (else from the database)."""
        key = (provider, request_hash)
        if key in self._cached:
            found = self._cached[key]
            return lambda _session: found
        return super()._find_cached_work(provider, request_hash)

    def _started_work(self, comparison_id: int, result: ModelResult) -> Callable[[Session], int]:
        """The result row; a cached answer (already final) settles its cell with it."""
        cell = self._by_comparison[comparison_id][result.index]
        self._cached.pop((result.provider, result.request_hash), None)
        started = result.started_at or datetime.now(UTC)

        def write(session: Session) -> int:
            result_id = self._write_started(session, comparison_id, result, started)
            if result.is_terminal:
                self._settle(session, cell, replace(result, result_id=result_id))
            else:  # the final write finds its cell by the row (again, if this is a retry)
                self._by_result[result_id] = cell
            return result_id

        return write

    def _final_work(
        self, result: ModelResult, also: list[RowUpdate]
    ) -> tuple[Callable[[Session], None], list[RowUpdate]]:
        """The final row's write with its cell's (one transaction, spooled together)."""
        assert result.result_id is not None
        cell = self._by_result[result.result_id]
        values = self._settled_values(cell, result)
        values["updated_utc"] = datetime.now(UTC)
        return super()._final_work(result, [*also, RowUpdate("batch_cells", cell.id, values)])

    def _settle(self, session: Session, cell: RunningCell, result: ModelResult) -> None:
        update_cells(session, [cell.id], **self._settled_values(cell, result))

    def _settled_values(self, cell: RunningCell, result: ModelResult) -> dict[str, Any]:
        """The cell's final columns for ``result``; grading that fails in any way still
        settles the cell (with the reason), so the paid answer is written and never re-asked."""
        try:
            values = self._cell_values(cell, result)
        except Exception as exc:  # noqa: BLE001 - the answer is written with its cell all the same
            values = settled_anyway(result, grading_error("grading", exc))
        cell.passed = values.get("passed")
        return values


def _cache_keys(request: CompareRequest) -> list[tuple[str, str]]:
    """Each target's (provider, request hash): what its cached answer is found by."""
    return [
        (t.provider, request.generation_request(i).request_hash(t.provider))
        for i, t in enumerate(request.targets)
    ]


def _mark_running(session: Session, cells: Sequence[RunningCell]) -> None:
    """Mark ``cells`` running, each with its attempts."""
    by_attempts: dict[int, list[int]] = {}
    for cell in cells:
        by_attempts.setdefault(cell.attempts, []).append(cell.id)
    for attempts, ids in by_attempts.items():
        mark_running(session, ids, attempts)


def settled_anyway(result: ModelResult, outcome: AssertionOutcome) -> dict[str, Any]:
    """The cell columns of a result whose grading failed as ``outcome`` says: a completed
    answer stays completed (it was paid for; resuming must not ask for it again), with
    the errored outcome and its reason."""
    completed = result.status == "completed"
    return {
        "result_id": result.result_id,
        "status": "completed" if completed else "failed",
        "passed": False if completed else None,
        "assertions_json": [outcome.to_dict()],
        "error_message": outcome.message,
    }
