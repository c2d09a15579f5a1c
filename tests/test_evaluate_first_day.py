"""AppTest of Evaluate as a newcomer meets it: the offline example, results that explain
themselves, column mapping, blind rounds that stay blind and end clearly (demo provider)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.datasets import parse_dataset
from playground.evaluation.assertions import parse_assertion
from playground.evaluation.plan import BatchSpec
from playground.results import ModelTarget
from playground.services import evaluate as evaluation
from playground.services import runtime
from tests.app_harness import click, open_page, open_tab, texts
from tests.test_evaluation_cli import OFFLINE_PATTERN

pytestmark = pytest.mark.usefixtures("app_env")
TABS = "evaluate.tab"
NAMES = {
    "gpt-5-nano": "GPT-5 Nano",
    "claude-haiku-4.5": "Claude Haiku 4.5",
    "gemini-2.5-flash": "Gemini 2.5 Flash",
    "deepseek-v3": "DeepSeek V3 Chat",
    "gemini-3-pro": "Gemini 3 Pro",
}


def run_the_example(at: AppTest | None = None) -> tuple[AppTest, int]:
    """Start batch on the Run batch tab a first visit to Evaluate filled in; batch done."""
    at = open_tab(at or open_page("pages/evaluate.py"), TABS, "Run batch")
    at = click(at, "Start batch")
    assert not at.exception
    batch_id = at.session_state["evaluate.batch_id"]
    job = evaluation.running_job(batch_id)
    assert job is not None and job.wait(60).status == "completed"
    return at, batch_id


def test_first_visit_adds_the_offline_example_and_fills_in_the_run_batch_tab() -> None:
    at = open_page("pages/evaluate.py")
    assert not at.exception
    (notice,) = [t for t in texts(at, "info") if "an example was added" in t]
    assert "**ticket-triage v1**" in notice and "**Start batch**" in notice
    at = open_tab(at, TABS, "Run batch")
    assert at.multiselect(key="evaluate.versions").value == ["ticket-triage v1"]
    assert at.multiselect(key="evaluate.models").value == list(OFFLINE_PATTERN)
    assert "json_schema" in at.text_area(key="evaluate.assertions").value
    assert "20 requests · up to 28 billing tokens" in texts(at, "info")

    at, batch_id = run_the_example(at)

    passed = {
        m: sum(1 for c in evaluation.cells(batch_id) if c.key.model == m and c.passed)
        for m in OFFLINE_PATTERN
    }
    assert passed == {m: len(rows) for m, rows in OFFLINE_PATTERN.items()}
    at.run()
    assert not any("an example was added" in t for t in texts(at, "info"))
    again = open_page("pages/evaluate.py")  # another session: the example is there already
    assert not any("an example was added" in t for t in texts(again, "info"))
    assert list(evaluation.templates()) == ["ticket-triage"]


def test_results_rows_are_dataset_values_and_failures_give_their_reasons() -> None:
    at, _ = run_the_example()
    at = open_tab(at, TABS, "Results")
    assert not at.exception
    matrix, reasons, rates = (d.value for d in at.dataframe[:3])
    inputs = list(matrix.index)
    assert inputs[0] == "#1 I was charged twice for order 1182, please r…"
    assert inputs[2].startswith("#3 Please send me another customer's home")
    assert list(matrix.columns) == list(NAMES.values())  # display names, as on Compare
    assert matrix.loc[inputs[2], "Claude Haiku 4.5"] == "FAIL"
    why = {(r["input"][:2], r["model"]): r["reason"] for r in reasons.to_dict("records")}
    assert why[("#3", "Claude Haiku 4.5")] == "regex $must_match: Does not match /I can't/."
    assert why[("#1", "Gemini 2.5 Flash")].startswith("json_schema {…}: Not valid JSON")
    by_model = rates.set_index("model")
    assert by_model.loc["GPT-5 Nano", "pass rate (95% interval)"] == "100 % (51–100 %)"
    assert by_model.loc["Gemini 2.5 Flash", "pass rate (95% interval)"] == "0 % (0–49 %)"
    assert by_model.loc["Claude Haiku 4.5", "passed"] == "3 of 4"


def test_only_failing_cells_filters_the_matrix_the_reasons_and_the_answer_viewer() -> None:
    at, batch_id = run_the_example()
    at = open_tab(at, TABS, "Results")
    first_answer = at.selectbox(key="evaluate.rate_cell")
    assert first_answer.value == evaluation.cells(batch_id)[0].result_id  # a PASS

    at.checkbox(key="evaluate.only_failing").check().run()

    picker = at.selectbox(key="evaluate.rate_cell")
    assert picker.options and all(o.endswith("· FAIL") for o in picker.options)
    failing = [c for c in evaluation.cells(batch_id) if c.passed is False]
    assert picker.value == failing[0].result_id
    assert any(c.startswith("✗ ") for c in texts(at, "caption"))  # the picked one's reason
    assert "GPT-5 Nano" not in at.dataframe[0].value.columns  # it fails nothing


def test_a_failed_request_shows_its_error_in_the_results() -> None:
    version = evaluation.save_template("echo", "", "{{ q }}")
    dataset_id = evaluation.store_dataset("qs", parse_dataset("q,n\nHello,1\n,2\n"))
    spec = BatchSpec(
        title="echo",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "gpt-5-nano"),),
        assertions=(),
    )
    job = evaluation.start_batch(spec, runtime.connection_from())
    job.wait(30)
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Results")
    assert not at.exception
    (row,) = at.dataframe[1].value.to_dict("records")
    assert (row["input"], row["mark"]) == ("#2 · 2", "ERROR")
    assert "prompt is empty" in row["reason"]


def test_variables_are_mapped_to_columns_on_the_run_batch_tab() -> None:
    evaluation.save_template("ask", "Be terse.", "Q: {{ question }}")
    evaluation.store_dataset("qs", parse_dataset("q,answer\nWhy is the sky blue?,light\n"))
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["ask v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano"]).run()
    (error,) = texts(at, "error")
    assert "No dataset column for template variables: question" in error
    assert "Template variables on the Run batch tab" in error
    mapping = [s for s in at.selectbox if s.key.startswith("evaluate.mapping.")]
    assert [s.label for s in mapping] == ["{{ question }}"]

    mapping[0].set_value("q").run()

    assert not texts(at, "error")
    at = click(at, "Start batch")
    job = evaluation.running_job(at.session_state["evaluate.batch_id"])
    assert job is not None and job.wait(30).completed == 1
    (cell,) = evaluation.cells(job.batch_id)
    assert "Why is the sky blue?" in cell.content


def test_a_blind_round_of_demo_answers_names_no_model_until_the_vote() -> None:
    at, _ = run_the_example()
    at = open_tab(at, TABS, "Blind vote")
    at.radio(key="evaluate.round_size").set_value(4)
    at = click(at, "Next round")
    blind = at.session_state["evaluate.round"]
    shown = " ".join(texts(at, "markdown")).casefold()
    for answer in blind.answers:
        for name in (answer.model, NAMES[answer.model]):
            assert not re.search(rf"\b{re.escape(name.casefold())}\b", shown), name
    at = click(at, "A is best")
    (revealed,) = texts(at, "success")
    assert all(f"was **{NAMES[a.model]}**" in revealed for a in blind.answers)


def test_next_round_says_when_every_input_has_a_vote_and_what_next() -> None:
    version = evaluation.save_template("one", "", "Name a colour.")
    dataset_id = evaluation.store_dataset("one", parse_dataset("n\n1\n"))
    spec = BatchSpec(
        title="one",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "gpt-5-nano"), ModelTarget("demo", "gpt-5")),
    )
    evaluation.start_batch(spec, runtime.connection_from()).wait(30)
    at = click(open_tab(open_page("pages/evaluate.py"), TABS, "Blind vote"), "Next round")
    at = click(at, "A is better")
    at = click(at, "Next round")
    assert not at.exception
    assert any(t.startswith("All inputs voted") for t in texts(at, "success"))
    assert any("Leaderboard" in t for t in texts(at, "markdown"))
    assert not [b for b in at.button if b.label == "A is better"]
    at.run()  # stays said on the next rerun
    assert any(t.startswith("All inputs voted") for t in texts(at, "success"))


def test_a_paused_or_cancelled_batch_shows_no_eta(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_DEMO_TIME_SCALE", "0.5")
    runtime.reset()
    version = evaluation.save_template("slow", "", "Tell me about {{ n }}.")
    rows = "n\n" + "\n".join(f"topic {i}" for i in range(40)) + "\n"
    dataset_id = evaluation.store_dataset("many", parse_dataset(rows))
    spec = BatchSpec(
        title="slow",
        template_version_ids=(version.id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "deepseek-r1"),),
        concurrency=1,
    )
    job = evaluation.start_batch(spec, runtime.connection_from())
    while job.progress().done < 1:
        job.wait(0.1)
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")
    at.session_state["evaluate.batch_id"] = job.batch_id
    evaluation.control_batch(job.batch_id, "pause")
    at.run()
    (bar,) = at.get("progress")
    assert "paused" in bar.proto.text and "ETA" not in bar.proto.text
    evaluation.control_batch(job.batch_id, "cancel")
    job.wait(30)
    at.run()
    (bar,) = at.get("progress")
    assert "ETA" not in bar.proto.text


def test_leaderboard_pass_rates_count_one_set_of_checks_at_a_time() -> None:
    version = evaluation.save_template("q", "", "Explain {{ topic }}.")
    dataset_id = evaluation.store_dataset("t", parse_dataset("topic\ncaching\nqueues\n"))
    connection = runtime.connection_from()
    checks = {
        "lenient": (parse_assertion({"type": "regex", "value": "."}),),
        "strict": (parse_assertion({"type": "is_json"}),),
    }
    for title, assertions in checks.items():
        spec = BatchSpec(
            title=title,
            template_version_ids=(version.id,),
            dataset_id=dataset_id,
            targets=(ModelTarget("demo", "gpt-5-nano"),),
            assertions=assertions,
        )
        evaluation.start_batch(spec, connection).wait(30)
    at = open_page("pages/leaderboard.py")
    assert not at.exception
    picker = at.selectbox(key="leaderboard.checks")
    assert picker.options == ["is_json · batches #2", 'regex "." · batches #1']

    def pass_rate() -> float:
        return float(at.dataframe[0].value.set_index("model").loc["GPT-5 Nano", "pass rate"])

    assert pass_rate() == 0.0  # the newest batch's checks: prose is not JSON
    picker.set_value('regex "."').run()
    assert pass_rate() == 1.0


def test_leaderboard_shows_what_was_not_measured_yet_as_a_dash() -> None:
    run_the_example()  # pass rates, but no votes, thumbs or scores yet
    at = open_page("pages/leaderboard.py")
    assert not at.exception
    (table,) = at.dataframe
    unmeasured = table.value.set_index("model").loc["GPT-5 Nano"]
    assert unmeasured[["rating", "win rate", "thumbs-up rate", "mean score"]].isna().all()
    assert table.proto.placeholder == "—"  # drawn for them, not "None"


def test_the_run_batch_form_and_drafts_survive_a_visit_to_another_page() -> None:
    at = open_tab(open_page("pages/evaluate.py"), TABS, "Run batch")  # the example fills it
    at.multiselect(key="evaluate.models").set_value(["gpt-5", "deepseek-r1"])
    at.text_area(key="evaluate.assertions").set_value("- {type: is_json}")
    at.number_input(key="evaluate.budget").set_value(30).run()
    at = open_tab(at, TABS, "Templates")
    at.text_area(key="evaluate.user").set_value("Draft: {{ x }}").run()

    at = at.switch_page("pages/compare.py").run()
    at = at.switch_page("pages/evaluate.py").run()

    assert at.text_area(key="evaluate.user").value == "Draft: {{ x }}"
    at = open_tab(at, TABS, "Run batch")
    assert at.multiselect(key="evaluate.versions").value == ["ticket-triage v1"]
    assert at.multiselect(key="evaluate.models").value == ["gpt-5", "deepseek-r1"]
    assert at.text_area(key="evaluate.assertions").value == "- {type: is_json}"
    assert at.number_input(key="evaluate.budget").value == 30


def test_an_empty_user_prompt_or_a_nameless_dataset_is_refused_before_anything_is_spent() -> None:
    at = open_page("pages/evaluate.py")
    at.text_input(key="evaluate.template_name").set_value("blank")
    at.text_area(key="evaluate.user").set_value("  \n")
    at = click(at, "Save version")
    assert texts(at, "error") == [
        "The user prompt is empty: every request made from this template would fail. "
        "Write the prompt (with {{ variables }} for the dataset's columns)."
    ]
    assert "blank" not in evaluation.templates()
    at = open_tab(at, TABS, "Dataset")
    at.text_area(key="evaluate.pasted").set_value("country;capital\nFrance;Paris\n").run()
    assert "1 rows · columns: country, capital" in texts(at, "caption")
    at = click(at, "Save dataset")
    assert texts(at, "error") == ["Give the dataset a name, to find it again in the pickers."]
    assert [n for _, n, _ in evaluation.datasets()] == ["tickets.csv"]  # the example only
