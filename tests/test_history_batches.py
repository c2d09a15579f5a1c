"""History stays readable with batches: a batch's answers are one row that opens the batch's
results on Evaluate, batch runs can be hidden, and a click on any cell opens a row."""

from __future__ import annotations

from pathlib import Path

from tests.app_harness import open_page
from tests.test_app_history import TABLE, seed, table
from tests.test_evaluate_first_day import run_the_example


def test_a_batch_is_one_row_that_opens_its_results_on_evaluate(app_env: Path) -> None:
    at, batch_id = run_the_example()
    seed("A comparison of my own")

    at = at.switch_page("pages/history.py").run()
    rows = table(at)
    assert [r["Tags"] for r in rows].count("batch") == 1
    (batch,) = [r for r in rows if r["Tags"] == "batch"]
    assert batch["Title"].startswith(f"Batch #{batch_id} ")
    assert "rows ×" in batch["Prompt"] and "Open to see its results on Evaluate" in batch["Prompt"]
    assert len(rows) == 2

    at.session_state[TABLE] = {
        "selection": {"rows": [], "columns": [], "cells": [[rows.index(batch), "Title"]]}
    }
    at = at.run()
    assert not at.exception
    assert at.session_state["evaluate.tab"] == "Results"
    assert at.session_state["evaluate.results_batch"] == batch_id
    assert [t.value for t in at.title] == ["Evaluate"]
    assert at.selectbox(key="evaluate.results_batch").value == batch_id


def test_batch_runs_can_be_hidden(app_env: Path) -> None:
    at, _ = run_the_example()
    seed("A comparison of my own")
    at = at.switch_page("pages/history.py").run()
    at.toggle(key="history.batches").set_value(False).run()
    assert [r["Prompt"] for r in table(at)] == ["A comparison of my own"]


def test_a_click_on_a_cell_opens_its_comparison(app_env: Path) -> None:
    seed("Which journal mode?")
    at = open_page("pages/history.py")
    at.session_state[TABLE] = {"selection": {"rows": [], "columns": [], "cells": [[0, "Models"]]}}
    at = at.run()
    assert any(b.label == "Back to the list" for b in at.button)
