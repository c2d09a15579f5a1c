"""The History page's pure helpers: filter from widget values, the table, paging, tags."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from playground.access import Principal
from playground.catalog import load_catalog
from playground.errors import InvalidRequestError
from playground.presenters import history as hv
from playground.presenters.compare import ModelOption
from playground.providers.base import Message
from playground.providers.demo import DemoProvider
from playground.results import CompareRequest, ModelResult, ModelTarget, ResultStatus
from playground.services.history import clamp_page, page_count
from playground.store import HistoryFilter, StoredComparison
from playground.store.repository import list_row

TITLES = {
    "demo:gpt-5": ModelOption("demo", "gpt-5", "GPT-5", "GPT-5 · Basic+ · 2 tokens", 2),
    "demo:gpt-5-nano": ModelOption("demo", "gpt-5-nano", "GPT-5 Nano", "GPT-5 Nano", 1),
}
CREATED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def result(
    model: str,
    status: ResultStatus = "completed",
    *,
    tokens_used: int | None = None,
    price_tokens: int | None = None,
    cached: bool = False,
    index: int = 0,
) -> ModelResult:
    return ModelResult(
        index=index,
        provider="demo",
        model=model,
        params=CompareRequest((), ()).params,
        request_hash="h",
        status=status,
        tokens_used=tokens_used,
        price_tokens=price_tokens,
        cached=cached,
    )


def stored(
    *results: ModelResult, prompt: str = "What is WAL?", title: str = "", tags: tuple[str, ...] = ()
) -> StoredComparison:
    request = CompareRequest(
        messages=(Message("user", prompt),),
        targets=tuple(ModelTarget(r.provider, r.model) for r in results),
        title=title,
        tags=tags,
        note="kept for later",
    )
    return StoredComparison(id=7, created_at=CREATED, request=request, results=results)


class TestFilter:
    def test_empty_widgets_do_not_filter(self) -> None:
        assert hv.history_filter(dates=(), tag="  ", search=" ") == HistoryFilter()

    def test_every_widget_maps_to_its_field(self) -> None:
        flt = hv.history_filter(
            models=["gpt-5"],
            statuses=["failed"],
            dates=(date(2026, 3, 1), date(2026, 3, 2)),
            tag=" db ",
            search=" wal mode ",
        )
        assert flt == HistoryFilter(
            models=("gpt-5",),
            statuses=("failed",),
            since=datetime(2026, 3, 1, tzinfo=UTC),
            until=datetime(2026, 3, 3, tzinfo=UTC),
            tag="db",
            search="wal mode",
        )

    @pytest.mark.parametrize(
        ("dates", "bounds"),
        [
            (None, (None, None)),
            ((), (None, None)),
            ((date(2026, 3, 1),), (datetime(2026, 3, 1, tzinfo=UTC), None)),
            (date(2026, 3, 1), (datetime(2026, 3, 1, tzinfo=UTC), None)),
            (
                (date(2026, 3, 1), date(2026, 3, 1)),
                (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
            ),
        ],
        ids=["none", "empty", "start-being-picked", "one-date", "one-day"],
    )
    def test_dates_cover_whole_utc_days(
        self, dates: hv.DateRange, bounds: tuple[datetime | None, datetime | None]
    ) -> None:
        assert hv.date_bounds(dates) == bounds

    def test_a_reversed_range_is_a_user_error(self) -> None:
        with pytest.raises(InvalidRequestError, match="2026-03-05 is after the end date 2026-03"):
            hv.history_filter(dates=(date(2026, 3, 5), date(2026, 3, 1)))


def test_model_choices_name_catalog_models_and_keep_extra_slugs() -> None:
    choices = hv.model_choices(load_catalog(), ["llama3", "gpt-5"])
    assert choices["gpt-5"] == "GPT-5"
    assert choices["llama3"] == "llama3"
    assert list(choices)[-1] == "llama3"


def test_all_model_options_cover_every_provider() -> None:
    catalog = load_catalog()
    options = hv.all_model_options({"demo": DemoProvider(catalog)})
    assert options["demo:gpt-5"].name == "GPT-5"
    assert len(options) == len(catalog)


@pytest.mark.parametrize(
    ("page", "total", "expected"), [(0, 0, 0), (3, 45, 2), (2, 40, 1), (-1, 10, 0), (1, 21, 1)]
)
def test_pages_are_clamped_after_the_total_shrinks(page: int, total: int, expected: int) -> None:
    assert clamp_page(page, total) == expected


def test_page_count_is_at_least_one() -> None:
    assert [page_count(n) for n in (0, 1, 20, 21)] == [1, 1, 1, 2]


def test_cost_counts_reported_tokens_then_catalog_prices_of_completed_answers() -> None:
    results = [
        result("gpt-5", tokens_used=2, price_tokens=2),
        result("gpt-5-nano", price_tokens=1),
        result("gpt-5", "failed", price_tokens=2),
        result("gpt-5", cached=True, tokens_used=0),
    ]
    assert hv.comparison_cost(results) == 3
    assert hv.comparison_cost([result("gpt-5", "failed")]) is None


def test_one_table_row_per_comparison_with_status_icons() -> None:
    first = stored(
        result("gpt-5", tokens_used=2),
        result("gpt-5-nano", "failed", index=1),
        result("mystery", "running", index=2),
        title="WAL",
        tags=("db", "sqlite"),
    )
    second = stored(result("gpt-5-nano", cached=True, tokens_used=0), prompt="x " * 200)
    table = hv.comparison_table([list_row(first), list_row(second)], TITLES)
    assert list(table.columns) == [c for c in hv.TABLE_COLUMNS if c != "Match"]
    row = table.iloc[0]
    assert row["Created (UTC)"] == datetime(2026, 3, 1, 12, 30)
    assert row["Title"] == "WAL"
    assert row["Models"] == "✓ GPT-5 · ✗ GPT-5 Nano · … mystery"
    assert row["Cost"] == "2"
    assert row["Prompt"] == "What is WAL?"
    assert row["Tags"] == "db, sqlite"
    assert table.iloc[1]["Models"] == "↻ GPT-5 Nano"
    assert table.iloc[1]["Cost"] == "0"
    assert len(table.iloc[1]["Prompt"]) == hv.PREVIEW_CHARS


def test_an_empty_page_is_an_empty_table_with_the_columns() -> None:
    assert list(hv.comparison_table([], TITLES, "wal").columns) == list(hv.TABLE_COLUMNS)


def test_a_comparison_that_charged_nothing_shows_a_dash_not_none() -> None:
    table = hv.comparison_table([list_row(stored(result("gpt-5", "failed")))], TITLES)
    assert table.iloc[0]["Cost"] == "—"


def test_a_search_hit_in_an_earlier_turn_shows_where_it_matched() -> None:
    comparison = stored(result("gpt-5", tokens_used=2))
    earlier = (Message("user", "Tell me about journaling in PostgreSQL and checkpoints."),)
    comparison = replace(
        comparison,
        request=replace(comparison.request, messages=earlier + comparison.request.messages),
    )
    row = list_row(comparison, search=True)
    table = hv.comparison_table([row], TITLES, "checkpoint")
    assert table.iloc[0]["Match"] == "…journaling in PostgreSQL and checkpoints."
    assert hv.match_snippet(row, "") == ""


@pytest.mark.parametrize(
    ("rows", "cells", "expected"),
    [([], [], None), ([1], [], 1), ([], [(0, "Prompt")], 0), ([2], [(0, "Title")], 2)],
    ids=str,
)
def test_a_row_is_picked_by_its_box_or_by_a_click_on_a_cell(
    rows: list[int], cells: list[tuple[int, str]], expected: int | None
) -> None:
    assert hv.selected_row(rows, cells) == expected


def test_heading_and_summary_describe_the_comparison() -> None:
    comparison = stored(result("gpt-5", tokens_used=2), tags=("db",))
    assert hv.heading(comparison) == "What is WAL?"
    assert hv.heading(stored(result("gpt-5"), title="Mine")) == "Mine"
    assert hv.summary_line(comparison, TITLES) == (
        "#7 · 2026-03-01 12:30 UTC · 1 model · cost **2** billing tokens · tags `db`"
    )


def test_tags_are_typed_comma_separated() -> None:
    assert hv.parse_tags(" sql, ru ,, sql,") == ["sql", "ru"]
    assert hv.parse_tags("") == []


def test_a_rerun_keeps_prompt_models_title_and_tags_but_not_the_note() -> None:
    request = stored(result("gpt-5"), title="T", tags=("a",)).request
    again = hv.rerun_request(request)
    assert again.note == ""
    assert (again.messages, again.targets, again.title, again.tags) == (
        request.messages,
        request.targets,
        "T",
        ("a",),
    )


def test_finished_and_file_names() -> None:
    assert hv.is_finished(stored(result("gpt-5"), result("gpt-5", "failed")))
    assert not hv.is_finished(stored(result("gpt-5", "running")))
    assert hv.export_file_name("csv", CREATED) == "history-20260301-1230.csv"


class TestHostedMode:
    ANA = Principal(1, "ana@example.org", "Ana", "member", frozenset({3, 5}))

    def test_the_filter_carries_the_viewer(self) -> None:
        assert hv.history_filter(tag="db", viewer=self.ANA) == HistoryFilter(
            tag="db", viewer=self.ANA
        )

    def test_an_owner_shares_with_nobody_or_one_of_their_workspaces(self) -> None:
        workspaces = [(5, "Sales", ["ana@example.org"]), (4, "Legal", []), (3, "Research", [])]
        assert hv.sharing_choices(self.ANA, workspaces) == {
            None: "Only me (private)",
            5: "Workspace Sales",
            3: "Workspace Research",
        }

    def test_shared_with_names_the_workspace_only_while_workspace_visible(self) -> None:
        comparison = stored(result("gpt-5"))
        assert hv.shared_with(comparison) is None
        assert hv.shared_with(replace(comparison, visibility="workspace", workspace_id=3)) == 3
        assert hv.shared_with(replace(comparison, visibility="private", workspace_id=3)) is None

    @pytest.mark.parametrize(
        ("page_url", "expected"),
        [
            ("http://host:8501/history", "http://host:8501/"),
            (
                "https://team.example.org/playground/history/",
                "https://team.example.org/playground/",
            ),
            (None, None),
            ("", ""),
        ],
    )
    def test_share_links_open_the_compare_page(
        self, page_url: str | None, expected: str | None
    ) -> None:
        assert hv.compare_page_url(page_url) == expected
