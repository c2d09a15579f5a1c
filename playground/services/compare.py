"""Comparisons: start one, open it (live or from history), steer its columns, read results.

What the Compare page, History's "run again" and the live-answer route call. The runner,
providers and store they use are the process-wide ones of :mod:`playground.services.runtime`.
In hosted mode every function takes the viewer and opens only what they may see.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy.orm import Session

from playground.access.audit import record_event
from playground.errors import InvalidRequestError
from playground.principal import Principal, owns
from playground.results import CompareRequest, ModelResult, Recorder

# Where a page keeps a column (run id, model index); named here so pages need no runner import.
from playground.runner import ColumnRef as ColumnRef
from playground.runner import RunHandle, RunSnapshot
from playground.services import hosted, runtime
from playground.store import get_comparison


@dataclass(frozen=True)
class StoredRun:
    """A finished comparison read back from history, drawn like a live run."""

    comparison_id: int
    request: CompareRequest
    results: tuple[ModelResult, ...]

    def snapshot(self) -> RunSnapshot:
        """The stored results; always done."""
        return RunSnapshot(str(self.comparison_id), self.comparison_id, self.results, done=True)

    def cancel(self, index: int | None = None) -> None:
        """Nothing to stop: the comparison has finished."""


class RunView(Protocol):
    """A comparison the Compare page can draw: a live :class:`RunHandle` or a stored one."""

    @property
    def request(self) -> CompareRequest:
        """What was asked."""
        ...

    def snapshot(self) -> RunSnapshot:
        """Every model's result as of now."""
        ...

    def cancel(self, index: int | None = None) -> None:
        """Stop one model or all (a no-op for a stored comparison)."""
        ...


STILL_RUNNING = (
    "The comparison below is still running. Stop it (Stop all) or wait for it to finish, "
    "then run again: a second run would be billed on top of it."
)


def still_running(columns: Sequence[ColumnRef], viewer: Principal | None = None) -> bool:
    """Whether a run behind ``columns`` that ``viewer`` started is still streaming
    (someone else's shared run that they watch does not count)."""
    for run_id in {column.run_id for column in columns}:
        view = open_run(run_id, viewer)
        if isinstance(view, RunHandle) and not view.done and owns(view.request.owner, viewer):
            return True
    return False


def start_compare(
    request: CompareRequest,
    connection: runtime.Connection,
    principal: Principal | None = None,
    *,
    shown: Sequence[ColumnRef] = (),
) -> RunHandle:
    """Start ``request`` on the runner, recorded in history.

    ``shown``: the columns the page shows now; while a run of theirs that the user
    started is still streaming, nothing starts (``InvalidRequestError``,
    :data:`STILL_RUNNING`): its answers would be billed, then hidden by the new run.
    With a ``principal`` (hosted mode) the run is theirs: their role, request rate and
    budgets are checked on the server first, and the start is audited. Raises
    ``InvalidRequestError``, ``AccessDeniedError`` or ``SpendingLimitError`` before
    anything is sent or stored.
    """
    if still_running(shown, principal):
        raise InvalidRequestError(STILL_RUNNING)
    if principal is None:
        recorder = runtime.get_recorder()
    else:
        principal.require_run()  # no database needed to refuse a viewer
        request = replace(request, owner=principal.subject)
        recorder = _checked_and_audited(request, principal)
    return runtime.get_runner().start(request, runtime.get_providers(connection), recorder=recorder)


def _checked_and_audited(request: CompareRequest, principal: Principal) -> Recorder:
    """The recorder of a hosted user's run: the transaction that stores the comparison first
    checks their limits (nothing is stored or sent past them) and audits the start.

    One transaction rather than three: Run's callback is on the way to every first answer.
    Checking in the transaction that adds the run's rows is no looser than checking before it.
    """
    estimate = sum(runtime.get_catalog().cost_of(t.model) or 0 for t in request.targets)

    def check(session: Session) -> None:
        hosted.check_limits(
            session, principal, requests=len(request.targets), estimated_tokens=estimate
        )

    def audit(session: Session, comparison_id: int) -> None:
        record_event(
            session,
            principal.subject,
            "run.start",
            f"comparison:{comparison_id}",
            {"models": [t.model for t in request.targets], "estimated_tokens": estimate},
        )

    # The cache must never hand one user another's answer: it reuses only the owner's.
    return runtime.get_recorder(request.owner, before_start=check, after_start=audit)


def open_run(
    ref: str, viewer: Principal | None = None, share_token: str | None = None
) -> RunView | None:
    """The comparison a run id or share link names, or ``None`` if it is unknown.

    A number is a stored comparison id: while its run is still live in this process the
    live run is returned (so it keeps streaming), else the stored one is read back. With a
    ``viewer`` (hosted mode) someone else's comparison opens only if they may see it or
    hold its share token.
    """
    runner = runtime.get_runner()
    live = runner.get(ref)
    if live is not None and (viewer is None or live.request.owner == viewer.subject):
        return live
    if not ref.isdigit():
        return None
    comparison_id = int(ref)
    with runtime.get_store().session() as session, session.begin():
        stored = get_comparison(session, comparison_id, viewer=viewer, share_token=share_token)
    if stored is None:
        return None
    live = runner.find_by_comparison(comparison_id)
    if live is not None:
        return live
    return StoredRun(stored.id, stored.request, stored.results)


def rerun_column(
    column: ColumnRef,
    connection: runtime.Connection,
    viewer: Principal | None = None,
    share_token: str | None = None,
) -> ColumnRef:
    """Run one column's model again with the same prompt; returns the column's new place.

    ``viewer`` (hosted mode) must be able to see the comparison (or hold its
    ``share_token``); the new run is theirs and goes through the same role, rate and
    budget checks as any run.
    """
    view = open_run(column.run_id, viewer, share_token)
    if view is None:
        raise InvalidRequestError("This comparison is no longer available; run it again.")
    request = view.request
    one = replace(request, targets=(request.targets[column.index],))
    handle = start_compare(one, connection, viewer)
    return ColumnRef(handle.run_id, 0)


def cancel_column(column: ColumnRef, viewer: Principal | None = None) -> None:
    """Stop one column's model; only the run's owner can (anyone may watch a shared one)."""
    view = open_run(column.run_id, viewer)
    if view is not None and owns(view.request.owner, viewer):
        view.cancel(column.index)


STOP_WAIT_S = 2.0
"""How long Stop all waits for the stopped models to store what they had."""


def stop_columns(
    columns: Sequence[ColumnRef], viewer: Principal | None = None, *, wait_s: float = STOP_WAIT_S
) -> None:
    """Stop every column of ``columns`` that ``viewer`` may stop (see :func:`cancel_column`),
    then wait, ``wait_s`` seconds at most in all, until those runs are done.

    A stop is carried out on the runner's thread; without the wait, the page drawn right
    after Stop all could still find the models streaming and draw them live once more."""
    handles = {
        run_id: handle
        for run_id in dict.fromkeys(column.run_id for column in columns)
        if (handle := _stoppable(run_id, viewer)) is not None
    }
    for column in columns:
        if column.run_id in handles:
            handles[column.run_id].cancel(column.index)
    deadline = time.monotonic() + wait_s
    for handle in handles.values():
        handle.wait(max(0.0, deadline - time.monotonic()))


def may_stop(run_id: str, viewer: Principal | None = None) -> bool:
    """Whether ``viewer`` may stop run ``run_id`` (a run id or comparison id) now: it still
    streams in this process and is theirs (the local user owns every run). Someone who
    watches another user's run through a share link may not (see :func:`cancel_column`)."""
    return _stoppable(run_id, viewer) is not None


def _stoppable(run_id: str, viewer: Principal | None) -> RunHandle | None:
    """The live run ``run_id`` names, if it still streams and ``viewer`` may stop it."""
    runner = runtime.get_runner()
    live = runner.get(run_id)
    if live is None and run_id.isdigit():
        live = runner.find_by_comparison(int(run_id))
    if live is None or live.done or not owns(live.request.owner, viewer):
        return None
    return live


def live_runs() -> int:
    """How many comparisons stream in this process now (the Compare page spaces its redraws
    by it: :func:`~playground.presenters.compare.redraw_interval_s`)."""
    return runtime.get_runner().live_runs()


def column_results(
    columns: list[ColumnRef], viewer: Principal | None = None, share_token: str | None = None
) -> tuple[list[ModelResult], bool] | None:
    """Each column's current result and whether every run behind them is done.

    ``None`` when a column's run is no longer known (forgotten or from another process), or
    (hosted mode) ``viewer`` may not see it and ``share_token`` does not open it.
    """
    snapshots: dict[str, RunSnapshot] = {}
    for ref in columns:
        if ref.run_id not in snapshots:
            view = open_run(ref.run_id, viewer, share_token)
            if view is None:
                return None
            snapshots[ref.run_id] = view.snapshot()
    results = [snapshots[ref.run_id].results[ref.index] for ref in columns]
    return results, all(s.done for s in snapshots.values())
