"""The history store's side of :class:`playground.results.Recorder`.

Every method is one short transaction, so concurrent runners (threads or processes) only
ever wait for each other for milliseconds. The ``_comparison_work``, ``_write_started``
and ``_write`` helpers take the session, so a subclass can add its rows to that transaction.

A database outage only delays writes (:mod:`playground.store.outage`): each transaction is
retried on a fresh connection while the database is away, partial-text flushes are skipped
meanwhile, and a finished answer whose database stays away longer than the outage wait is
spooled to disk (:mod:`playground.store.spool`) and written when it returns.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from playground.errors import PlaygroundError
from playground.results import CompareRequest, ModelResult
from playground.safe_text import replace_nul
from playground.store.models import Comparison, ComparisonTag, Result
from playground.store.outage import (
    StoreUnavailableError,
    WritePolicy,
    run_write,
    skip_during_outage,
)
from playground.store.recovery import writer_id
from playground.store.repository import (
    find_cached_result,
    normalize_tags,
    prompt_hash,
    prompt_text,
)
from playground.store.rollups import kept_in_step
from playground.store.spool import RowUpdate, apply_update

log = logging.getLogger(__name__)
T = TypeVar("T")
_GROUPED_CALLS = ("find_cached", "record_started", "record_progress", "record_finished")
CostLookup = Callable[[str], int | None]
_RESULTS = cast(sa.Table, Result.__table__)
_INSERT_COMPARISON = sa.insert(cast(sa.Table, Comparison.__table__)).returning(Comparison.id)
_INSERT_RESULT = sa.insert(_RESULTS).returning(_RESULTS.c.position, _RESULTS.c.id)
_INSERT_TAG = sa.insert(cast(sa.Table, ComparisonTag.__table__))
# Built once: each write passes the columns it sets as parameters, and the SET clause
# follows their names. Rebuilding a statement around 20 literal values cost the batch's
# writer thread more CPU than running it (~2 of 3.5 ms per result started).
_START_PENDING = (
    sa.update(_RESULTS)
    .where(
        _RESULTS.c.comparison_id == sa.bindparam("in_comparison"),
        _RESULTS.c.position == sa.bindparam("at_position"),
        sa.or_(
            _RESULTS.c.status == "pending",
            # The same start written again: a retry after a commit whose answer was lost
            # with the connection must find its row, not add a second one.
            sa.and_(
                _RESULTS.c.writer == sa.bindparam("by_writer"),
                _RESULTS.c.started_utc == sa.bindparam("started_at"),
            ),
        ),
    )
    .returning(_RESULTS.c.id)
)
_UPDATE_ROW = sa.update(_RESULTS).where(_RESULTS.c.id == sa.bindparam("row_id"))


def _created_comparison(session: Session, request: CompareRequest, created: datetime) -> int | None:
    """The comparison this process created for ``request`` at ``created``, if it was
    committed (its rows carry this process's writer id and the same creation time)."""
    ours = (
        sa.select(Result.id)
        .where(
            Result.comparison_id == Comparison.id,
            Result.writer == writer_id(),
            Result.created_utc == created,
        )
        .exists()
    )
    return session.scalar(
        sa.select(Comparison.id)
        .where(
            Comparison.created_utc == created,
            Comparison.prompt_hash == prompt_hash(request.system_prompt, request.messages),
            ours,
        )
        .limit(1)
    )


class AnswerSpooledError(PlaygroundError):
    """An answer could not be written for the outage wait; it is kept in the spool file."""

    def __init__(self, path: str) -> None:
        super().__init__(
            "the history database stayed unreachable, so the answer was kept in "
            f"{path}; it is written to history when the database is back (or on the next start)."
        )
        self.path = path


class StoreRecorder:
    """Writes comparisons and results as they happen (implements ``Recorder``).

    ``catalog_cost_lookup(model)`` gives the billing price in force now (e.g.
    ``catalog.cost_of``); it is stored with each result so later price changes don't
    rewrite history. With ``owner`` set, cache hits come only from that owner's history.
    ``writes``: how long writes wait for a database that went away, and the spool for
    answers when it stays away longer (the store's ``writes``; without one, nothing is
    spooled and the write raises :class:`StoreUnavailableError`).
    ``batch_id``: the evaluation batch that runs every comparison this recorder stores.
    """

    def __init__(
        self,
        engine: Engine,
        catalog_cost_lookup: CostLookup | None = None,
        *,
        owner: str | None = None,
        writes: WritePolicy | None = None,
        before_start: Callable[[Session], None] | None = None,
        after_start: Callable[[Session, int], None] | None = None,
        batch_id: int | None = None,
    ) -> None:
        self._engine = engine
        # The evaluation batch whose comparisons these are (History shows them as its entry).
        self._batch_id = batch_id
        self._cost_of = catalog_cost_lookup or (lambda _model: None)
        self._owner = owner
        self._writes = writes or WritePolicy()
        # Run inside the transaction that stores a comparison, before and after its rows
        # (e.g. hosted mode's limit check and audit event): what they raise rolls it back.
        self._before_start = before_start
        self._after_start = after_start

    def start_comparison(self, request: CompareRequest) -> int:
        """Store the comparison and one ``pending`` row per target; return the comparison id.

        Written once even when a commit went through but its answer was lost with the
        connection (see :meth:`_comparison_work`).
        """
        insert = self._comparison_work(request)
        return self._retrying(lambda session: insert(session)[0])

    @property
    def starts_together(self) -> bool:
        """Whether :meth:`start_running` may stand for :meth:`start_comparison` followed by
        :meth:`record_started` of every target (not when a subclass changes what either
        writes: it then gets its own calls)."""
        return all(
            getattr(type(self), name) is getattr(StoreRecorder, name)
            for name in ("start_comparison", "record_started")
        )

    def start_running(
        self, request: CompareRequest, started: Sequence[ModelResult]
    ) -> tuple[int, list[int]]:
        """Store the comparison with each target's row already ``running`` (``started[i]``
        is target ``i``'s started result) in one transaction; return the comparison id and
        each target's row id, in target order.

        What :meth:`start_comparison` then :meth:`record_started` per target would store,
        with one commit, so a model's request can go out as soon as this returns. Written
        once even when a commit went through but its answer was lost with the connection.
        """
        if len(started) != len(request.targets):
            raise ValueError("One started result per target is needed.")
        insert = self._comparison_work(request, started)

        def rows(session: Session) -> tuple[int, list[int]]:
            comparison_id, ids = insert(session)
            if ids is None:  # a retry found the comparison an earlier attempt committed
                ids = {
                    position: row_id
                    for position, (row_id, _) in committed_rows(session, comparison_id).items()
                }
            return comparison_id, [ids[index] for index in range(len(started))]

        return self._retrying(rows)

    def find_cached(self, provider: str, request_hash: str) -> ModelResult | None:
        """A completed earlier answer to the identical request, marked ``cached``; or ``None``."""
        return self._retrying(self._find_cached_work(provider, request_hash))

    def record_started(self, comparison_id: int, result: ModelResult) -> int:
        """Turn the target's pending row into ``result`` (a new row if none); return its id.

        Waits while the database is away (the request is sent only once its row exists);
        raises :class:`StoreUnavailableError` after the outage wait.
        """
        return self._retrying(self._started_work(comparison_id, result))

    def record_progress(self, result: ModelResult) -> None:
        """Flush the partial text and metrics known so far (skipped while the database is
        away: the final write carries the whole text)."""
        if skip_during_outage():
            return
        with contextlib.suppress(StoreUnavailableError):
            run_write(self._engine, self._progress_work(result), self._optional_writes())

    def record_finished(self, result: ModelResult) -> None:
        """Write the final status, content, metrics, tokens and balance.

        Retried while the database is away; after the outage wait the answer is spooled and
        :class:`AnswerSpooledError` says where (without a spool,
        :class:`StoreUnavailableError`).
        """
        self._write_final(result, [])

    def _write_final(self, result: ModelResult, also: list[RowUpdate]) -> None:
        """Write the result's final row and the rows ``also`` in one transaction (see
        :meth:`record_finished`)."""
        write, updates = self._final_work(result, also)
        try:
            self._retrying(write)
        except StoreUnavailableError:
            spool = self._writes.spool
            if spool is None:
                raise
            spool.append(updates[0].id, updates)
            raise AnswerSpooledError(str(spool.path)) from None

    @property
    def group_key(self) -> object | None:
        """Recorders with equal keys may have their calls written in one transaction by
        :meth:`write_together`; ``None`` when this class changes what a call writes (a
        subclass adding rows of its own): its calls are then written one by one."""
        for name in _GROUPED_CALLS:
            if getattr(type(self), name) is not getattr(StoreRecorder, name):
                return None
        return (self._engine, self._writes)

    def write_together(
        self, calls: Sequence[tuple[StoreRecorder, str, tuple[Any, ...]]]
    ) -> list[Any]:
        """Run recorder calls (``find_cached``, ``record_started``, ``record_progress``,
        ``record_finished`` of recorders with this one's :attr:`group_key`) in one
        transaction: one commit for all of them.

        Returns, in order, what each call returned or the exception it raised. Each call
        keeps its promise: the transaction waits for a database that went away (partial
        flushes alone don't wait, and are skipped while it is known to be away); if it
        still fails, every call is run again on its own, so a start raises, a final write
        is spooled, and one bad write doesn't take the others with it.
        """
        skipping = skip_during_outage()
        todo = [c for c in calls if not (skipping and c[1] == "record_progress")]
        if not todo:
            return [None] * len(calls)
        optional = all(method == "record_progress" for _recorder, method, _args in todo)
        policy = self._optional_writes() if optional else self._writes
        try:
            works = [recorder._work(method, args) for recorder, method, args in todo]
            outcomes: list[Any] = run_write(
                self._engine, lambda session: [work(session) for work in works], policy
            )
        except Exception:  # noqa: BLE001 - each call is retried alone, with its own promise
            log.warning("A grouped history write failed; writing its calls one by one.")
            outcomes = [_call_alone(recorder, method, args) for recorder, method, args in todo]
        by_call = dict(zip(map(id, todo), outcomes, strict=True))
        return [by_call.get(id(c)) for c in calls]

    def _work(self, method: str, args: tuple[Any, ...]) -> Callable[[Session], Any]:
        """The transaction body of one grouped call (see :meth:`write_together`)."""
        if method == "find_cached":
            return self._find_cached_work(*args)
        if method == "record_started":
            return self._started_work(*args)
        if method == "record_progress":
            return self._progress_work(*args)
        if method == "record_finished":
            return self._final_work(args[0], [])[0]
        raise ValueError(f"{method} cannot be written together with other calls.")

    def _find_cached_work(
        self, provider: str, request_hash: str
    ) -> Callable[[Session], ModelResult | None]:
        return lambda session: find_cached_result(
            session, provider, request_hash, owner=self._owner
        )

    def _started_work(self, comparison_id: int, result: ModelResult) -> Callable[[Session], int]:
        # One start time for every attempt: a retry after a commit whose answer was lost
        # finds the row by it.
        started = result.started_at or datetime.now(UTC)
        return lambda session: self._write_started(session, comparison_id, result, started)

    def _comparison_work(
        self, request: CompareRequest, started: Sequence[ModelResult | None] = ()
    ) -> Callable[[Session], tuple[int, dict[int, int] | None]]:
        """The transaction body that inserts ``request``'s comparison, safe to run again: a
        retry first looks for the comparison an earlier attempt committed (same creation
        time, prompt and writing process) and returns it instead of adding an empty second
        one. With ``started`` (one result per target) the rows are inserted running.

        It returns the comparison's id and its rows' ids by position, read back by the
        insert itself (``None`` for a comparison a retry found).

        The recorder's ``before_start`` and ``after_start`` run in the same transaction,
        around the insert; not again when a retry finds the committed comparison."""
        # One creation time for every attempt: it is what a retry finds the row by.
        created = datetime.now(UTC)
        attempts = 0

        def insert(session: Session) -> tuple[int, dict[int, int] | None]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                found = _created_comparison(session, request, created)
                if found is not None:
                    return found, None
            if self._before_start is not None:
                self._before_start(session)
            comparison_id, ids = self._insert_comparison(session, request, created, started)
            if self._after_start is not None:
                self._after_start(session, comparison_id)
            return comparison_id, ids

        return insert

    def _progress_work(self, result: ModelResult) -> Callable[[Session], None]:
        return lambda session: self._write(session, result)

    def _final_work(
        self, result: ModelResult, also: list[RowUpdate]
    ) -> tuple[Callable[[Session], None], list[RowUpdate]]:
        """The final write's transaction body, and its rows as spool updates."""
        if result.result_id is None:
            raise ValueError("record_started() must run first: the result has no row id.")
        row_id = result.result_id
        row = self._row_values(result, finished=True)

        final = RowUpdate("results", row_id, row)

        def write(session: Session) -> None:
            # The same write a replay from the spool makes (keeping the rollups in step).
            for update in (final, *also):
                apply_update(session, update)

        return write, [final, *also]

    def _optional_writes(self) -> WritePolicy:
        """The policy of a partial flush: no waiting for a database that went away."""
        return replace(self._writes, wait_s=0)

    def _retrying(self, work: Callable[[Session], T]) -> T:
        return run_write(self._engine, work, self._writes)

    def _insert_comparison(
        self,
        session: Session,
        request: CompareRequest,
        now: datetime | None = None,
        started: Sequence[ModelResult | None] = (),
    ) -> tuple[int, dict[int, int]]:
        """Insert the comparison and a row per target: ``pending``, or, with ``started``,
        each target's started result as :meth:`_write_started` would write it (``None``:
        pending). Returns the comparison's id and each row's id by position (from the
        inserts: Run's callback waits for this transaction, and a query more is a round trip
        more)."""
        now = now or datetime.now(UTC)
        # Core inserts of the columns the ORM objects would have set: the ORM's unit of
        # work spent ~2 ms of CPU per comparison (a batch's thread holding the GIL while
        # answers stream), several times what the inserts themselves cost.
        comparison_id = session.execute(
            _INSERT_COMPARISON,
            {
                "created_utc": now,
                "owner": request.owner,
                "title": request.title,
                "system_prompt": request.system_prompt,
                "messages_json": [{"role": m.role, "content": m.content} for m in request.messages],
                "params_json": request.params.to_dict(),
                "note": request.note,
                "use_cache": request.use_cache,
                "prompt_text": prompt_text(request.system_prompt, request.messages),
                "prompt_hash": prompt_hash(request.system_prompt, request.messages),
                "batch_id": self._batch_id,
            },
        ).scalar_one()
        rows = []
        for index, target in enumerate(request.targets):
            generation = request.generation_request(index)
            row: dict[str, Any] = {
                "comparison_id": comparison_id,
                "position": index,
                "provider": target.provider,
                "model": target.model,
                "target_params_json": target.params.to_dict() if target.params else None,
                "params_json": generation.params.to_dict(),
                "request_hash": generation.request_hash(target.provider),
                "status": "pending",
                "content": "",
                "chars": 0,
                "cached": False,
                "truncated": False,
                "price_tokens": self._cost_of(target.model),
                "writer": writer_id(),
                "created_utc": now,
                "updated_utc": now,
            }
            given = started[index] if started else None
            if given is not None:
                row.update(_snapshot_values(given, now))
                row.setdefault("started_utc", now)
            rows.append(row)
        # One statement per set of columns: an executemany takes the first row's.
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            by_columns.setdefault(tuple(row), []).append(row)
        ids: dict[int, int] = {}
        for same in by_columns.values():
            ids.update(
                (position, row_id) for position, row_id in session.execute(_INSERT_RESULT, same)
            )
        tags = [{"comparison_id": comparison_id, "tag": t} for t in normalize_tags(request.tags)]
        if tags:
            session.execute(_INSERT_TAG, tags)
        return int(comparison_id), ids

    def _write_started(
        self, session: Session, comparison_id: int, result: ModelResult, started: datetime
    ) -> int:
        """Turn the pending row into the started ``result`` (or add one); the same call
        again, as a retry of a write that did commit, returns the same row."""
        now = datetime.now(UTC)
        values = _snapshot_values(result, now)
        values["started_utc"] = started
        if result.is_terminal:
            values["finished_utc"] = result.finished_at or now
        if result.price_tokens is None and not result.cached:
            values["price_tokens"] = self._cost_of(result.model)
        values["writer"] = writer_id()
        # Update first: the statement takes SQLite's write lock straight away.
        where = {
            "in_comparison": comparison_id,
            "at_position": result.index,
            "by_writer": values["writer"],
            "started_at": started,
        }
        target = (Result.comparison_id == comparison_id) & (Result.position == result.index)
        # A result can be final at once (a cache hit): then it is counted like a final write.
        with kept_in_step(session, target) if result.is_terminal else contextlib.nullcontext():
            row_id = session.execute(_START_PENDING, {**values, **where}).scalar()
            if row_id is None:
                row_id = session.execute(
                    sa.insert(Result)
                    .values(
                        comparison_id=comparison_id,
                        position=result.index,
                        target_params_json=None,
                        created_utc=now,
                        **values,
                    )
                    .returning(Result.id)
                ).scalar_one()
        return row_id

    def _write(self, session: Session, result: ModelResult, *, finished: bool = False) -> None:
        if result.result_id is None:
            raise ValueError("record_started() must run first: the result has no row id.")
        values = self._row_values(result, finished=finished)
        session.execute(_UPDATE_ROW, {**values, "row_id": result.result_id})

    @staticmethod
    def _row_values(result: ModelResult, *, finished: bool) -> dict[str, Any]:
        now = datetime.now(UTC)
        values = _snapshot_values(result, now)
        if finished:
            values["finished_utc"] = result.finished_at or now
        return values


def committed_rows(session: Session, comparison_id: int) -> dict[int, tuple[int, str]]:
    """A stored comparison's rows: id and status by position (what a retry of its insert,
    after a commit whose answer was lost, reads back)."""
    query = sa.select(Result.position, Result.id, Result.status).where(
        Result.comparison_id == comparison_id
    )
    return {position: (row_id, status) for position, row_id, status in session.execute(query)}


def _call_alone(recorder: StoreRecorder, method: str, args: tuple[Any, ...]) -> Any:
    try:
        return getattr(recorder, method)(*args)
    except Exception as exc:  # noqa: BLE001 - returned: each call reports its own outcome
        return exc


def _snapshot_values(result: ModelResult, now: datetime) -> dict[str, Any]:
    """The columns a snapshot of ``result`` determines."""
    values: dict[str, Any] = {
        "provider": result.provider,
        "model": result.model,
        "params_json": result.params.to_dict(),
        "request_hash": result.request_hash,
        "status": result.status,
        # PostgreSQL cannot store NUL; an answer is the model's text, so it is kept, not refused.
        "content": replace_nul(result.content),
        "chars": result.chars,
        "chars_per_s": result.chars_per_s,
        "generation_id": result.generation_id,
        "tokens_used": result.tokens_used,
        "balance_remaining": result.balance_remaining,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        "error_code": result.error_code,
        "error_message": None
        if result.error_message is None
        else replace_nul(result.error_message),
        "cached": result.cached,
        "truncated": result.truncated,
        "updated_utc": now,
    }
    if result.price_tokens is not None:
        values["price_tokens"] = result.price_tokens
    if result.started_at is not None:
        values["started_utc"] = result.started_at
    return values
