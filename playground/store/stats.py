"""SQL-side aggregations for the cost dashboard, returned as pandas DataFrames.

Sums and counts run in the database. Cached results cost nothing and measured nothing, so
they never count towards tokens spent, latency or TTFT. Soft-deleted comparisons still
count: their tokens were really spent. Derived figures (rates, cost per 1k characters,
pivots) are in :mod:`playground.presenters.analytics`.

The per-model, per-day and timing figures read the usage rollups
(:mod:`playground.store.rollups`) whenever the filter can be answered from them
(:func:`from_rollups`): whole UTC days, models, statuses, owner and viewer. Counts and
sums are then exact and cost the same whatever the history's size; p50/p95 come from the
timing bins, within :data:`~playground.store.rollups.RELATIVE_ERROR`. A period of at most
:data:`EXACT_TIMING_DAYS` day reads exact percentiles from the results. A tag, a search or
a time inside a day reads the results, as do the per-prompt table and the balances
(per prompt and per point, so not expressible per bucket).
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from playground.store.dialects import (
    counts_bytes,
    day_start,
    decode_counts,
    next_day_start,
    unindexed,
    utc_day,
)
from playground.store.filters import HistoryFilter, result_conditions
from playground.store.models import (
    FINISHED_STATUSES,
    Comparison,
    Result,
    UsageRollup,
    UsageTiming,
)
from playground.store.rollups import MEASURES, bin_values, merge_bins

QUANTILES = (0.5, 0.95)
EXACT_TIMING_DAYS = 1
BALANCE_POINTS = 2000
"""Above this many reported balances in a period, the Costs page reads the last of each day."""
"""Up to this many days, p50/p95 are computed exactly from the results."""
SelectT = TypeVar("SelectT", bound=sa.Select[*tuple[Any, ...]])
_NOT_CACHED = Result.cached.is_(False)
# For walks in time order: SQLite, planning without statistics, would otherwise take the
# stats index for "cached = 0" (nearly every row) and sort the whole period.
_NOT_CACHED_ROW = unindexed(Result.cached).is_(False)
_ROLLUP = cast(sa.Table, UsageRollup.__table__)
_TIMINGS = cast(sa.Table, UsageTiming.__table__)


def model_summary(session: Session, flt: HistoryFilter | None = None) -> pd.DataFrame:
    """Per provider and model: ``results``, ``cached``, ``api_calls``, one count per finished
    status (API calls only), ``tokens_spent`` and ``output_chars`` (API calls only)."""
    if from_rollups(flt):
        return _summary_from_rollups(session, flt)
    query = sa.select(
        Result.provider,
        Result.model,
        sa.func.count().label("results"),
        _count_if(Result.cached.is_(True)).label("cached"),
        _count_if(_NOT_CACHED).label("api_calls"),
        *(_count_if(_NOT_CACHED & (Result.status == s)).label(s) for s in FINISHED_STATUSES),
        _sum_if(_NOT_CACHED, Result.tokens_used).label("tokens_spent"),
        _sum_if(_NOT_CACHED, Result.chars).label("output_chars"),
    )
    # Grouping by cached first follows ix_results_stats, so the scan needs no sort; the
    # two partial rows per model are then added up (every column is a sum).
    query = _filtered(session, query, flt).group_by(Result.cached, Result.model, Result.provider)
    frame = _frame(session, query)
    return frame.groupby(["provider", "model"], as_index=False, sort=True).sum()


def tokens_by_day(session: Session, flt: HistoryFilter | None = None) -> pd.DataFrame:
    """Per UTC day, provider and model: ``tokens_spent`` and ``api_calls``."""
    if from_rollups(flt):
        rollup_day = UsageRollup.day
        rolled = sa.select(
            rollup_day.label("day"),
            UsageRollup.provider,
            UsageRollup.model,
            sa.func.coalesce(sa.func.sum(UsageRollup.tokens_spent), 0).label("tokens_spent"),
            sa.func.sum(UsageRollup.results).label("api_calls"),
        ).where(UsageRollup.cached.is_(False), *_rollup_conditions(flt))
        keys = (rollup_day, UsageRollup.provider, UsageRollup.model)
        rolled = rolled.group_by(*keys).having(sa.func.sum(UsageRollup.results) != 0)
        return _with_days(_frame(session, rolled.order_by(*keys)))
    day = utc_day(Result.created_utc)
    query = sa.select(
        day.label("day"),
        Result.provider,
        Result.model,
        sa.func.coalesce(sa.func.sum(Result.tokens_used), 0).label("tokens_spent"),
        sa.func.count().label("api_calls"),
    ).where(_NOT_CACHED)
    query = _filtered(session, query, flt).group_by(day, Result.provider, Result.model)
    return _with_days(_frame(session, query.order_by(day, Result.provider, Result.model)))


def _with_days(frame: pd.DataFrame) -> pd.DataFrame:
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def latency_by_model(session: Session, flt: HistoryFilter | None = None) -> pd.DataFrame:
    """Latency, TTFT and speed of completed, non-cached answers per provider and model.

    Columns: ``samples``, ``avg_latency_ms``, ``p50_latency_ms``, ``p95_latency_ms``, the
    same three for ``ttft_ms``, and ``avg_chars_per_s``; percentiles interpolate linearly
    (SQL ``percentile_cont``; from the timing bins for periods longer than
    :data:`EXACT_TIMING_DAYS`). The filter's statuses are ignored.
    """
    any_status = replace(flt or HistoryFilter(), statuses=())
    if from_rollups(any_status) and not exact_timings(any_status):
        return _latency_from_rollups(session, any_status)
    measured = [_NOT_CACHED, Result.status == "completed"]
    keys = [Result.model, Result.provider]
    figures: list[ColumnElement[Any]] = [
        sa.func.count().label("samples"),
        sa.func.avg(Result.latency_ms).label("avg_latency_ms"),
        sa.func.avg(Result.ttft_ms).label("avg_ttft_ms"),
        sa.func.avg(Result.chars_per_s).label("avg_chars_per_s"),
        *(
            sa.func.percentile_cont(q).within_group(column).label(f"p{round(q * 100)}_{name}")
            for name, column in (("latency_ms", Result.latency_ms), ("ttft_ms", Result.ttft_ms))
            for q in QUANTILES
        ),
    ]
    query = _filtered(session, sa.select(*keys, *figures).where(*measured), any_status)
    return _latency_frame(_frame(session, query.group_by(*keys)))


def from_rollups(flt: HistoryFilter | None) -> bool:
    """Whether ``flt`` can be answered from the usage rollups: no tag, no search, and a
    period of whole UTC days."""
    flt = flt or HistoryFilter()
    return (
        not flt.tag
        and not flt.search
        and all(bound is None or _midnight(bound) for bound in (flt.since, flt.until))
    )


def exact_timings(flt: HistoryFilter | None) -> bool:
    """Whether p50/p95 for ``flt`` are computed exactly (a period of at most
    :data:`EXACT_TIMING_DAYS` day, or a filter the rollups can't answer)."""
    flt = flt or HistoryFilter()
    if not from_rollups(flt):
        return True
    if flt.since is None or flt.until is None:
        return False
    return flt.until - flt.since <= timedelta(days=EXACT_TIMING_DAYS)


def _midnight(moment: datetime) -> bool:
    return moment.utcoffset() is not None and moment.timetz().replace(tzinfo=None) == time()


def _rollup_conditions(
    flt: HistoryFilter | None, table: sa.Table = _ROLLUP
) -> list[ColumnElement[bool]]:
    """The conditions of a filter :func:`from_rollups` accepts, on ``table`` (the rollups
    or the timing bins: both have the bucket's key columns).

    Visibility is the same rule as :func:`playground.principal.visible_to`: the
    viewer's own rows, and rows shared with one of their workspaces.
    """
    flt = flt or HistoryFilter()
    c = table.c
    conditions: list[ColumnElement[bool]] = []
    if flt.models:
        conditions.append(c.model.in_(flt.models))
    if flt.statuses:
        conditions.append(c.status.in_(flt.statuses))
    if flt.since is not None:
        conditions.append(c.day >= flt.since.date())
    if flt.until is not None:
        conditions.append(c.day < flt.until.date())
    if flt.owner is not None:
        conditions.append(c.owner == flt.owner)
    if flt.viewer is not None:
        own = c.owner == flt.viewer.subject
        if flt.viewer.workspace_ids:
            shared = c.shared_workspace.in_(sorted(flt.viewer.workspace_ids))
            conditions.append(sa.or_(own, shared))
        else:
            conditions.append(own)
    return conditions


def _summary_from_rollups(session: Session, flt: HistoryFilter | None) -> pd.DataFrame:
    rows = UsageRollup.results
    api = UsageRollup.cached.is_(False)

    def whole(total: ColumnElement[Any]) -> ColumnElement[int]:
        # PostgreSQL sums BIGINTs as NUMERIC (Decimal in Python): the counts are integers.
        return sa.cast(total, sa.BigInteger)

    query = sa.select(
        UsageRollup.provider,
        UsageRollup.model,
        whole(sa.func.sum(rows)).label("results"),
        whole(_sum_if(UsageRollup.cached.is_(True), rows)).label("cached"),
        whole(_sum_if(api, rows)).label("api_calls"),
        *(
            whole(_sum_if(api & (UsageRollup.status == s), rows)).label(s)
            for s in FINISHED_STATUSES
        ),
        whole(_sum_if(api, UsageRollup.tokens_spent)).label("tokens_spent"),
        whole(_sum_if(api, UsageRollup.output_chars)).label("output_chars"),
    ).where(*_rollup_conditions(flt))
    keys = (UsageRollup.provider, UsageRollup.model)
    query = query.group_by(*keys).having(sa.func.sum(rows) != 0).order_by(*keys)
    return _frame(session, query)


def _latency_from_rollups(session: Session, flt: HistoryFilter) -> pd.DataFrame:
    conditions = [UsageRollup.cached.is_(False), UsageRollup.status == "completed"]
    conditions += _rollup_conditions(flt)
    keys = (UsageRollup.model, UsageRollup.provider)

    def mean(total: Any, count: Any) -> ColumnElement[Any]:
        return sa.func.sum(total) / sa.func.nullif(sa.func.sum(count), 0)

    query = (
        sa.select(
            *keys,
            sa.func.sum(UsageRollup.results).label("samples"),
            mean(UsageRollup.latency_sum, UsageRollup.latency_n).label("avg_latency_ms"),
            mean(UsageRollup.ttft_sum, UsageRollup.ttft_n).label("avg_ttft_ms"),
            mean(UsageRollup.speed_sum, UsageRollup.speed_n).label("avg_chars_per_s"),
        )
        .where(*conditions)
        .group_by(*keys)
        .having(sa.func.sum(UsageRollup.results) != 0)
    )
    frame = _frame(session, query)
    timings = _TIMINGS.c
    measured = [timings.cached.is_(False), timings.status == "completed"]
    stored = counts_bytes(timings.counts)
    rows = session.execute(
        sa.select(timings.provider, timings.model, timings.measure, timings.low, stored).where(
            *measured, *_rollup_conditions(flt, _TIMINGS), _whole_months_and_other_days(flt)
        )
    ).all()
    dialect = session.get_bind().dialect.name
    parts: dict[tuple[str, str, str], list[tuple[int, np.ndarray]]] = defaultdict(list)
    for provider, model, measure, low, raw in rows:
        parts[provider, model, measure].append((low, decode_counts(dialect, raw)))
    figures: dict[str, dict[tuple[str, str], float | None]] = defaultdict(dict)
    for (provider, model, measure), bins in parts.items():
        low, counts = merge_bins(bins)
        for q in QUANTILES:
            column = f"p{round(q * 100)}_{measure}"
            figures[column][provider, model] = _binned_percentile(low, counts, q)
    pairs = list(zip(frame["provider"], frame["model"], strict=True))
    for measure in MEASURES:
        for q in QUANTILES:
            column = f"p{round(q * 100)}_{measure}"
            found = figures[column]
            frame[column] = [found.get(pair, float("nan")) for pair in pairs]
    return _latency_frame(frame)


def _whole_months_and_other_days(flt: HistoryFilter) -> ColumnElement[bool]:
    """Which timing rows add up to the period of ``flt`` (whole UTC days, per
    :func:`from_rollups`) once each: the month rows of the calendar months wholly inside
    it, and the day rows of its other days."""
    c = _TIMINGS.c
    since = None if flt.since is None else flt.since.date()
    until = None if flt.until is None else flt.until.date()
    first = since if since is None or since.day == 1 else _next_month(since)
    last = None if until is None else until.replace(day=1)
    if first is not None and last is not None and first >= last:
        return c.period == "day"  # no whole month inside
    months = [c.period == "month"]
    outside: list[ColumnElement[bool]] = []
    if first is not None:
        months.append(c.day >= first)
        outside.append(c.day < first)
    if last is not None:
        months.append(c.day < last)
        outside.append(c.day >= last)
    days = sa.and_(c.period == "day", sa.or_(*outside)) if outside else sa.false()
    return sa.or_(sa.and_(*months), days)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _binned_percentile(low: int, counts: np.ndarray, q: float) -> float | None:
    """``percentile_cont(q)`` read from the counts of bins ``low, low + 1, …``: each rank's
    value is its bin's representative value, interpolated between the two closest ranks."""
    total = int(counts.sum())
    if total == 0:
        return None
    ends = counts.cumsum()
    position = (total - 1) * q
    rank_low, rank_high = int(position), min(int(position) + 1, total - 1)
    values = bin_values(low, len(counts))
    low_value = float(values[(ends > rank_low).argmax()])
    high_value = float(values[(ends > rank_high).argmax()])
    return low_value + (high_value - low_value) * (position - rank_low)


def _latency_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The latency frame's columns in their documented order, sorted by provider and model."""
    frame = frame.sort_values(["provider", "model"], ignore_index=True)
    ordered = ["provider", "model", "samples"]
    for name in MEASURES:
        ordered += [f"avg_{name}", *(f"p{round(q * 100)}_{name}" for q in QUANTILES)]
    return frame[[*ordered, "avg_chars_per_s"]]


def prompt_model_costs(
    session: Session,
    flt: HistoryFilter | None = None,
    *,
    prompts: int = 50,
    min_models: int = 2,
    walk: int = 500,
) -> pd.DataFrame:
    """For the ``prompts`` most recent prompts run on at least ``min_models`` models: per
    prompt and model, ``runs``, ``tokens_spent``, ``output_chars``, ``avg_latency_ms``
    (API calls only). Feed it to :func:`playground.presenters.analytics.same_prompt_table`.

    "Most recent" is by a prompt's newest API call in ``flt``. The answers are walked
    newest first, ``walk`` at a time, and only the prompts met so far are added up, so
    the cost follows the few recent prompts shown, not the size of the history.
    """
    dialect = session.get_bind().dialect.name
    conditions = result_conditions(flt or HistoryFilter(), dialect, include_deleted=True)
    chosen: list[Any] = []
    for hashes in _recent_prompts(session, conditions, walk):
        per_prompt: dict[str, list[Any]] = defaultdict(list)
        for row in session.execute(_per_prompt_and_model(hashes, conditions)):
            per_prompt[row.prompt_hash].append(row)
        for prompt_hash in hashes:
            rows = per_prompt.get(prompt_hash, [])
            if len({row.model for row in rows}) >= min_models:
                chosen.extend(rows)
                prompts -= 1
                if prompts == 0:
                    break
        if prompts == 0:
            break
    chosen.sort(key=lambda row: (row.prompt_hash, row.provider, row.model))
    columns = ["prompt_hash", "provider", "model", "runs", "tokens_spent", "output_chars"]
    frame = pd.DataFrame([tuple(row) for row in chosen], columns=[*columns, "avg_latency_ms"])
    labels = _prompt_labels(session, set(frame["prompt_hash"]), conditions)
    frame.insert(1, "prompt_preview", frame["prompt_hash"].map(labels).astype("object"))
    return frame


def _recent_prompts(
    session: Session, conditions: list[ColumnElement[bool]], walk: int
) -> Iterator[list[str]]:
    """The prompt hashes of the API calls ``conditions`` keep, newest call first, each
    once: a list per ``walk`` answers read (through the time-ordered index)."""
    seen_comparisons: set[int] = set()
    seen_prompts: set[str] = set()
    after: tuple[datetime, int] | None = None
    while True:
        query = sa.select(Result.created_utc, Result.id, Result.comparison_id).where(
            _NOT_CACHED_ROW, *conditions
        )
        if after is not None:
            created, result_id = after
            query = query.where(
                sa.or_(
                    Result.created_utc < created,
                    sa.and_(Result.created_utc == created, Result.id < result_id),
                )
            )
        batch = session.execute(
            query.order_by(Result.created_utc.desc(), Result.id.desc()).limit(walk)
        ).all()
        ordered = dict.fromkeys(row.comparison_id for row in batch)
        new = [c for c in ordered if c not in seen_comparisons]
        seen_comparisons.update(new)
        prompt_of: dict[int, str] = {
            row.id: row.prompt_hash
            for row in session.execute(
                sa.select(Comparison.id, Comparison.prompt_hash).where(Comparison.id.in_(new))
            )
        }
        hashes = [prompt_of[c] for c in new if c in prompt_of]
        hashes = [h for h in dict.fromkeys(hashes) if h not in seen_prompts]
        seen_prompts.update(hashes)
        if hashes:
            yield hashes
        if len(batch) < walk:
            return
        after = (batch[-1].created_utc, batch[-1].id)


def _per_prompt_and_model(
    hashes: list[str], conditions: list[ColumnElement[bool]]
) -> sa.Select[Any]:
    """Runs, tokens, characters and mean latency per prompt, provider and model (API calls
    ``conditions`` keep), for the prompts ``hashes``."""
    # Through the prompts' comparisons (indexed by hash), not a walk of the whole period.
    comparisons = sa.select(Comparison.id).where(Comparison.prompt_hash.in_(hashes))
    return (
        sa.select(
            Comparison.prompt_hash,
            Result.provider,
            Result.model,
            sa.func.count().label("runs"),
            sa.func.coalesce(sa.func.sum(Result.tokens_used), 0).label("tokens_spent"),
            sa.func.coalesce(sa.func.sum(Result.chars), 0).label("output_chars"),
            sa.func.avg(Result.latency_ms).label("avg_latency_ms"),
        )
        .join(Comparison, Comparison.id == Result.comparison_id)
        .where(_NOT_CACHED_ROW, Result.comparison_id.in_(comparisons), *conditions)
        .group_by(Comparison.prompt_hash, Result.provider, Result.model)
    )


def _prompt_labels(
    session: Session, hashes: set[str], conditions: list[sa.ColumnElement[bool]]
) -> dict[str, str]:
    """Each prompt hash's label: the prompt itself (its last message), then the start of
    its system prompt; read from a comparison ``conditions`` keep (the viewer's own)."""
    if not hashes:
        return {}
    answered = sa.exists().where(Result.comparison_id == Comparison.id, *conditions)
    rows = session.execute(
        sa.select(Comparison.prompt_hash, Comparison.system_prompt, Comparison.messages_json)
        .where(Comparison.prompt_hash.in_(hashes), answered)
        .order_by(Comparison.id.desc())
    )
    labels: dict[str, str] = {}
    for prompt_hash, system_prompt, messages in rows:
        if prompt_hash in labels:
            continue
        prompt = " ".join(str(messages[-1]["content"]).split()) if messages else ""
        label = textwrap.shorten(prompt, width=80, placeholder="…") or "(empty prompt)"
        system = " ".join(system_prompt.split())
        if system:
            label += " · system: " + textwrap.shorten(system, width=30, placeholder="…")
        labels[prompt_hash] = label
    return labels


def balance_points(
    session: Session, flt: HistoryFilter | None = None, *, limit: int | None = None
) -> pd.DataFrame:
    """Every reported balance in time order: ``finished_utc, provider, model,
    balance_remaining`` (non-cached results only; narrow it with ``since``/``until``).

    With ``limit``, a period holding more than ``limit`` balances gives instead the last
    balance each provider reported on each UTC day (the day the answer was created) when
    ``flt`` is one the rollups answer: a lookup per day and provider through an index, so
    a year of history costs a few hundred lookups, not a read of every answer.
    """
    query = sa.select(
        Result.finished_utc, Result.provider, Result.model, Result.balance_remaining
    ).where(
        _NOT_CACHED_ROW, Result.balance_remaining.is_not(None), Result.finished_utc.is_not(None)
    )
    query = _filtered(session, query, flt)
    if limit is not None:
        first = list(
            session.execute(
                query.add_columns(Result.id)
                .order_by(Result.created_utc, Result.id)
                .limit(limit + 1)
            )
        )
        if len(first) <= limit:
            first.sort(key=lambda row: (row.finished_utc, row.id))
            return _balance_frame([tuple(row)[:4] for row in first])
        if from_rollups(flt):
            query = query.where(Result.id.in_(_last_balance_of_each_day(session, flt)))
    return _balance_frame(session.execute(query.order_by(Result.finished_utc, Result.id)).all())


def _balance_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [tuple(row) for row in rows],
        columns=["finished_utc", "provider", "model", "balance_remaining"],
    )
    frame["finished_utc"] = pd.to_datetime(frame["finished_utc"], utc=True)
    return frame


def _last_balance_of_each_day(session: Session, flt: HistoryFilter | None) -> sa.Select[Any]:
    """The id of each provider's last answer with a balance on each day the rollups say it
    was called (``flt`` is one :func:`from_rollups` accepts)."""
    dialect = session.get_bind().dialect.name
    days = (
        sa.select(_ROLLUP.c.day, _ROLLUP.c.provider)
        .where(_ROLLUP.c.cached.is_(False), *_rollup_conditions(flt))
        .distinct()
        .subquery()
    )
    last = (
        sa.select(Result.id)
        .where(
            Result.provider == days.c.provider,
            Result.created_utc >= day_start(days.c.day),
            Result.created_utc < next_day_start(days.c.day),
            Result.balance_remaining.is_not(None),
            Result.finished_utc.is_not(None),
            _NOT_CACHED_ROW,
            *result_conditions(flt or HistoryFilter(), dialect, include_deleted=True),
        )
        .order_by(Result.created_utc.desc(), Result.id.desc())
        .limit(1)
        .correlate(days)
        .scalar_subquery()
    )
    return sa.select(last).select_from(days)


def _filtered(session: Session, query: SelectT, flt: HistoryFilter | None) -> SelectT:
    dialect = session.get_bind().dialect.name
    return query.where(*result_conditions(flt or HistoryFilter(), dialect, include_deleted=True))


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _sum_if(condition: ColumnElement[bool], column: Any) -> ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, column), else_=None)), 0)


def _frame(session: Session, query: sa.Select[*tuple[Any, ...]]) -> pd.DataFrame:
    result = session.execute(query)
    columns = list(result.keys())
    return pd.DataFrame([tuple(row) for row in result], columns=columns)
