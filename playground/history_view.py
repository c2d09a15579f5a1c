"""Pure helpers behind the History page: the filter from widget values, the table, paging.

Nothing here does I/O or knows Streamlit; the page reads widgets, calls these and draws.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from playground.access.principal import Principal
from playground.catalog import Catalog
from playground.compare_view import ModelOption, model_options, option_key, result_cost
from playground.errors import InvalidRequestError
from playground.providers.base import Provider
from playground.results import STATUS_STYLES, CompareRequest, ModelResult
from playground.safe_text import inline_code
from playground.store import HistoryFilter, StoredComparison
from playground.store.export import ExportFormat
from playground.store.models import FINISHED_STATUSES
from playground.store.repository import normalize_tags

PAGE_SIZE = 20
PREVIEW_CHARS = 100
STATUS_ICONS: dict[str, str] = {status: style.icon for status, style in STATUS_STYLES.items()}
CACHED_ICON = "↻"
TRUNCATED_ICON = "✂"  # completed, but cut at max tokens
STATUS_CHOICES: tuple[str, ...] = (*FINISHED_STATUSES, "running")
TABLE_COLUMNS: tuple[str, ...] = ("Created (UTC)", "Title", "Models", "Cost", "Prompt", "Tags")

DateRange = date | Sequence[date] | None
"""What ``st.date_input`` returns for a range: ``()``, ``(start,)`` while picking, or both."""


def date_bounds(dates: DateRange) -> tuple[datetime | None, datetime | None]:
    """``(since, until)`` covering whole UTC days, ``until`` exclusive; ``None`` = open end.

    One date (a range being picked) means from that day on. Raises
    :class:`InvalidRequestError` when the start is after the end.
    """
    if dates is None:
        return None, None
    days = [dates] if isinstance(dates, date) else list(dates)
    if not days:
        return None, None
    start = days[0]
    end = days[1] if len(days) > 1 else None
    if end is not None and start > end:
        raise InvalidRequestError(
            f"The start date {start:%Y-%m-%d} is after the end date {end:%Y-%m-%d}."
        )
    since = datetime.combine(start, time(), tzinfo=UTC)
    until = None if end is None else datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    return since, until


def history_filter(
    *,
    models: Iterable[str] = (),
    statuses: Iterable[str] = (),
    dates: DateRange = None,
    tag: str = "",
    search: str = "",
    viewer: Principal | None = None,
) -> HistoryFilter:
    """The filter the History widgets describe; empty widgets don't filter.

    ``viewer`` (hosted mode) limits it to the comparisons that user may see.
    """
    since, until = date_bounds(dates)
    return HistoryFilter(
        models=tuple(models),
        statuses=tuple(statuses),
        since=since,
        until=until,
        tag=tag.strip() or None,
        search=search.strip() or None,
        viewer=viewer,
    )


def model_choices(catalog: Catalog, extra: Iterable[str] = ()) -> dict[str, str]:
    """Model slugs for the filter, each with its display name (catalog first, then extras)."""
    choices = {model.slug: model.name for model in catalog}
    for slug in extra:
        choices.setdefault(slug, slug)
    return choices


def all_model_options(providers: Mapping[str, Provider]) -> dict[str, ModelOption]:
    """Picker options of every provider by key, to name the models of any stored comparison."""
    options: dict[str, ModelOption] = {}
    for name in providers:
        for option in model_options(providers, name):
            options.setdefault(option.key, option)
    return options


@dataclass(frozen=True)
class HistoryPage:
    """One page of the history list."""

    comparisons: list[StoredComparison]
    total: int
    """How many comparisons match the filter, on every page."""
    page: int
    """This page's number, 0-based."""
    pages: int
    """How many pages there are (at least one)."""


def page_count(total: int, page_size: int = PAGE_SIZE) -> int:
    """How many pages ``total`` rows fill (at least one, so "page 1 of 1" when empty)."""
    return max(1, math.ceil(total / page_size))


def clamp_page(page: int, total: int, page_size: int = PAGE_SIZE) -> int:
    """``page`` (0-based) moved into range after the total shrank (e.g. after a delete)."""
    return max(0, min(page, page_count(total, page_size) - 1))


def preview(text: str, width: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, shortened to ``width`` characters with an ellipsis."""
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder="…")


def comparison_cost(results: Iterable[ModelResult]) -> int | None:
    """Billing tokens the comparison cost; ``None`` when no result's cost is known."""
    costs = [cost for cost in map(result_cost, results) if cost is not None]
    return sum(costs) if costs else None


def model_name(result: ModelResult, titles: Mapping[str, ModelOption]) -> str:
    """The model's display name, or its slug when no provider offers it any more."""
    option = titles.get(option_key(result.provider, result.model))
    return option.name if option else result.model


def models_cell(results: Iterable[ModelResult], titles: Mapping[str, ModelOption]) -> str:
    """Each model with its status icon (``↻`` cached, ``✂`` cut at max tokens), e.g.
    ``✓ GPT-5 · ✗ Grok``."""
    cells = []
    for result in results:
        icon = STATUS_ICONS.get(result.status, "•")
        if result.cached:
            icon = CACHED_ICON
        elif result.truncated and result.status == "completed":
            icon = TRUNCATED_ICON
        cells.append(f"{icon} {model_name(result, titles)}")
    return " · ".join(cells)


def comparison_table(
    comparisons: Sequence[StoredComparison], titles: Mapping[str, ModelOption]
) -> pd.DataFrame:
    """One row per comparison, in the given order, with the :data:`TABLE_COLUMNS`.

    Times are naive UTC (the column says so), costs are billing tokens.
    """
    rows = [
        (
            c.created_at.astimezone(UTC).replace(tzinfo=None),
            c.request.title,
            models_cell(c.results, titles),
            comparison_cost(c.results),
            preview(c.request.messages[-1].content if c.request.messages else ""),
            ", ".join(c.request.tags),
        )
        for c in comparisons
    ]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table["Cost"] = table["Cost"].astype("Int64")
    return table


def selected_comparison(rows: Sequence[int], comparison_ids: Sequence[int]) -> int | None:
    """The id of the comparison in the selected table row, if one is selected."""
    if not rows or not 0 <= rows[0] < len(comparison_ids):
        return None
    return comparison_ids[rows[0]]


def summary_line(comparison: StoredComparison, titles: Mapping[str, ModelOption]) -> str:
    """A one-line description: id, time, models, cost and tags (markdown)."""
    cost = comparison_cost(comparison.results)
    parts = [
        f"#{comparison.id}",
        f"{comparison.created_at:%Y-%m-%d %H:%M} UTC",
        f"{len(comparison.results)} model{'' if len(comparison.results) == 1 else 's'}",
        "cost unknown" if cost is None else f"cost **{cost}** billing tokens",
    ]
    if comparison.request.tags:
        parts.append("tags " + ", ".join(inline_code(t) for t in comparison.request.tags))
    return " · ".join(parts)


def heading(comparison: StoredComparison) -> str:
    """The comparison's title, or a preview of its prompt when it has none."""
    prompt = comparison.request.messages[-1].content if comparison.request.messages else ""
    return comparison.request.title or preview(prompt, 80) or f"Comparison #{comparison.id}"


def parse_tags(text: str) -> list[str]:
    """Tags typed as one comma-separated line, cleaned (no empties, no duplicates)."""
    return normalize_tags(text.split(","))


def rerun_request(request: CompareRequest) -> CompareRequest:
    """The request to run a stored comparison again: same prompt, models and title; no note.

    The note described the earlier answers, so the new comparison starts without one.
    """
    return replace(request, note="")


def is_finished(comparison: StoredComparison) -> bool:
    """Whether every result of the comparison reached a final status."""
    return all(result.is_terminal for result in comparison.results)


def export_file_name(fmt: ExportFormat, now: datetime) -> str:
    """The download's file name, e.g. ``history-20261125-1305.csv``."""
    return f"history-{now:%Y%m%d-%H%M}.{fmt}"


def sharing_choices(
    principal: Principal, workspaces: Iterable[tuple[int, str, object]]
) -> dict[int | None, str]:
    """Who an owner can let see a comparison: ``None`` (only them) or one of their workspaces.

    ``workspaces`` are ``(id, name, …)`` of every workspace; only the owner's are offered.
    """
    choices: dict[int | None, str] = {None: "Only me (private)"}
    for workspace_id, name, *_ in workspaces:
        if workspace_id in principal.workspace_ids:
            choices[workspace_id] = f"Workspace {name}"
    return choices


def shared_with(comparison: StoredComparison) -> int | None:
    """The workspace a comparison is visible in, or ``None`` while it is private."""
    return comparison.workspace_id if comparison.visibility == "workspace" else None


def compare_page_url(page_url: str | None) -> str | None:
    """The Compare page's URL (the app's default page) beside the page at ``page_url``.

    Share links must open Compare, which reads them; ``None`` stays ``None``.
    """
    if not page_url:
        return page_url
    scheme, netloc, path, _, _ = urlsplit(page_url)
    return urlunsplit((scheme, netloc, path.rstrip("/").rsplit("/", 1)[0] + "/", "", ""))
