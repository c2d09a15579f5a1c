"""Pure helpers behind the History page: the filter from widget values, the table, paging.

Nothing here does I/O or knows Streamlit; the page reads widgets, calls these and draws.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from playground.catalog import Catalog
from playground.errors import InvalidRequestError
from playground.presenters.compare import ModelOption, model_options, option_key, result_cost
from playground.principal import Principal
from playground.providers.base import Provider
from playground.results import STATUS_STYLES, CompareRequest, ModelResult, total_cost
from playground.safe_text import inline_code
from playground.store import HistoryFilter, StoredComparison
from playground.store.export import ExportFormat
from playground.store.filters import search_terms
from playground.store.history_rows import AnswerMark, ComparisonRow
from playground.store.models import FINISHED_STATUSES
from playground.store.repository import BatchEntry, ListEntry, normalize_tags

# ``?batch=<id>`` opens Evaluate on that batch's results (History's batch rows link there).
BATCH_PARAM = "batch"
PREVIEW_CHARS = 100
STATUS_ICONS: dict[str, str] = {status: style.icon for status, style in STATUS_STYLES.items()}
CACHED_ICON = "↻"
TRUNCATED_ICON = "✂"  # completed, but cut at max tokens
STATUS_CHOICES: tuple[str, ...] = (*FINISHED_STATUSES, "running")
TABLE_COLUMNS: tuple[str, ...] = (
    "Created (UTC)",
    "Title",
    "Models",
    "Cost",
    "Prompt",
    "Match",
    "Tags",
)

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


def preview(text: str, width: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, shortened to ``width`` characters with an ellipsis."""
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder="…")


def comparison_cost(results: Iterable[ModelResult]) -> int | None:
    """Billing tokens the comparison cost; ``None`` when no result's cost is known."""
    return total_cost(map(result_cost, results))


def model_name(result: ModelResult | AnswerMark, titles: Mapping[str, ModelOption]) -> str:
    """The model's display name, or its slug when no provider offers it any more."""
    option = titles.get(option_key(result.provider, result.model))
    return option.name if option else result.model


def models_cell(
    results: Iterable[ModelResult | AnswerMark], titles: Mapping[str, ModelOption]
) -> str:
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


def cost_cell(cost: int | None) -> str:
    """A cost for the table: billing tokens, or "—" when nothing was charged or is known."""
    return "—" if cost is None else f"{cost:,}"


def match_snippet(row: ComparisonRow, search: str | None, width: int = 80) -> str:
    """Why a comparison matched ``search``: the text around the first word found, from the
    system prompt, any turn or any answer (the row's ``texts``); empty when not searching."""
    terms = search_terms(search)
    if not terms:
        return ""
    for text in row.texts:
        flat = " ".join(text.split())
        lowered = flat.lower()
        found = min((i for i in (lowered.find(t) for t in terms) if i >= 0), default=-1)
        if found >= 0:
            # Some words of context before the hit, starting at a word.
            start = flat.rfind(" ", 0, found - width // 3) + 1 if found > width // 3 else 0
            snippet = flat[start : start + width]
            return ("…" if start else "") + snippet + ("…" if start + width < len(flat) else "")
    return ""


def _batch_row(entry: BatchEntry, titles: Mapping[str, ModelOption]) -> tuple[object, ...]:
    names = []
    for provider, model in entry.models:
        option = titles.get(option_key(provider, model))
        names.append(option.name if option else model)
    failed = entry.not_completed
    rows = f"{entry.comparisons} row{'' if entry.comparisons == 1 else 's'}"
    answers = f"{entry.answers} answers" + (f", {failed} not completed" if failed else "")
    return (
        entry.latest_at.astimezone(UTC).replace(tzinfo=None),
        f"Batch #{entry.batch_id} {entry.title}".strip(),
        " · ".join(names),
        cost_cell(entry.cost),
        f"{rows} × {len(entry.models)} models: {answers}. Open to see its results on Evaluate.",
        "",
        "batch",
    )


def comparison_table(
    entries: Sequence[ListEntry],
    titles: Mapping[str, ModelOption],
    search: str | None = None,
) -> pd.DataFrame:
    """One row per entry (a comparison, or a batch's answers), in the given order, with the
    :data:`TABLE_COLUMNS`; while searching, "Match" shows where each comparison matched.

    Times are naive UTC (the column says so), costs are billing tokens ("—": not charged).
    """
    rows = [
        _batch_row(e, titles)
        if isinstance(e, BatchEntry)
        else (
            e.created_at.astimezone(UTC).replace(tzinfo=None),
            e.title,
            models_cell(e.answers, titles),
            cost_cell(e.cost),
            preview(e.prompt),
            match_snippet(e, search),
            ", ".join(e.tags),
        )
        for e in entries
    ]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    if not search_terms(search):
        table = table.drop(columns="Match")
    return table


def entry_key(entry: ListEntry) -> tuple[str, int]:
    """What opening ``entry`` means: ``("comparison", id)`` or ``("batch", id)``."""
    if isinstance(entry, BatchEntry):
        return ("batch", entry.batch_id)
    return ("comparison", entry.id)


def selected_row(rows: Sequence[int], cells: Sequence[tuple[int, object]]) -> int | None:
    """The table row picked by its selection box or by a click on one of its cells."""
    if rows:
        return rows[0]
    if cells:
        return int(cells[0][0])
    return None


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


def page_caption(page: int, pages: int, total: int, more: bool) -> str:
    """The History list's position line: "Page 2 of 5 · 93 entries"; when the count stopped
    early (``more``), "Page 2 of 50+ · 1,000+ entries"."""
    plus = "+" if more else ""
    entries = f"{total:,}{plus} entr{'y' if total == 1 and not more else 'ies'}"
    return f"Page {page + 1:,} of {pages:,}{plus} · {entries}"
