"""AppTest of the Evaluate and Leaderboard pages (demo provider, data in a temp dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground import services
from playground.evaluation import app as evaluation
from playground.evaluation.datasets import parse_dataset
from playground.evaluation.plan import BatchSpec
from playground.results import ModelTarget
from tests.app_harness import click, open_page, texts

pytestmark = pytest.mark.usefixtures("app_env")


def _finished_batch() -> int:
    version = evaluation.save_template("capitals", "Be terse.", "Capital of {{ country }}?")
    dataset_id = evaluation.store_dataset("c", parse_dataset("country\nFrance\nItaly\n"))
    spec = BatchSpec(
        title="capitals",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "gpt-5-nano"), ModelTarget("demo", "claude-haiku-4.5")),
    )
    job = evaluation.start_batch(spec, services.connection_from_state({}))
    assert job.wait(30).completed == 4
    return job.batch_id


def test_evaluate_page_saves_a_template_version_and_a_dataset(app_env: Path) -> None:
    at = open_page("pages/evaluate.py")
    assert not at.exception
    at.text_input(key="evaluate.template_name").set_value("qa")
    at.text_area(key="evaluate.user").set_value("Q: {{ question }}")
    at = click(at, "Save version")
    assert "Saved qa v1." in texts(at, "success")
    at.text_area(key="evaluate.pasted").set_value("question\nWhy?\nHow?\n")
    at.run()
    assert "2 rows · columns: question" in texts(at, "caption")
    at.text_input(key="evaluate.dataset_name").set_value("qs")
    at = click(at, "Save dataset")
    assert not at.exception
    assert evaluation.datasets()[0][1:] == ("qs", 2)


def test_bad_dataset_shows_the_line_number(app_env: Path) -> None:
    at = open_page("pages/evaluate.py")
    at.text_area(key="evaluate.pasted").set_value('{"a": 1}\n{"a": \n')
    at.run()
    assert any("Line 2" in e for e in texts(at, "error"))


def test_run_tab_estimates_before_starting(app_env: Path) -> None:
    _finished_batch()
    at = open_page("pages/evaluate.py")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano", "gpt-5"])
    at.run()
    assert not at.exception
    assert "4 requests · up to 6 billing tokens" in texts(at, "info")


def test_results_matrix_and_blind_vote_reveal_the_models(app_env: Path) -> None:
    _finished_batch()
    at = open_page("pages/evaluate.py")
    assert not at.exception
    assert at.dataframe  # the matrix and the pass rates
    at = click(at, "Next pair")
    labels = [b.label for b in at.button]
    assert {"A is better", "B is better", "Tie", "Both bad"} <= set(labels)
    assert not texts(at, "success")  # names stay hidden until the vote
    at = click(at, "A is better")
    (revealed,) = texts(at, "success")
    assert "A was **" in revealed and "B was **" in revealed
    assert {"gpt-5-nano", "claude-haiku-4.5"} <= set(revealed.replace("*", " ").split())


def test_leaderboard_page_empty_then_filled(app_env: Path) -> None:
    at = open_page("pages/leaderboard.py")
    assert not at.exception
    assert "No votes or batch results yet" in texts(at, "info")[0]
    _finished_batch()
    at = open_page("pages/leaderboard.py")
    assert not at.exception
    assert len(at.dataframe[0].value) == 2
