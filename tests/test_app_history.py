"""The History page through AppTest: the list, filters, paging, an opened comparison, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from playground.services import history as history_service
from playground.services import runtime
from playground.store import HistoryFilter, StoreRecorder
from playground.store.eval_models import RatingRow
from playground.store.models import Result
from tests.app_harness import click, open_blocks, open_page, run_compare, run_until_done, texts
from tests.store_fixtures import Outcome, make_request, record_run

TABLE = "history.table"


def seed(
    prompt: str,
    models: Sequence[str] = ("gpt-5", "gpt-5-nano"),
    outcomes: Sequence[Outcome] | None = None,
    **fields: object,
) -> int:
    """Record a finished demo comparison straight into the app's history database."""
    recorder = StoreRecorder(runtime.get_store().engine, runtime.get_catalog().cost_of)
    outcomes = outcomes or [Outcome(f"Answer of {m} to {prompt}") for m in models]
    comparison_id, _ = record_run(recorder, make_request(models, prompt, **fields), outcomes)
    return comparison_id


def table(at: AppTest) -> list[dict[str, Any]]:
    """The rows of the history table (empty when it is not shown)."""
    frames = [d for d in at.dataframe if d.key == TABLE]
    return frames[0].value.to_dict("records") if frames else []


def prompts(at: AppTest) -> list[str]:
    return [row["Prompt"] for row in table(at)]


def open_row(at: AppTest, row: int) -> AppTest:
    """Select a row of the table, as a click on it in the browser does."""
    at.session_state[TABLE] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def test_an_empty_history_says_how_to_fill_it(app_env: Path) -> None:
    at = open_page("pages/history.py")
    assert not at.exception
    assert any("No comparisons yet" in t for t in texts(at, "info"))
    assert table(at) == []


def test_a_demo_run_appears_as_one_row_with_its_models_and_cost(app_env: Path) -> None:
    at = run_compare(open_page(), "How do I pick a model?", ["demo:gpt-5-nano", "demo:gpt-5"])
    at.switch_page("pages/history.py").run()

    assert not at.exception
    (row,) = table(at)
    assert row["Models"] == "✓ GPT-5 Nano · ✓ GPT-5"
    assert row["Cost"] == "3"
    assert row["Prompt"] == "How do I pick a model?"
    assert "Page 1 of 1 · 1 entry" in texts(at, "caption")


def test_newest_first_and_every_filter_narrows_the_list(app_env: Path) -> None:
    seed("Explain SQLite journaling", tags=("db",))
    seed(
        "Write a haiku about autumn",
        ("gpt-5", "deepseek-v3"),
        [Outcome("Leaves fall."), Outcome("", status="failed", error_code="model_unavailable")],
    )
    seed("Summarise this contract", ("claude-haiku-4.5",))
    at = open_page("pages/history.py")
    everything = [
        "Summarise this contract",
        "Write a haiku about autumn",
        "Explain SQLite journaling",
    ]
    assert prompts(at) == everything
    assert table(at)[1]["Models"] == "✓ GPT-5 · ✗ DeepSeek V3 Chat"

    at.text_input(key="history.search").set_value("autumn").run()
    assert prompts(at) == ["Write a haiku about autumn"]
    at.text_input(key="history.search").set_value("").run()
    at.multiselect(key="history.statuses").set_value(["failed"]).run()
    assert prompts(at) == ["Write a haiku about autumn"]
    at.multiselect(key="history.statuses").set_value([]).run()
    at.multiselect(key="history.models").set_value(["claude-haiku-4.5"]).run()
    assert prompts(at) == ["Summarise this contract"]
    at.multiselect(key="history.models").set_value([]).run()
    at.text_input(key="history.tag").set_value("db").run()
    assert prompts(at) == ["Explain SQLite journaling"]
    at.text_input(key="history.tag").set_value("").run()
    at.date_input(key="history.dates").set_value((date(2020, 1, 1), date(2020, 1, 2))).run()
    assert prompts(at) == []
    assert "Nothing matches these filters." in texts(at, "info")
    at.date_input(key="history.dates").set_value(()).run()
    assert prompts(at) == everything
    assert not at.exception


def test_a_reversed_date_range_is_explained_not_a_stack_trace(app_env: Path) -> None:
    at = open_page("pages/history.py")
    at.date_input(key="history.dates").set_value((date(2026, 3, 5), date(2026, 3, 1))).run()
    assert not at.exception
    assert texts(at, "error") == ["The start date 2026-03-05 is after the end date 2026-03-01."]


def test_pages_of_twenty_and_a_new_filter_starts_at_page_one(app_env: Path) -> None:
    for i in range(23):
        seed(f"Question number {i}", ("gpt-5-nano",))
    at = open_page("pages/history.py")
    assert len(table(at)) == 20
    assert prompts(at)[0] == "Question number 22"
    assert "Page 1 of 2 · 23 entries" in texts(at, "caption")

    click(at, "Next")
    assert prompts(at) == [f"Question number {i}" for i in (2, 1, 0)]
    assert "Page 2 of 2 · 23 entries" in texts(at, "caption")

    at.text_input(key="history.search").set_value("number").run()
    assert "Page 1 of 2 · 23 entries" in texts(at, "caption")
    beyond = history_service.history_page(HistoryFilter(), 7)
    assert (beyond.page, beyond.pages, len(beyond.entries)) == (1, 2, 3)


def test_an_opened_comparison_is_drawn_read_only_like_on_compare(app_env: Path) -> None:
    seed(
        "Write a haiku about autumn",
        ("gpt-5", "deepseek-v3"),
        [
            Outcome("Leaves fall, quiet pond."),
            Outcome("", status="failed", error_code="model_unavailable", error_message="Off."),
        ],
        system_prompt="Be poetic.",
    )
    at = open_row(open_page("pages/history.py"), 0)

    assert not at.exception
    assert texts(at, "subheader") == ["Write a haiku about autumn"]
    markdown = texts(at, "markdown")
    assert [t.split("  \n")[0] for t in markdown if "-badge[" in t] == [
        "**GPT-5** :green-badge[Done]",
        "**DeepSeek V3 Chat** :red-badge[Failed]",
    ]
    assert "Leaves fall, quiet pond." in markdown
    assert any("Off. [model_unavailable]" in t for t in texts(at, "error"))
    assert "Be poetic." in texts(at, "text")
    labels = {b.label for b in at.button}
    assert {"Re-run", "Load into Compare", "Delete", "Back to the list"} <= labels
    assert not labels & {"Stop", "Continue chat"}

    click(at, "Back to the list")
    assert prompts(at) == ["Write a haiku about autumn"]


def test_title_tags_and_note_are_saved(app_env: Path) -> None:
    comparison_id = seed("Explain WAL")
    at = open_row(open_page("pages/history.py"), 0)
    at.text_input(key=f"history.title.{comparison_id}").set_value("WAL explained")
    at.text_input(key=f"history.tags.{comparison_id}").set_value("db, sqlite, db")
    at.text_area(key=f"history.note.{comparison_id}").set_value("GPT-5 was clearer.")
    click(at, "Save")

    assert not at.exception
    stored = history_service.stored_comparison(comparison_id)
    assert stored is not None
    request = stored.request
    assert (request.title, request.tags, request.note) == (
        "WAL explained",
        ("db", "sqlite"),
        "GPT-5 was clearer.",
    )
    assert texts(at, "subheader") == ["WAL explained"]
    assert "Note: GPT-5 was clearer." in texts(at, "caption")
    click(at, "Back to the list")
    at.text_input(key="history.tag").set_value("sqlite").run()
    assert [row["Title"] for row in table(at)] == ["WAL explained"]


def test_delete_asks_first_then_hides_the_comparison(app_env: Path) -> None:
    kept = seed("Keep me")
    seed("Delete me")
    at = open_row(open_page("pages/history.py"), 0)
    click(at, "Delete")
    assert any(t.startswith("Delete this comparison?") for t in texts(at, "warning"))
    click(at, "Cancel")
    assert not texts(at, "warning")
    assert texts(at, "subheader") == ["Delete me"]

    click(at, "Delete")
    click(at, "Yes, delete")

    assert not at.exception
    assert prompts(at) == ["Keep me"]
    found = history_service.history_page(HistoryFilter(), 0)
    assert [c.id for c in found.entries] == [kept]
    assert found.total == 1


def test_export_holds_the_results_of_the_current_filter(
    app_env: Path, downloads: dict[str, Callable[[], str]]
) -> None:
    seed("Explain SQLite journaling", ("gpt-5", "gpt-5-nano"), tags=("db",))
    seed("Write a haiku about autumn", ("gpt-5",))
    at = open_page("pages/history.py")
    at.text_input(key="history.tag").set_value("db").run()

    assert [b.label for b in at.download_button] == ["Export CSV", "Export JSON"]
    rows = list(csv.DictReader(io.StringIO(downloads["Export CSV"]())))
    assert [(r["model"], r["tags"]) for r in rows] == [
        ("gpt-5", '["db"]'),
        ("gpt-5-nano", '["db"]'),
    ]
    assert rows[0]["content"] == "Answer of gpt-5 to Explain SQLite journaling"
    exported = json.loads(downloads["Export JSON"]())
    assert [(r["model"], r["status"]) for r in exported] == [
        ("gpt-5", "completed"),
        ("gpt-5-nano", "completed"),
    ]


def test_rerun_records_a_new_comparison_and_shows_it_on_compare(app_env: Path) -> None:
    first = seed("Explain WAL", ("gpt-5-nano", "gpt-5"), title="WAL", note="old note")
    at = open_row(open_page("pages/history.py"), 0)

    click(at, "Re-run")

    assert not at.exception
    assert at.title[0].value == "Compare models"
    new_ref = at.query_params["comparison"][0]
    assert new_ref != str(first)
    assert at.text_area(key="compare.prompt").value == "Explain WAL"
    # AppTest reruns the page it last switched to itself; the script switched to Compare.
    run_until_done(at.switch_page("pages/compare.py"))
    assert sum(":green-badge[Done]" in t for t in texts(at, "markdown")) == 2
    again = history_service.stored_comparison(int(new_ref))
    assert again is not None
    assert (again.request.title, again.request.note) == ("WAL", "")
    assert [r.status for r in again.results] == ["completed", "completed"]
    assert history_service.history_page(HistoryFilter(), 0).total == 2


def test_load_into_compare_fills_the_editor_for_changes(app_env: Path) -> None:
    seed("Explain WAL", ("gpt-5-nano", "gpt-5"), system_prompt="Be brief.")
    at = open_row(open_page("pages/history.py"), 0)

    click(at, "Load into Compare")

    assert not at.exception
    assert at.title[0].value == "Compare models"
    assert at.text_area(key="compare.prompt").value == "Explain WAL"
    assert at.text_area(key="compare.system").value == "Be brief."
    assert at.multiselect(key="compare.models").value == ["demo:gpt-5-nano", "demo:gpt-5"]
    assert history_service.history_page(HistoryFilter(), 0).total == 1


def test_any_stored_answer_can_be_rated_with_who_rated(app_env: Path) -> None:
    seed("Rate me", ("gpt-5", "gpt-5-nano"))
    at = open_blocks(open_row(open_page("pages/history.py"), 0), r"^history\.rate\..*\.open$")
    raters = [t for t in at.text_input if str(t.key).endswith(".rater")]
    notes = [t for t in at.text_area if ".rate." in str(t.key)]
    assert len(raters) == len(notes) == 2
    raters[0].set_value("dana")
    click(at, "Good", index=0)
    assert "Saved (thumbs) as dana." in texts(at, "success")
    notes = [t for t in at.text_area if ".rate." in str(t.key)]
    notes[1].set_value("Clear and short.")
    at.run()
    click(at, "Save note", index=1)

    assert not at.exception
    with runtime.get_store().session() as session, session.begin():
        rows = session.execute(
            sa.select(
                Result.model, RatingRow.rater, RatingRow.kind, RatingRow.value, RatingRow.note
            )
            .join(Result, Result.id == RatingRow.result_id)
            .order_by(RatingRow.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("gpt-5", "dana", "thumbs", 1.0, None),
        ("gpt-5-nano", "dana", "note", None, "Clear and short."),
    ]
