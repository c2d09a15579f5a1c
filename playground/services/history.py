"""History and cost reads and edits for the UI: one store transaction per call.

Pages call these rather than the store so that every read runs in one transaction on the
process-wide store (see :func:`playground.services.runtime.get_store`) and every sharing change
is audited with it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import pandas as pd

from playground.access.audit import record_event
from playground.principal import Principal
from playground.services.runtime import get_store

# Pages build and read these with the functions below; named here so pages need no store import.
from playground.store import EXPORT_FORMATS as EXPORT_FORMATS
from playground.store import HistoryFilter as HistoryFilter
from playground.store import StoredComparison as StoredComparison
from playground.store import (
    delete_comparison,
    export_rows,
    get_comparison,
    share_comparison,
    update_comparison_meta,
    write_export,
)
from playground.store.export import ExportFormat
from playground.store.repository import ListEntry, history_entries
from playground.store.stats import (
    BALANCE_POINTS,
    balance_points,
    latency_by_model,
    model_summary,
    prompt_model_costs,
    tokens_by_day,
)

PAGE_SIZE = 20


@dataclass(frozen=True)
class HistoryPage:
    """One page of the history list."""

    entries: list[ListEntry]
    total: int
    """How many entries (comparisons, batches) match the filter, on every page; with
    ``more``, how many were counted (at least this many match)."""
    page: int
    """This page's number, 0-based."""
    pages: int
    """How many pages there are (at least one); with ``more``, at least this many."""
    more: bool = False
    """Whether the count stopped early: "1,000+ entries", "page 1 of 50+"."""


def page_count(total: int, page_size: int = PAGE_SIZE) -> int:
    """How many pages ``total`` rows fill (at least one, so "page 1 of 1" when empty)."""
    return max(1, math.ceil(total / page_size))


def clamp_page(page: int, total: int, page_size: int = PAGE_SIZE) -> int:
    """``page`` (0-based) moved into range after the total shrank (e.g. after a delete)."""
    return max(0, min(page, page_count(total, page_size) - 1))


@dataclass(frozen=True)
class CostReport:
    """The store's aggregates for one period.

    Built by :func:`cost_report`.
    """

    summary: pd.DataFrame
    """:func:`~playground.store.stats.model_summary`"""
    latency: pd.DataFrame
    """:func:`~playground.store.stats.latency_by_model`"""
    daily: pd.DataFrame
    """:func:`~playground.store.stats.tokens_by_day`"""
    prompt_costs: pd.DataFrame
    """:func:`~playground.store.stats.prompt_model_costs`"""
    balance: pd.DataFrame
    """:func:`~playground.store.stats.balance_points`"""

    @property
    def empty(self) -> bool:
        """Whether nothing was run in the period."""
        return self.summary.empty


def history_page(
    flt: HistoryFilter, page: int, page_size: int = PAGE_SIZE, *, batches: bool = True
) -> HistoryPage:
    """Page ``page`` (0-based, moved into range) of the entries matching ``flt``: each
    comparison, and each batch's matching answers as one entry (none with ``batches=False``).

    The count is exact up to :data:`~playground.store.repository.COUNT_CAP` entries (or
    this page, if further); past that ``more`` is set, as counting every match of a long
    history would cost more than the page.
    """
    with get_store().session() as session, session.begin():
        found = history_entries(
            session, flt, limit=page_size, offset=page * page_size, batches=batches
        )
        clamped = clamp_page(page, found.total, page_size)
        if clamped != page:  # past the end (e.g. after a delete)
            found = history_entries(
                session, flt, limit=page_size, offset=clamped * page_size, batches=batches
            )
    total = found.total
    return HistoryPage(found.entries, total, clamped, page_count(total, page_size), found.more)


def stored_comparison(
    comparison_id: int, viewer: Principal | None = None
) -> StoredComparison | None:
    """A comparison read back from history; ``None`` if unknown, deleted or not ``viewer``'s."""
    with get_store().session() as session, session.begin():
        return get_comparison(session, comparison_id, viewer=viewer)


def annotate_comparison(
    comparison_id: int,
    *,
    title: str,
    tags: list[str],
    note: str,
    viewer: Principal | None = None,
) -> bool:
    """Set a comparison's title, tags and note; ``False`` if it no longer exists.

    With a ``viewer`` only their own comparison (``AccessDeniedError`` otherwise).
    """
    with get_store().session() as session, session.begin():
        return update_comparison_meta(
            session, comparison_id, title=title, tags=tags, note=note, viewer=viewer
        )


def delete_stored_comparison(comparison_id: int, viewer: Principal | None = None) -> bool:
    """Hide a comparison from history (its costs still count); ``False`` if already gone."""
    with get_store().session() as session, session.begin():
        return delete_comparison(session, comparison_id, viewer=viewer)


def set_sharing(
    comparison_id: int,
    viewer: Principal,
    *,
    visibility: str,
    workspace_id: int | None,
    link: bool,
) -> str | None:
    """Who may see the viewer's comparison, and its share token (``None``: no link); audited."""
    with get_store().session() as session, session.begin():
        token = share_comparison(
            session,
            comparison_id,
            viewer,
            visibility=visibility,
            workspace_id=workspace_id,
            link=link,
        )
        record_event(
            session,
            viewer.subject,
            "comparison.share",
            f"comparison:{comparison_id}",
            {"visibility": visibility, "workspace_id": workspace_id, "link": link},
        )
    return token


def export_history(flt: HistoryFilter, fmt: ExportFormat) -> str:
    """Every result matching ``flt`` as CSV or JSON text (see :func:`write_export`)."""
    out = io.StringIO()
    with get_store().session() as session, session.begin():
        write_export(export_rows(session, flt), fmt, out)
    return out.getvalue()


def cost_report(flt: HistoryFilter) -> CostReport:
    """The cost dashboard's figures for ``flt``, read in one transaction."""
    with get_store().session() as session, session.begin():
        return CostReport(
            summary=model_summary(session, flt),
            latency=latency_by_model(session, flt),
            daily=tokens_by_day(session, flt),
            prompt_costs=prompt_model_costs(session, flt),
            balance=balance_points(session, flt, limit=BALANCE_POINTS),
        )
