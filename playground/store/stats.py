"""SQL-side aggregations for the cost dashboard, returned as pandas DataFrames.

Sums and counts run in the database. Cached results cost nothing and measured nothing, so
they never count towards tokens spent, latency or TTFT. Soft-deleted comparisons still
count: their tokens were really spent. Derived figures (rates, cost per 1k characters,
pivots) are in :mod:`playground.analytics`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from playground.store.dialects import utc_day
from playground.store.filters import HistoryFilter, result_conditions
from playground.store.models import FINISHED_STATUSES, Comparison, Result

QUANTILES = (0.5, 0.95)
SelectT = TypeVar("SelectT", bound=sa.Select[*tuple[Any, ...]])
_NOT_CACHED = Result.cached.is_(False)


def model_summary(session: Session, flt: HistoryFilter | None = None) -> pd.DataFrame:
    """Per provider and model: ``results``, ``cached``, ``api_calls``, one count per finished
    status (API calls only), ``tokens_spent`` and ``output_chars`` (API calls only)."""
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
    day = utc_day(Result.created_utc)
    query = sa.select(
        day.label("day"),
        Result.provider,
        Result.model,
        sa.func.coalesce(sa.func.sum(Result.tokens_used), 0).label("tokens_spent"),
        sa.func.count().label("api_calls"),
    ).where(_NOT_CACHED)
    query = _filtered(session, query, flt).group_by(day, Result.provider, Result.model)
    frame = _frame(session, query.order_by(day, Result.provider, Result.model))
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def latency_by_model(session: Session, flt: HistoryFilter | None = None) -> pd.DataFrame:
    """Latency, TTFT and speed of completed, non-cached answers per provider and model.

    Columns: ``samples``, ``avg_latency_ms``, ``p50_latency_ms``, ``p95_latency_ms``, the
    same three for ``ttft_ms``, and ``avg_chars_per_s``; percentiles interpolate linearly
    (SQL ``percentile_cont``). The filter's statuses are ignored.
    """
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
    any_status = replace(flt or HistoryFilter(), statuses=())
    query = _filtered(session, sa.select(*keys, *figures).where(*measured), any_status)
    frame = _frame(session, query.group_by(*keys))
    frame = frame.sort_values(["provider", "model"], ignore_index=True)
    ordered = ["provider", "model", "samples"]
    for name in ("latency_ms", "ttft_ms"):
        ordered += [f"avg_{name}", *(f"p{round(q * 100)}_{name}" for q in QUANTILES)]
    return frame[[*ordered, "avg_chars_per_s"]]


def prompt_model_costs(
    session: Session,
    flt: HistoryFilter | None = None,
    *,
    prompts: int = 50,
    min_models: int = 2,
) -> pd.DataFrame:
    """For the ``prompts`` most recent prompts run on at least ``min_models`` models: per
    prompt and model, ``runs``, ``tokens_spent``, ``output_chars``, ``avg_latency_ms``
    (API calls only). Feed it to :func:`playground.analytics.same_prompt_table`."""
    dialect = session.get_bind().dialect.name
    conditions = result_conditions(flt or HistoryFilter(), dialect, include_deleted=True)
    recent = (
        sa.select(Comparison.prompt_hash)
        .join(Result, Result.comparison_id == Comparison.id)
        .where(_NOT_CACHED, *conditions)
        .group_by(Comparison.prompt_hash)
        .having(sa.func.count(sa.distinct(Result.model)) >= min_models)
        .order_by(sa.func.max(Comparison.created_utc).desc())
        .limit(prompts)
    )
    preview = sa.func.min(sa.func.substr(Comparison.prompt_text, 1, 80))
    query = (
        sa.select(
            Comparison.prompt_hash,
            preview.label("prompt_preview"),
            Result.provider,
            Result.model,
            sa.func.count().label("runs"),
            sa.func.coalesce(sa.func.sum(Result.tokens_used), 0).label("tokens_spent"),
            sa.func.coalesce(sa.func.sum(Result.chars), 0).label("output_chars"),
            sa.func.avg(Result.latency_ms).label("avg_latency_ms"),
        )
        .join(Comparison, Comparison.id == Result.comparison_id)
        .where(_NOT_CACHED, Comparison.prompt_hash.in_(recent.correlate(None)), *conditions)
        .group_by(Comparison.prompt_hash, Result.provider, Result.model)
        .order_by(Comparison.prompt_hash, Result.provider, Result.model)
    )
    return _frame(session, query)


def balance_points(session: Session, flt: HistoryFilter | None = None) -> pd.DataFrame:
    """Every reported balance in time order: ``finished_utc, provider, model,
    balance_remaining`` (non-cached results only; narrow it with ``since``/``until``)."""
    query = sa.select(
        Result.finished_utc, Result.provider, Result.model, Result.balance_remaining
    ).where(_NOT_CACHED, Result.balance_remaining.is_not(None), Result.finished_utc.is_not(None))
    frame = _frame(session, _filtered(session, query, flt).order_by(Result.finished_utc, Result.id))
    frame["finished_utc"] = pd.to_datetime(frame["finished_utc"], utc=True)
    return frame


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
