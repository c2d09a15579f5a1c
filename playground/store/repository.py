"""Reading and editing the history: query functions that take a session and never commit.

The caller owns the transaction: ``with store.session() as s, s.begin(): list_results(s)``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from playground.errors import AccessDeniedError, InvalidRequestError
from playground.principal import Principal, can_view
from playground.providers.base import GenerationParams, Message, Role
from playground.results import CompareRequest, ModelResult, ModelTarget, ResultStatus
from playground.safe_text import reject_nul
from playground.store.entry_statements import (
    batch_summary_of_matches,
    batch_summary_statement,
    count_statement,
    walk_statement,
)
from playground.store.filters import (
    FilterShape,
    HistoryFilter,
    filter_shape,
    filter_values,
    history_order,
    result_conditions,
    selective_matches,
    shaped_conditions,
)
from playground.store.history_rows import ComparisonRow, load_rows, marks_of, tags_of
from playground.store.models import VISIBILITIES, Comparison, ComparisonTag, Result
from playground.store.rollups import kept_in_step

MAX_TAG_CHARS = 100
# 32 random bytes: a share link cannot be guessed or enumerated.
SHARE_TOKEN_BYTES = 32
_PARAM_FIELDS = frozenset(f.name for f in dataclasses.fields(GenerationParams))


@dataclass(frozen=True)
class HistoryEntry:
    """One result in the history list, with the comparison it belongs to."""

    comparison_id: int
    created_at: datetime
    title: str
    result: ModelResult

    def to_json_dict(self) -> dict[str, Any]:
        """The ``compare --json`` keys plus ``comparison_id`` and ``created_at`` (ISO 8601)."""
        return {
            **self.result.to_json_dict(),
            "comparison_id": self.comparison_id,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class StoredComparison:
    """A comparison as stored: the request (enough to run it again) and its results."""

    id: int
    created_at: datetime
    request: CompareRequest
    results: tuple[ModelResult, ...]
    # Hosted mode: who may see it and its share-link token (never exported).
    visibility: str = "private"
    workspace_id: int | None = None
    share_token: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready form: the request's fields and each result's ``compare --json`` form."""
        request = self.request
        return {
            "comparison_id": self.id,
            "created_at": self.created_at.isoformat(),
            "title": request.title,
            "tags": list(request.tags),
            "note": request.note,
            "owner": request.owner,
            "system_prompt": request.system_prompt,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "params": request.params.to_dict(),
            "results": [r.to_json_dict() for r in self.results],
        }


def list_results(
    session: Session, flt: HistoryFilter | None = None, limit: int = 50, offset: int = 0
) -> list[HistoryEntry]:
    """One page of matching results, newest first (deleted comparisons are left out).

    See :func:`~playground.store.filters.history_order` for the exact order.
    """
    flt = flt or HistoryFilter()
    rows = session.execute(
        sa.select(Result, Comparison.created_utc, Comparison.title)
        .join(Comparison, Comparison.id == Result.comparison_id)
        .where(*_newest_conditions(session, flt, limit + offset))
        .order_by(*history_order(flt))
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        HistoryEntry(
            comparison_id=result.comparison_id,
            created_at=created,
            title=title,
            result=to_model_result(result),
        )
        for result, created, title in rows
    ]


def _newest_conditions(
    session: Session, flt: HistoryFilter, newest: int
) -> list[ColumnElement[bool]]:
    """Conditions on ``results`` keeping what ``flt`` keeps; with a search, only among the
    ``newest`` newest matching results (highest ids), so a page never makes the database
    collect every match of a common word. On PostgreSQL a rare word's newest matches are
    collected through the full-text indexes instead (:func:`selective_matches`)."""
    dialect = session.get_bind().dialect.name
    matches = selective_matches(session.connection(), flt, newest)
    if matches is None:
        return result_conditions(flt, dialect, newest=newest)
    return [
        *result_conditions(dataclasses.replace(flt, search=None), dialect),
        Result.id.in_(matches),
    ]


def count_results(session: Session, flt: HistoryFilter | None = None) -> int:
    """How many results match ``flt`` (for paging)."""
    flt = flt or HistoryFilter()
    dialect = session.get_bind().dialect.name
    query = sa.select(sa.func.count()).select_from(Result)
    return int(session.scalar(query.where(*result_conditions(flt, dialect))) or 0)


def get_comparison(
    session: Session,
    comparison_id: int,
    *,
    viewer: Principal | None = None,
    share_token: str | None = None,
) -> StoredComparison | None:
    """The comparison with its results in target order; ``None`` if unknown or deleted.

    With a ``viewer`` (hosted mode) it is also ``None`` unless they may see it, or hold the
    comparison's current share token: an id alone never opens someone else's comparison.
    """
    comparison = session.scalar(
        sa.select(Comparison)
        .where(Comparison.id == comparison_id, Comparison.deleted_utc.is_(None))
        .options(selectinload(Comparison.results), selectinload(Comparison.tags))
    )
    if comparison is None:
        return None
    if viewer is not None and not can_view(comparison, viewer):
        shared = comparison.share_token is not None and share_token is not None
        if not (shared and secrets.compare_digest(comparison.share_token or "", share_token or "")):
            return None
    return _stored(comparison)


def owned_comparison(session: Session, comparison_id: int, viewer: Principal | None) -> Comparison:
    """The live comparison row ``viewer`` may change (their own; anyone's in local mode).

    Raises :class:`InvalidRequestError` when it is unknown or deleted and
    :class:`AccessDeniedError` when it belongs to someone else.
    """
    comparison = session.get(Comparison, comparison_id)
    if comparison is None or comparison.deleted_utc is not None:
        raise InvalidRequestError("This comparison no longer exists.")
    if viewer is not None and comparison.owner != viewer.subject:
        if can_view(comparison, viewer):
            raise AccessDeniedError("Only the owner can change or share this comparison.")
        raise InvalidRequestError("This comparison no longer exists.")
    return comparison


def share_comparison(
    session: Session,
    comparison_id: int,
    viewer: Principal | None,
    *,
    visibility: str,
    workspace_id: int | None = None,
    link: bool,
) -> str | None:
    """Set who may see a comparison; returns its share token (new if ``link`` and none yet).

    ``visibility`` is ``private`` or ``workspace`` (then ``workspace_id`` must be one of the
    owner's workspaces). ``link=False`` revokes the share link: old links stop working.
    """
    comparison = owned_comparison(session, comparison_id, viewer)
    if visibility not in VISIBILITIES:
        raise InvalidRequestError(f"Unknown visibility {visibility!r}.")
    member = workspace_id is not None and (viewer is None or workspace_id in viewer.workspace_ids)
    if visibility == "workspace" and not member:
        raise InvalidRequestError("Pick one of your workspaces to share with.")
    with kept_in_step(session, Result.comparison_id == comparison_id):
        comparison.visibility = visibility
        comparison.workspace_id = workspace_id if visibility == "workspace" else None
        session.flush()
    if not link:
        comparison.share_token = None
    elif comparison.share_token is None:
        comparison.share_token = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
    return comparison.share_token


def list_comparisons(
    session: Session, flt: HistoryFilter | None = None, limit: int = 20, offset: int = 0
) -> list[StoredComparison]:
    """One page of comparisons with at least one matching result, newest first.

    Each comes with all its results (not only the matching ones) in target order.
    """
    comparisons = session.scalars(
        sa.select(Comparison)
        .where(Comparison.id.in_(_matching_comparisons(session, flt)))
        .order_by(Comparison.created_utc.desc(), Comparison.id.desc())
        .limit(limit)
        .offset(offset)
        .options(selectinload(Comparison.results), selectinload(Comparison.tags))
    )
    return [_stored(comparison) for comparison in comparisons]


def count_comparisons(session: Session, flt: HistoryFilter | None = None) -> int:
    """How many comparisons :func:`list_comparisons` pages through."""
    query = sa.select(sa.func.count()).where(Comparison.id.in_(_matching_comparisons(session, flt)))
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class BatchEntry:
    """The answers of one evaluation batch matching a history filter, shown as one entry."""

    batch_id: int
    title: str
    latest_at: datetime
    comparisons: int
    """How many of the batch's comparisons (one per dataset row and version) match."""
    models: tuple[tuple[str, str], ...]
    """(provider, model) of its answers, in first-seen order."""
    answers: int
    """How many answers those comparisons hold."""
    not_completed: int
    """How many of those answers did not complete (failed, stopped, partial…)."""
    cost: int | None
    """Billing tokens its matching answers spent (``None``: none is known)."""


ListEntry = ComparisonRow | BatchEntry


def _entry_groups(
    session: Session, flt: HistoryFilter | None, batches: bool
) -> tuple[Any, Any, Any]:
    """Matching comparisons grouped into entries: a batch's under its id (> 0), any other
    under minus its own id; with the group key and latest-creation columns."""
    group = sa.func.coalesce(Comparison.batch_id, -Comparison.id).label("entry")
    latest = sa.func.max(Comparison.created_utc).label("latest")
    query = (
        sa.select(group, latest)
        .where(Comparison.id.in_(_matching_comparisons(session, flt)))
        .group_by(group)
    )
    if not batches:
        query = query.where(Comparison.batch_id.is_(None))
    return query, group, latest


COUNT_CAP = 1_000
"""The History page counts matching comparisons up to this many (then says "1,000+")."""
_WALK_CHUNK = 200


@dataclass(frozen=True)
class EntryPage:
    """One page of history entries and how many entries match."""

    entries: list[ListEntry]
    total: int
    """How many entries match, or (``more``) how many were counted before stopping."""
    more: bool
    """Whether more entries than ``total`` may match (the count stopped early)."""


def history_entries(
    session: Session,
    flt: HistoryFilter | None = None,
    limit: int = 20,
    offset: int = 0,
    *,
    batches: bool = True,
    count_up_to: int = COUNT_CAP,
) -> EntryPage:
    """Entries ``offset … offset + limit`` of :func:`list_history_entries`, and their count:
    exact while at most ``count_up_to`` comparisons (or those up to this page, whichever
    is more) match, else ``more`` with what was counted.

    Without a search, the page reads the matching answers newest first through the
    ``results`` indexes, a few hundred at a time, and the count reads at most that many
    matching comparisons: what it costs follows the page, not the history's size. With a
    search, page and count come from the newest matching answers, read in growing steps
    until both are known (:func:`_newest_search_entries`): the same bound.
    """
    _without_parallel_workers(session)
    cap = max(count_up_to, offset + limit)
    if flt is not None and flt.search:
        walk = _newest_search_entries(session, flt, batches, offset + limit, count_up_to=cap)
        if walk.complete:  # it read every match: the count is exact
            total, more = walk.entries, False
        else:
            total, more = _capped(walk.comparisons, walk.entries, cap)
        total = max(total, len(walk.keys))
        return EntryPage(_entries(session, flt, walk.keys[offset : offset + limit]), total, more)
    walk = _newest_entries(session, flt, batches, offset + limit)
    if walk.complete and walk.comparisons <= cap:
        # The walk read every matching answer: it knows what the count would say.
        total, more = walk.entries, False
    else:
        total, more = _count_entries(session, flt, batches, cap)
        # The walk saw every entry up to this page's: the count never ends before it.
        total = max(total, len(walk.keys))
    return EntryPage(_entries(session, flt, walk.keys[offset : offset + limit]), total, more)


def _without_parallel_workers(session: Session) -> None:
    """On PostgreSQL, no parallel workers for the rest of this transaction: a page's
    statements each read a few hundred index entries, and starting workers for one (the
    planner does for a batch's summary, which reads every answer of its comparisons)
    took longer than running it (3 of 5 ms), while other users' pages wait for the cores."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NO_PARALLEL_WORKERS)


_NO_PARALLEL_WORKERS = sa.text("SET LOCAL max_parallel_workers_per_gather = 0")


def _count_entries(
    session: Session, flt: HistoryFilter | None, batches: bool, cap: int
) -> tuple[int, bool]:
    """How many entries match, counted over the first ``cap + 1`` matching comparisons in
    index order, and whether more may match (see :func:`count_statement`).

    On PostgreSQL, a filter on model, status or time first looks among the newest
    matching answers only, enough to tell in one statement in the usual case and bounded
    whatever the history's size: with a model filter, a comparison holds at most one
    answer per model filtered on (a re-run is a new comparison), so one per counted
    comparison and model, plus an eighth for the rare request naming a model twice; then,
    should those hold fewer comparisons than they could, four per comparison and model.
    Without a model filter, eight per comparison. Only when the newest answers hold all of
    at most ``cap`` comparisons and more answers match does it count over every match.
    (Without those filters PostgreSQL reads the comparisons in order through their index
    and stops by itself.)
    """
    flt = flt or HistoryFilter()
    shape = filter_shape(flt)
    values = {**filter_values(flt), "count_limit": cap + 1}
    connection = session.connection()
    timed = shape.models or shape.statuses or shape.since or shape.until
    if timed and connection.dialect.name == "postgresql":
        models = len(flt.models)
        if models:
            bounds = [models * (cap + 1) + (cap + 1) // 8, 4 * models * (cap + 1)]
        else:
            bounds = [8 * (cap + 1)]
        for answers in bounds:
            counted, found_entries, read = connection.execute(
                count_statement(shape, batches, newest_answers=True),
                {**values, "count_answers": answers},
            ).one()
            if read < answers or counted > cap:
                return _capped(int(counted), int(found_entries), cap)
    counted, found_entries, _ = connection.execute(count_statement(shape, batches), values).one()
    return _capped(int(counted), int(found_entries), cap)


def _capped(comparisons: int, entries: int, cap: int) -> tuple[int, bool]:
    """The count of ``entries`` made by ``comparisons`` counted comparisons, and whether
    more may match (more than ``cap`` comparisons were found)."""
    more = comparisons > cap
    return min(entries, cap) if more else entries, more


def list_history_entries(
    session: Session,
    flt: HistoryFilter | None = None,
    limit: int = 20,
    offset: int = 0,
    *,
    batches: bool = True,
) -> list[ListEntry]:
    """One page of history entries, newest first: comparisons, and each batch's matching
    answers as one :class:`BatchEntry` (left out with ``batches=False``).

    Entries are ordered by their newest comparison's creation time, then by key (a batch's
    id; minus a comparison's id).
    """
    if flt is not None and flt.search:
        walk = _newest_search_entries(session, flt, batches, offset + limit)
    else:
        walk = _newest_entries(session, flt, batches, offset + limit)
    return _entries(session, flt, walk.keys[offset : offset + limit])


def _entries(session: Session, flt: HistoryFilter | None, keys: list[int]) -> list[ListEntry]:
    ids = [-k for k in keys if k < 0]
    plain: dict[int, ComparisonRow]
    if flt is not None and flt.search:
        # The list shows where the search matched: every text of the comparison is read.
        plain = {c.id: list_row(c, search=True) for c in _load_comparisons(session, ids)}
    else:
        plain = load_rows(session, ids)
    in_batches = _batch_entries(session, flt, [k for k in keys if k > 0])
    return [plain[-k] if k < 0 else in_batches[k] for k in keys]


class _Walk(NamedTuple):
    keys: list[int]
    """The ``wanted`` newest entries' keys (fewer if fewer match), in page order."""
    entries: int
    """How many entries the walk saw."""
    comparisons: int
    """How many matching comparisons the walk saw."""
    complete: bool
    """Whether the walk read every matching answer (then it saw every entry)."""


def _newest_entries(
    session: Session, flt: HistoryFilter | None, batches: bool, wanted: int
) -> _Walk:
    """The keys of the ``wanted`` newest entries (fewer if fewer match), in page order.

    Walks the matching answers newest first (:func:`walk_statement`). An answer is never
    created before its comparison, so once ``wanted`` entries are known and the walk has
    reached answers older than the last of them, no comparison still unseen can rank
    among them.
    """
    flt = flt or HistoryFilter()
    shape = filter_shape(flt)
    # A comparison has about one answer per model: with a model filter, twice the page's
    # answers usually reach past it, and a first step of 200 would read ten pages' worth.
    chunk = min(_WALK_CHUNK, 2 * wanted * len(flt.models)) if flt.models else _WALK_CHUNK
    values: dict[str, Any] = {**filter_values(flt), "walk_chunk": chunk}
    connection = session.connection()
    latest: dict[int, datetime] = {}
    seen: set[int] = set()
    continued = False
    while True:
        rows = connection.execute(walk_statement(shape, continued), values).all()
        walked, last_created, last_id = rows[0][3:] if rows else (0, None, None)
        for comparison_id, created, batch_id, *_ in rows:
            if comparison_id in seen:
                continue
            seen.add(comparison_id)
            key = -comparison_id if batch_id is None else batch_id
            if key > 0 and not batches:
                continue
            latest[key] = max(latest.get(key, created), created)
        # Checked once a chunk, not per answer (a sort each time would cost a deep page
        # seconds): answers past the stopping point only add entries older than the
        # wanted-th, so the page is the same.
        ranked = _ranked(latest)
        complete = walked < values["walk_chunk"]
        if complete or (len(ranked) >= wanted and last_created < ranked[wanted - 1][1]):
            keys = [key for key, _ in ranked[:wanted]]
            return _Walk(keys, len(ranked), len(seen), complete)
        continued = True
        values["walk_after_created"], values["walk_after_id"] = last_created, last_id
        values["walk_chunk"] = _WALK_CHUNK


_SEARCH_STEP = 200
"""How many of the newest matching answers a search's walk reads first (then at least
twice as many each step, at most :data:`_SEARCH_GROWTH` times as many)."""
_SEARCH_GROWTH = 32


def _newest_search_entries(
    session: Session,
    flt: HistoryFilter,
    batches: bool,
    wanted: int,
    *,
    count_up_to: int = 0,
) -> _Walk:
    """The keys of the ``wanted`` newest entries a search finds (fewer if fewer match), in
    page order, having seen more than ``count_up_to`` matching comparisons unless fewer
    match (so the walk can tell the count up to there).

    Reads the newest :data:`_SEARCH_STEP` matching answers (by id: the order the
    full-text indexes give), then more (as many as the comparisons still wanted seem to
    need, at least twice as many), and so on, each step one statement
    (:func:`_newest_conditions`). The stopping rule is :func:`_newest_entries`': an
    answer is never created before its comparison, and answers' ids grow as they are
    written (as :func:`~playground.store.filters.history_order` takes for granted), so
    once ``wanted`` entries are known and the walk has reached answers older than the
    last of them, no comparison still unseen can rank among them.
    """
    step = _SEARCH_STEP
    while True:
        walked = (
            sa.select(Result.id, Result.created_utc, Result.comparison_id)
            .where(*_newest_conditions(session, flt, step))
            .order_by(Result.id.desc())
            .limit(step)
            .cte("walked")
        )
        last = sa.select(walked.c.created_utc).order_by(walked.c.id).limit(1)
        rows = session.execute(
            sa.select(
                Comparison.id,
                Comparison.created_utc,
                Comparison.batch_id,
                sa.select(sa.func.count()).select_from(walked).scalar_subquery(),
                last.scalar_subquery(),
            ).where(Comparison.id.in_(sa.select(walked.c.comparison_id)))
        ).all()
        read, last_created = rows[0][3:] if rows else (0, None)
        latest: dict[int, datetime] = {}
        for comparison_id, created, batch_id, *_ in rows:
            key = -comparison_id if batch_id is None else batch_id
            if key < 0 or batches:
                latest[key] = max(latest.get(key, created), created)
        ranked = _ranked(latest)
        complete = read < step
        found = wanted == 0 or (len(ranked) >= wanted and last_created < ranked[wanted - 1][1])
        if complete or (found and len(rows) > count_up_to):
            return _Walk([key for key, _ in ranked[:wanted]], len(ranked), len(rows), complete)
        # Each step reads again from the newest: aim at once for the comparisons still
        # wanted, at the answers per comparison seen so far (a quarter more), so a common
        # word's count takes two steps, not five.
        aim = math.ceil(1.25 * read / max(len(rows), 1) * (max(wanted, count_up_to) + 1))
        step = max(2 * step, min(_SEARCH_GROWTH * step, aim))


def _ranked(latest: dict[int, datetime]) -> list[tuple[int, datetime]]:
    """Entries in page order: newest comparison first, then the higher key."""
    return sorted(latest.items(), key=lambda item: (item[1], item[0]), reverse=True)


def count_history_entries(
    session: Session, flt: HistoryFilter | None = None, *, batches: bool = True
) -> int:
    """How many entries :func:`list_history_entries` pages through (every one counted: see
    :func:`history_entries` for a count that stops early)."""
    query, _, _ = _entry_groups(session, flt, batches)
    return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


# What a StoredComparison is built from (not the search text, hashes or bookkeeping
# times, which a page would read and drop).
_SHOWN_COMPARISON_COLUMNS = (
    "id",
    "created_utc",
    "owner",
    "title",
    "system_prompt",
    "messages_json",
    "params_json",
    "note",
    "use_cache",
    "share_token",
    "workspace_id",
    "visibility",
)
_SHOWN_RESULT_COLUMNS = (
    "id",
    "comparison_id",
    "position",
    "provider",
    "model",
    "target_params_json",
    "params_json",
    "request_hash",
    "status",
    "content",
    "generation_id",
    "tokens_used",
    "balance_remaining",
    "price_tokens",
    "latency_ms",
    "ttft_ms",
    "started_utc",
    "finished_utc",
    "error_code",
    "error_message",
    "cached",
    "truncated",
)


def list_row(comparison: StoredComparison, *, search: bool = False) -> ComparisonRow:
    """``comparison`` as a row of the History list (``search``: with its texts, to show
    where a search matched)."""
    request = comparison.request
    texts = (
        (
            request.system_prompt,
            *(m.content for m in request.messages),
            *(r.content for r in comparison.results),
        )
        if search
        else ()
    )
    return ComparisonRow(
        id=comparison.id,
        created_at=comparison.created_at,
        title=request.title,
        prompt=request.messages[-1].content if request.messages else "",
        tags=request.tags,
        answers=marks_of(comparison.results),
        texts=texts,
    )


def _load_comparisons(session: Session, ids: Sequence[int]) -> list[StoredComparison]:
    """The comparisons ``ids`` with their results and tags, read as plain rows: a History
    search page shows where each matched and drops them, so no ORM objects are built. Two
    queries: the results, and the comparisons each with its tags gathered by the database."""
    if not ids:
        return []
    wanted = sorted(set(ids))
    postgres = session.get_bind().dialect.name == "postgresql"
    answers_of, comparisons_of = _shown_statements(postgres)
    connection = session.connection()
    params_of = _params_reader()
    answers: dict[int, list[ModelResult]] = {i: [] for i in wanted}
    targets: dict[int, dict[int, ModelTarget]] = {i: {} for i in wanted}
    # Rows unpacked as tuples (in _SHOWN_*_COLUMNS order): reading a row's fields by
    # name cost more than building the page's objects.
    for (
        result_id,
        comparison_id,
        position,
        provider,
        model,
        target_params,
        params,
        request_hash,
        status,
        content,
        generation_id,
        tokens_used,
        balance_remaining,
        price_tokens,
        latency_ms,
        ttft_ms,
        started,
        finished,
        error_code,
        error_message,
        cached,
        truncated,
    ) in connection.execute(answers_of, {"ids": wanted}).all():
        if position not in targets[comparison_id]:
            # No params of its own: SQL NULL, or JSON null read as text.
            own = None if target_params in (None, "null") else params_of(target_params)
            targets[comparison_id][position] = ModelTarget(provider, model, own)
        answers[comparison_id].append(
            ModelResult(
                index=position,
                provider=provider,
                model=model,
                params=params_of(params),
                request_hash=request_hash,
                status=status,
                content=content,
                generation_id=generation_id,
                tokens_used=tokens_used,
                balance_remaining=balance_remaining,
                price_tokens=price_tokens,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms,
                started_at=started,
                finished_at=finished,
                error_code=error_code,
                error_message=error_message,
                cached=cached,
                truncated=truncated,
                result_id=result_id,
            )
        )
    found = []
    for (
        comparison_id,
        created,
        owner,
        title,
        system_prompt,
        messages,
        params,
        note,
        use_cache,
        share_token,
        workspace_id,
        visibility,
        tag_list,
    ) in connection.execute(comparisons_of, {"ids": wanted}).all():
        shown = targets[comparison_id]
        request = CompareRequest(
            messages=tuple(Message(cast(Role, m["role"]), m["content"]) for m in messages),
            targets=tuple(shown[p] for p in sorted(shown)),
            system_prompt=system_prompt,
            params=params_of(params),
            title=title,
            tags=tuple((tag_list or []) if postgres else sorted(json.loads(tag_list))),
            note=note,
            owner=owner,
            use_cache=use_cache,
        )
        found.append(
            StoredComparison(
                id=comparison_id,
                created_at=created,
                request=request,
                results=tuple(answers[comparison_id]),
                visibility=visibility,
                workspace_id=workspace_id,
                share_token=share_token,
            )
        )
    return found


@functools.cache
def _shown_statements(
    postgres: bool,
) -> tuple[sa.Select[*tuple[Any, ...]], sa.Select[*tuple[Any, ...]]]:
    """The answers (in comparison, position order) and the comparisons with their tags of
    the comparison ids ``ids``, as :func:`_load_comparisons` reads them: built once."""
    comparisons, results = (cast(sa.Table, model.__table__) for model in (Comparison, Result))
    ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
    answers = (
        sa.select(*(_as_text(results.c[name]) for name in _SHOWN_RESULT_COLUMNS))
        .where(results.c.comparison_id.in_(ids))
        .order_by(results.c.comparison_id, results.c.position, results.c.id)
    )
    shown = sa.select(
        *(_as_text(comparisons.c[name]) for name in _SHOWN_COMPARISON_COLUMNS),
        tags_of(comparisons.c.id, postgres),
    ).where(comparisons.c.id.in_(ids))
    return answers, shown


_PARAMS_COLUMNS = frozenset({"params_json", "target_params_json"})


def _as_text(column: sa.Column[Any]) -> ColumnElement[Any]:
    """``column``, but a params column as its JSON text (see :func:`_params_reader`)."""
    if column.name not in _PARAMS_COLUMNS:
        return column
    return sa.cast(column, sa.Text).label(column.name)


def _params_reader() -> Callable[[str], GenerationParams]:
    """Params JSON text → :class:`GenerationParams`, each distinct text parsed once: a
    page's answers mostly share their comparison's params (they are immutable, so shared
    safely)."""
    parsed: dict[str, GenerationParams] = {}

    def params_of(text: str) -> GenerationParams:
        found = parsed.get(text)
        if found is None:
            found = parsed[text] = params_from_json(json.loads(text))
        return found

    return params_of


def _batch_entries(
    session: Session, flt: HistoryFilter | None, batch_ids: list[int]
) -> dict[int, BatchEntry]:
    """The entries of the batches ``batch_ids``: each one's comparisons with a matching
    answer, and all their answers, summed up by the database for a page's batches (a
    batch holds hundreds of comparisons: fetching their answers took longer than the rest
    of the page); see :func:`batch_summary_statement`."""
    if not batch_ids:
        return {}
    flt = flt or HistoryFilter()
    values: dict[str, Any] = {"entry_batches": batch_ids}
    if flt.search:
        dialect = session.get_bind().dialect.name
        statement = batch_summary_of_matches(result_conditions(flt, dialect))
    else:
        statement = batch_summary_statement(filter_shape(flt))
        values.update(filter_values(flt))
    rows = session.execute(statement, values).all()
    sums = {batch_id: _BatchSums() for batch_id in batch_ids}
    for batch_id, provider, model, first, count, failed, latest, cost, costed, title in rows:
        summed = sums[batch_id]
        if model is None:  # the batch's own row: how many comparisons, and its title
            summed.comparisons = int(first)
            summed.title = title or ""
            continue
        summed.models.append((int(first), provider, model))
        summed.answers += int(count)
        summed.not_completed += int(failed or 0)
        summed.latest = latest if summed.latest is None else max(summed.latest, latest)
        summed.cost += int(cost or 0)
        summed.costed += int(costed)
    return {
        batch_id: BatchEntry(
            batch_id=batch_id,
            title=summed.title,
            latest_at=summed.latest or datetime.now(UTC),
            comparisons=summed.comparisons,
            models=tuple((provider, model) for _, provider, model in sorted(summed.models)),
            answers=summed.answers,
            not_completed=summed.not_completed,
            cost=summed.cost if summed.costed else None,
        )
        for batch_id, summed in sums.items()
    }


@dataclass
class _BatchSums:
    """A batch's entry as its summary rows add up (see :func:`batch_summary_statement`)."""

    title: str = ""
    comparisons: int = 0
    answers: int = 0
    not_completed: int = 0
    latest: datetime | None = None
    cost: int = 0
    costed: int = 0
    """How many answers had a cost."""
    models: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    """(first answer's id, provider, model) of each model."""


def _matching_comparisons(session: Session, flt: HistoryFilter | None) -> sa.Select[int]:
    dialect = session.get_bind().dialect.name
    conditions = result_conditions(flt or HistoryFilter(), dialect)
    return sa.select(Result.comparison_id).where(*conditions).correlate(None)


def _stored(comparison: Comparison) -> StoredComparison:
    return _stored_parts(comparison, comparison.results, [t.tag for t in comparison.tags])


def _stored_parts(
    comparison: Comparison, results: Sequence[Result], tags: Sequence[str]
) -> StoredComparison:
    """A comparison, its results (in position order) and its tags as one
    :class:`StoredComparison`."""
    targets: dict[int, ModelTarget] = {}
    for row in results:
        raw = row.target_params_json
        targets.setdefault(
            row.position,
            ModelTarget(row.provider, row.model, None if raw is None else params_from_json(raw)),
        )
    request = CompareRequest(
        messages=tuple(
            Message(cast(Role, m["role"]), m["content"]) for m in comparison.messages_json
        ),
        targets=tuple(targets[p] for p in sorted(targets)),
        system_prompt=comparison.system_prompt,
        params=params_from_json(comparison.params_json),
        title=comparison.title,
        tags=tuple(tags),
        note=comparison.note,
        owner=comparison.owner,
        use_cache=comparison.use_cache,
    )
    return StoredComparison(
        id=comparison.id,
        created_at=comparison.created_utc,
        request=request,
        results=tuple(to_model_result(r) for r in results),
        visibility=comparison.visibility,
        workspace_id=comparison.workspace_id,
        share_token=comparison.share_token,
    )


def delete_comparison(
    session: Session,
    comparison_id: int,
    *,
    purge: bool = False,
    viewer: Principal | None = None,
) -> bool:
    """Hide a comparison from history, search, export and the cache; ``True`` if it existed.

    The rows stay (soft delete) so the cost figures keep counting tokens that were really
    spent. ``purge=True`` removes the comparison and its results for good instead. With a
    ``viewer`` only their own comparison can be deleted (see :func:`owned_comparison`).
    """
    if viewer is not None:
        owned_comparison(session, comparison_id, viewer)
    if purge:
        with kept_in_step(session, Result.comparison_id == comparison_id):
            outcome = session.execute(
                sa.delete(Comparison)
                .where(Comparison.id == comparison_id)
                .execution_options(synchronize_session=False)
            )
    else:
        outcome = session.execute(
            sa.update(Comparison)
            .where(Comparison.id == comparison_id, Comparison.deleted_utc.is_(None))
            .values(deleted_utc=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(outcome, "rowcount", 0))


def update_comparison_meta(
    session: Session,
    comparison_id: int,
    *,
    title: str | None = None,
    tags: Iterable[str] | None = None,
    note: str | None = None,
    viewer: Principal | None = None,
) -> bool:
    """Change the title, the tag set or the note (``None`` keeps a field); ``True`` if found.

    With a ``viewer`` only their own comparison can be changed (:class:`AccessDeniedError`);
    a NUL character in any field is an :class:`InvalidRequestError` (PostgreSQL refuses it).
    """
    tags = None if tags is None else list(tags)
    for text, what in (
        (title, "The title"),
        (note, "The note"),
        *((t, "A tag") for t in tags or ()),
    ):
        reject_nul(text or "", what)
    comparison = session.get(Comparison, comparison_id)
    if comparison is None or comparison.deleted_utc is not None:
        return False
    if viewer is not None:
        owned_comparison(session, comparison_id, viewer)
    if title is not None:
        comparison.title = title
    if note is not None:
        comparison.note = note
    if tags is not None:
        wanted = normalize_tags(tags)
        comparison.tags = [t for t in comparison.tags if t.tag in wanted]
        kept = {t.tag for t in comparison.tags}
        comparison.tags.extend(ComparisonTag(tag=t) for t in wanted if t not in kept)
    session.flush()
    return True


def find_cached_result(
    session: Session, provider: str, request_hash: str, *, owner: str | None = None
) -> ModelResult | None:
    """The newest completed, non-cached answer to an identical request, or ``None``.

    It comes back marked ``cached`` with no row id, start or finish time, ready to be
    recorded as a new result of the current comparison.
    """
    key = (provider, request_hash)
    return find_cached_results(session, [key], owner=owner).get(key)


def find_cached_results(
    session: Session, requests: Collection[tuple[str, str]], *, owner: str | None = None
) -> dict[tuple[str, str], ModelResult]:
    """:func:`find_cached_result` for several ``(provider, request hash)`` in one query.

    Requests with no such answer are left out.
    """
    if not requests:
        return {}
    flt = HistoryFilter(owner=owner)
    params = {
        **filter_values(flt),
        "request_hashes": sorted({request_hash for _, request_hash in requests}),
    }
    found = {}
    for row in session.scalars(_cached_answers(filter_shape(flt)), params):
        if (row.provider, row.request_hash) in requests:
            found[(row.provider, row.request_hash)] = dataclasses.replace(
                to_model_result(row),
                index=0,
                cached=True,
                result_id=None,
                started_at=None,
                finished_at=None,
            )
    return found


@functools.lru_cache(maxsize=8)
def _cached_answers(shape: FilterShape) -> sa.Select[Any]:
    """The rows :func:`find_cached_results` looks for, built once per filter shape: a batch
    looks up every row's requests (building the statement cost more than running it)."""
    newest = (
        sa.select(sa.func.max(Result.id))
        .where(
            Result.request_hash.in_(sa.bindparam("request_hashes", expanding=True)),
            Result.status == "completed",
            Result.cached.is_(False),
            *shaped_conditions(shape),
        )
        .group_by(Result.provider, Result.request_hash)
    )
    return sa.select(Result).where(Result.id.in_(newest))


def to_model_result(row: Result | sa.Row[Any]) -> ModelResult:
    """A stored result row as the runner's :class:`ModelResult` (``result_id`` = row id)."""
    return ModelResult(
        index=row.position,
        provider=row.provider,
        model=row.model,
        params=params_from_json(row.params_json),
        request_hash=row.request_hash,
        status=cast(ResultStatus, row.status),
        content=row.content,
        generation_id=row.generation_id,
        tokens_used=row.tokens_used,
        balance_remaining=row.balance_remaining,
        price_tokens=row.price_tokens,
        latency_ms=row.latency_ms,
        ttft_ms=row.ttft_ms,
        started_at=row.started_utc,
        finished_at=row.finished_utc,
        error_code=row.error_code,
        error_message=row.error_message,
        cached=row.cached,
        truncated=row.truncated,
        result_id=row.id,
    )


def params_from_json(raw: dict[str, Any]) -> GenerationParams:
    """Stored params back as :class:`GenerationParams` (unknown keys are ignored)."""
    return GenerationParams(**{k: v for k, v in raw.items() if k in _PARAM_FIELDS})


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags stripped, without empties or duplicates, in their first order."""
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = tag.strip()[:MAX_TAG_CHARS]
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def prompt_text(system_prompt: str, messages: Sequence[Message]) -> str:
    """The text full-text search indexes: system prompt and every message, one per block."""
    return "\n\n".join(part for part in (system_prompt, *(m.content for m in messages)) if part)


def prompt_hash(system_prompt: str, messages: Sequence[Message]) -> str:
    """A hash equal for comparisons with the same system prompt and conversation."""
    canonical = json.dumps(
        [system_prompt, [[m.role, m.content] for m in messages]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
