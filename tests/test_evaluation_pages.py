"""AppTest of the Evaluate and Leaderboard pages (demo provider, data in a temp dir)."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from playground.datasets import parse_dataset
from playground.errors import InvalidRequestError
from playground.evaluation import batch as batch_module
from playground.evaluation.assertions import parse_assertion
from playground.evaluation.manager import BatchManager
from playground.evaluation.plan import BatchSpec
from playground.results import ModelTarget
from playground.safe_text import escape_markdown, inert_images
from playground.services import evaluate as evaluation
from playground.services import runtime
from playground.store.eval_ratings import stored_votes
from playground.store.eval_repository import batch_cells, set_batch_status, update_cells
from playground.store.models import Result
from tests.app_harness import click, open_page, open_tab, texts

pytestmark = pytest.mark.usefixtures("app_env")
TABS = "evaluate.tab"


def _finished_batch(
    models: tuple[str, ...] = ("gpt-5-nano", "claude-haiku-4.5"), template: str = "capitals"
) -> int:
    version = evaluation.save_template(template, "Be terse.", "Capital of {{ country }}?")
    dataset_id = evaluation.store_dataset("c", parse_dataset("country\nFrance\nItaly\n"))
    spec = BatchSpec(
        title="capitals",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=tuple(ModelTarget("demo", m) for m in models),
    )
    job = evaluation.start_batch(spec, runtime.connection_from())
    assert job.wait(30).completed == 2 * len(models)
    return job.batch_id


@contextmanager
def texts_read() -> Iterator[list[list[Any]]]:
    """The parameters of every statement inside the block that reads answers' text."""
    read: list[list[Any]] = []

    def spy(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "results.content" in statement:
            read.append(list(parameters.values() if isinstance(parameters, dict) else parameters))

    engine = runtime.get_store().engine
    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        yield read
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)


def _evaluate_with_a_model_picked() -> AppTest:
    """Compare with gpt-5 picked, then the Evaluate page: what loading must not undo."""
    at = open_page()
    at.multiselect(key="compare.models").set_value(["demo:gpt-5"]).run()
    return at.switch_page("pages/evaluate.py").run()


def test_load_into_compare_fills_a_version_from_a_dataset_row(app_env: Path) -> None:
    version = evaluation.save_template(
        "capitals", "Answer in {{ lang }}.", "Capital of {{ country }}?"
    )
    rows = parse_dataset("country,lang\nFrance,French\nItaly,Italian\n")
    dataset_id = evaluation.store_dataset("c", rows)
    at = _evaluate_with_a_model_picked()
    at = at.button(key=f"evaluate.load.{version.id}").click().run()
    assert at.title[0].value == "Evaluate"  # variables to fill first
    at.number_input(key=f"evaluate.loader.{version.id}.row.{dataset_id}").set_value(2).run()
    assert at.dataframe[0].value.to_dict("records") == [{"country": "Italy", "lang": "Italian"}]

    at = click(at, "Load filled-in prompt")

    assert not at.exception
    assert at.title[0].value == "Compare models"
    assert at.text_area(key="compare.system").value == "Answer in Italian."
    assert at.text_area(key="compare.prompt").value == "Capital of Italy?"
    assert at.multiselect(key="compare.models").value == ["demo:gpt-5"]


def test_load_into_compare_names_a_missing_value_and_can_load_the_raw_template(
    app_env: Path,
) -> None:
    version = evaluation.save_template(
        "capitals", "Answer in {{ lang }}.", "Capital of {{ country }}?"
    )
    at = open_page("pages/evaluate.py")
    at = at.button(key=f"evaluate.load.{version.id}").click().run()
    at.radio(key=f"evaluate.loader.{version.id}.source").set_value("typed values").run()
    at.text_input(key=f"evaluate.loader.{version.id}.value.country").set_value("Peru").run()

    at = click(at, "Load filled-in prompt")
    assert at.title[0].value == "Evaluate"
    assert texts(at, "error") == [
        "Missing template variables: lang. Pick a dataset row that has them, "
        "type a value for each, or load the raw template."
    ]

    at.text_input(key=f"evaluate.loader.{version.id}.value.lang").set_value("Spanish").run()
    at = click(at, "Load filled-in prompt")
    assert at.text_area(key="compare.prompt").value == "Capital of Peru?"
    assert at.text_area(key="compare.system").value == "Answer in Spanish."

    at = at.switch_page("pages/evaluate.py").run()
    at = click(at, "Load raw template")
    assert not at.exception
    assert at.text_area(key="compare.prompt").value == "Capital of {{ country }}?"
    assert at.text_area(key="compare.system").value == "Answer in {{ lang }}."


def test_load_into_compare_loads_a_version_without_variables_directly(app_env: Path) -> None:
    version = evaluation.save_template("plain", "Be terse.", "Name three {{ 'primes' }}.")
    at = _evaluate_with_a_model_picked()
    at = at.button(key=f"evaluate.load.{version.id}").click().run()
    assert not at.exception
    assert at.title[0].value == "Compare models"
    assert at.text_area(key="compare.prompt").value == "Name three primes."
    assert at.multiselect(key="compare.models").value == ["demo:gpt-5"]


def test_evaluate_page_saves_a_template_version_and_a_dataset(app_env: Path) -> None:
    at = open_page("pages/evaluate.py")
    assert not at.exception
    at.text_input(key="evaluate.template_name").set_value("qa")
    at.text_area(key="evaluate.user").set_value("Q: {{ question }}")
    at = click(at, "Save version")
    assert "Saved qa v1." in texts(at, "success")
    at = open_tab(at, TABS, "Dataset")
    at.text_area(key="evaluate.pasted").set_value("question\nWhy?\nHow?\n")
    at.run()
    assert "2 rows · columns: question" in texts(at, "caption")
    at.text_input(key="evaluate.dataset_name").set_value("qs")
    at = click(at, "Save dataset")
    assert not at.exception
    assert evaluation.datasets()[0][1:] == ("qs", 2)


def test_bad_dataset_shows_the_line_number(app_env: Path) -> None:
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Dataset")
    at.text_area(key="evaluate.pasted").set_value('{"a": 1}\n{"a": \n')
    at.run()
    assert any("Line 2" in e for e in texts(at, "error"))


def test_run_tab_estimates_before_starting(app_env: Path) -> None:
    _finished_batch()
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano", "gpt-5"])
    at.run()
    assert not at.exception
    assert "4 requests · up to 6 billing tokens" in texts(at, "info")


def test_results_matrix_and_blind_vote_reveal_the_models(app_env: Path) -> None:
    _finished_batch()
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Results")
    assert not at.exception
    assert at.dataframe  # the matrix and the pass rates
    at = click(open_tab(at, TABS, "Blind vote"), "Next round")
    labels = [b.label for b in at.button]
    assert {"A is better", "B is better", "Tie", "Both bad"} <= set(labels)
    assert not texts(at, "success")  # names stay hidden until the vote
    at = click(at, "A is better")
    (revealed,) = texts(at, "success")
    assert "A was **" in revealed and "B was **" in revealed
    assert "**GPT-5 Nano**" in revealed and "**Claude Haiku 4.5**" in revealed  # as on Compare


def test_leaderboard_page_empty_then_filled(app_env: Path) -> None:
    at = open_page("pages/leaderboard.py")
    assert not at.exception
    assert "No votes or batch results yet" in texts(at, "info")[0]
    _finished_batch()
    at = open_page("pages/leaderboard.py")
    assert not at.exception
    assert len(at.dataframe[0].value) == 2


def test_a_prompt_version_named_in_markdown_is_shown_as_text_on_the_leaderboard(
    app_env: Path,
) -> None:
    name = "![x](http://127.0.0.1:9/leak.png)"
    blind = evaluation.next_blind_round(
        _finished_batch(template=name), "me", random.Random(0), size=2
    )
    assert blind is not None
    evaluation.vote(blind, "tie", "me")
    at = open_page("pages/leaderboard.py")
    at.radio(key="leaderboard.grouping").set_value("by prompt version").run()
    assert not at.exception
    (undecided,) = texts(at, "caption")
    assert undecided.startswith("Not enough votes yet to tell ")
    assert escape_markdown(f"{name} v1") in undecided and name not in undecided


def test_llm_judge_assertion_offers_a_judge_and_prices_it_into_the_estimate(app_env: Path) -> None:
    _finished_batch()
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano", "gpt-5"])
    at.run()
    assert not any(s.key == "evaluate.judge" for s in at.selectbox)
    at.text_area(key="evaluate.assertions").set_value("- {type: llm_judge, value: Be short.}")
    at.run()
    at.selectbox(key="evaluate.judge").set_value("gpt-5")
    at.run()
    assert not at.exception
    # 4 answers (1+1+2+2 tokens) and 4 judge calls at gpt-5's 2 tokens each.
    assert (
        "8 requests · up to 14 billing tokens (judge gpt-5: 4 requests, up to 8 tokens, "
        "counted against the budget cap)" in texts(at, "info")
    )
    at = click(at, "Start batch")
    assert not at.exception
    progress = evaluation.running_job(at.session_state["evaluate.batch_id"]).wait(30)  # type: ignore[union-attr]
    assert (progress.status, progress.completed, progress.judge_tokens) == ("completed", 4, 8)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ("type: contains", "Assertions are a list, one per line"),
        ("42", "Assertions are a list, one per line"),
        ("- contains", "Assertion 1: An assertion is a mapping like {type: contains"),
        ("- {type: contains, value: x}\n- [a]", "Assertion 2: An assertion is a mapping"),
        ("- {type: contains, column: [a]}", "'column' names a column, not ['a']"),
        ("- {type: contains", "The assertions are not valid YAML"),
        ("- {type: json_schema, value: {type: strnig}}", "not a valid JSON Schema (at $.type)"),
    ],
)
def test_a_wrong_assertions_box_says_what_is_wrong(app_env: Path, box: str, message: str) -> None:
    _finished_batch()
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano"])
    at.text_area(key="evaluate.assertions").set_value(box)
    at.run()

    assert not at.exception
    assert any(message in e for e in texts(at, "error")), texts(at, "error")
    assert "Start batch" not in [b.label for b in at.button]


def test_a_bad_schema_in_a_dataset_row_is_refused_before_the_batch_exists(app_env: Path) -> None:
    version = evaluation.save_template("capitals", "", "Capital of {{ country }}?")
    dataset = parse_dataset(
        'country,schema\nFrance,"{""type"": ""string""}"\nItaly,"{""type"": ""strnig""}"\n'
    )
    dataset_id = evaluation.store_dataset("c", dataset)
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano"])
    at.text_area(key="evaluate.assertions").set_value("- {type: json_schema, column: schema}")
    at.run()

    assert not at.exception
    (error,) = texts(at, "error")
    assert error.startswith("Dataset row 2: Assertion json_schema $schema: not a valid JSON Schema")
    assert "Start batch" not in [b.label for b in at.button]
    spec = BatchSpec(
        title="capitals",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "gpt-5-nano"),),
        assertions=(parse_assertion({"type": "json_schema", "column": "schema"}),),
    )
    with pytest.raises(InvalidRequestError, match="Dataset row 2"):
        evaluation.start_batch(spec, runtime.connection_from())
    assert evaluation.batches() == []


def test_batch_of_a_dead_process_shows_interrupted_and_resumes(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = _finished_batch()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with runtime.get_store().session() as session, session.begin():
        set_batch_status(
            session, batch_id, "running", writer=f"{socket.gethostname()}:{dead.pid}:x"
        )
        first, *_ = batch_cells(session, batch_id)
        update_cells(session, [first.id], status="running", result_id=None)
    monkeypatch.setattr(evaluation, "MANAGER", BatchManager())  # a restart: no job known
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Results")
    assert not at.exception
    assert any(w.startswith("Interrupted — ") for w in texts(at, "warning"))
    at = click(at, "Resume")
    progress = evaluation.running_job(batch_id).wait(30)  # type: ignore[union-attr]
    assert (progress.status, progress.completed) == ("completed", 4)


def test_blind_round_of_three_stores_best_over_each_other(app_env: Path) -> None:
    _finished_batch(("gpt-5-nano", "claude-haiku-4.5", "gpt-5"))
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Blind vote")
    at.radio(key="evaluate.round_size").set_value(3)
    at = click(at, "Next round")
    labels = [b.label for b in at.button]
    assert {"A is best", "B is best", "C is best", "Tie", "All bad"} <= set(labels)
    assert not texts(at, "success")
    blind = at.session_state["evaluate.round"]
    at = click(at, "B is best")
    (revealed,) = texts(at, "success")
    name_of = runtime.get_catalog().name_of
    assert all(f"was **{name_of(a.model)}**" in revealed for a in blind.answers)
    with runtime.get_store().session() as session, session.begin():
        votes = stored_votes(session)
    best, *others = (blind.answers[1], blind.answers[0], blind.answers[2])
    assert sorted((v.model_a, v.model_b, v.outcome) for v in votes) == sorted(
        (best.model, o.model, "a") for o in others
    )
    at = open_page("pages/leaderboard.py")
    at.radio(key="leaderboard.grouping").set_value("by prompt version")
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["model · prompt version"]) == {
        f"{name_of(m)} · capitals v1" for m in ("gpt-5-nano", "claude-haiku-4.5", "gpt-5")
    }
    best_line = f"{name_of(best.model)} · capitals v1"
    assert table.set_index("model · prompt version").loc[best_line, "votes"] == 2


def test_only_the_open_tab_is_drawn_and_hidden_tabs_keep_their_values(app_env: Path) -> None:
    at = open_page("pages/evaluate.py")
    assert not [t for t in at.text_area if t.key == "evaluate.pasted"]  # Dataset tab hidden
    at.text_input(key="evaluate.template_name").set_value("qa").run()
    at = open_tab(at, TABS, "Dataset")
    assert not [t for t in at.text_input if t.key == "evaluate.template_name"]
    at.text_area(key="evaluate.pasted").set_value("q\nWhy?\n").run()
    at = open_tab(at, TABS, "Templates")
    assert at.text_input(key="evaluate.template_name").value == "qa"
    at = open_tab(at, TABS, "Dataset")
    assert at.text_area(key="evaluate.pasted").value == "q\nWhy?\n"


def test_results_and_blind_vote_show_the_batch_just_started(app_env: Path) -> None:
    older = _finished_batch()
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Results")
    assert at.selectbox(key="evaluate.results_batch").value == older
    at = open_tab(at, TABS, "Blind vote")
    assert at.selectbox(key="evaluate.vote_batch").value == older
    at = open_tab(at, TABS, "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano"]).run()

    at = click(at, "Start batch")

    started = at.session_state["evaluate.batch_id"]
    assert started != older
    evaluation.running_job(started).wait(30)  # type: ignore[union-attr]
    at = open_tab(at, TABS, "Results")
    assert at.selectbox(key="evaluate.results_batch").value == started
    at = open_tab(at, TABS, "Blind vote")
    assert at.selectbox(key="evaluate.vote_batch").value == started


def test_results_tab_reads_the_text_of_the_picked_answer_only(app_env: Path) -> None:
    batch_id = _finished_batch()
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Results")
    cells = evaluation.cells(batch_id)
    last = cells[-1]
    assert last.result_id is not None and last.content

    with texts_read() as read:
        at.selectbox(key="evaluate.rate_cell").set_value(last.result_id).run()

    assert not at.exception
    assert read == [[last.result_id]]
    assert last.content in texts(at, "markdown")
    exported = json.loads(evaluation.export_batch(batch_id, "json"))
    assert [r["content"] for r in exported] == [c.content for c in cells]


def test_a_blind_round_reads_the_text_of_its_answers_only(app_env: Path) -> None:
    batch_id = _finished_batch(("gpt-5-nano", "claude-haiku-4.5", "gpt-5"))
    by_result = {c.result_id: c for c in evaluation.cells(batch_id)}

    with texts_read() as read:
        blind = evaluation.next_blind_round(batch_id, "me", random.Random(3), size=2)

    assert blind is not None
    ids = [a.result_id for a in blind.answers]
    assert [sorted(r) for r in read] == [sorted(ids)]
    assert [a.content for a in blind.answers] == [by_result[i].content for i in ids]
    assert len({by_result[i].key.row_index for i in ids}) == 1  # one input
    assert len({a.model for a in blind.answers}) == 2


def test_another_batch_picked_after_an_answer_shows_its_own_first_answer(app_env: Path) -> None:
    first = _finished_batch()
    second = _finished_batch(("gpt-5",))
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Results")
    assert at.selectbox(key="evaluate.results_batch").value == second
    picked = evaluation.cells(second)[-1].result_id
    at.selectbox(key="evaluate.rate_cell").set_value(picked).run()

    at.selectbox(key="evaluate.results_batch").set_value(first).run()
    at = open_tab(open_tab(at, TABS, "Blind vote"), TABS, "Results")

    assert not at.exception
    assert at.selectbox(key="evaluate.results_batch").value == first
    assert at.selectbox(key="evaluate.rate_cell").value == evaluation.cells(first)[0].result_id


def test_images_in_answers_and_judge_reasons_are_shown_as_text(app_env: Path) -> None:
    batch_id = _finished_batch()
    image = "![x](http://127.0.0.1:9/leak.png?q=secret)"
    # What a prompt-injected model could write, and a judge quoting it.
    answer = f"See {image} and `vec![1, 2]`."
    reason = {"label": "llm_judge", "passed": False, "message": f"Judge: FAIL {image}"}
    cells = evaluation.cells(batch_id)
    with runtime.get_store().session() as session, session.begin():
        session.execute(sa.update(Result).values(content=answer))
        update_cells(session, [c.id for c in cells], passed=False, assertions_json=[reason])

    at = open_tab(open_page("pages/evaluate.py"), TABS, "Results")
    assert not at.exception
    assert inert_images(answer) in texts(at, "markdown")
    assert f"✗ {escape_markdown('llm_judge: ' + reason['message'])}" in texts(at, "caption")
    at = click(open_tab(at, TABS, "Blind vote"), "Next round")
    assert not at.exception
    assert texts(at, "markdown").count(inert_images(answer)) == 2
    assert answer not in texts(at, "markdown")


def test_a_batch_stopped_by_an_error_says_why_in_red(monkeypatch: pytest.MonkeyPatch) -> None:
    _finished_batch()  # the template and dataset to run again

    def broken(*_args: Any) -> None:
        raise RuntimeError("quota bug")

    monkeypatch.setattr(batch_module, "quota_reaction", broken)
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano"])
    at = click(at.run(), "Start batch")
    progress = evaluation.running_job(at.session_state["evaluate.batch_id"]).wait(30)  # type: ignore[union-attr]
    assert progress.status == "interrupted"

    at.run()
    assert not at.exception
    stopped = [e for e in texts(at, "error") if e.startswith("Stopped by an error:")]
    assert stopped == [progress.message]
