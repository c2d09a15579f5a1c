"""Evaluate: templates, datasets, batch runs with live progress, results matrix, blind votes."""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st
import yaml

from playground import services
from playground.errors import PlaygroundError, user_message
from playground.evaluation import app as evaluation
from playground.evaluation.assertions import parse_assertion
from playground.evaluation.datasets import parse_dataset
from playground.evaluation.plan import BatchSpec
from playground.evaluation.report import cell_mark, failed_assertions, pass_rates
from playground.evaluation.voting import Verdict
from playground.results import ModelTarget
from playground.safe_text import escape_markdown
from playground.store.eval_repository import CellState, TemplateVersion
from ui.auth import current_principal, session_connection
from ui.rating import rater_field

TAB_KEY = "evaluate.tab"
BATCH_KEY = "evaluate.batch_id"
RESULTS_BATCH_KEY = "evaluate.results_batch"
VOTE_BATCH_KEY = "evaluate.vote_batch"
ROUND_KEY = "evaluate.round"
REVEAL_KEY = "evaluate.revealed"
LOADER_KEY = "evaluate.loader"
FROM_DATASET = "a saved dataset row"
VIEWER_HELP = "Your role is viewer: you can look at shared work but not create or run it."


def to_compare(version: TemplateVersion, values: Mapping[str, Any] | None) -> None:
    """Load the version (filled with ``values``, or raw) into Compare and go there."""
    try:
        evaluation.load_into_compare(st.session_state, version.template, values)
    except PlaygroundError as exc:
        st.error(user_message(exc))
    else:
        st.switch_page("pages/compare.py")


def pick_id(label: str, labels: Mapping[int, str], key: str) -> int | None:
    """A selectbox of ids (``labels``: what each shows) that keeps its pick while hidden.

    An id kept from before that is not offered any more (another batch picked, a batch
    just started) falls back to the first option.
    """
    return st.selectbox(
        label,
        list(labels),
        key=key,
        format_func=lambda i: labels.get(i, f"#{i}"),
        persist_state="page",
    )


def draw_loader(version: TemplateVersion) -> None:
    """Values for the version's variables, from a saved dataset row or typed, then load."""
    key = f"{LOADER_KEY}.{version.id}"
    with st.container(border=True):
        source = st.radio(
            f"Values for {', '.join(version.variables)} from",
            [FROM_DATASET, "typed values"],
            horizontal=True,
            key=f"{key}.source",
            persist_state="page",
        )
        values: dict[str, Any] = {}
        if source == FROM_DATASET:
            rows = {i: (n, c) for i, n, c in evaluation.datasets(viewer=principal)}
            labels = {i: f"#{i} {n} ({c} rows)" for i, (n, c) in rows.items()}
            dataset_id = pick_id("Dataset", labels, f"{key}.dataset")
            if dataset_id is None:
                st.info("No saved dataset yet: save one on the Dataset tab, or type the values.")
            else:
                # One row widget per dataset: a row number past a shorter dataset's end
                # would be out of the new widget's bounds.
                number = st.number_input(
                    "Row",
                    1,
                    rows[dataset_id][1],
                    1,
                    key=f"{key}.row.{dataset_id}",
                    persist_state="page",
                )
                values = evaluation.dataset_row(dataset_id, int(number), viewer=principal)
                st.dataframe(pd.DataFrame([values]), hide_index=True)
        else:
            values = {
                n: st.text_input(n, key=f"{key}.value.{n}", persist_state="page")
                for n in version.variables
            }
        with st.container(horizontal=True):
            filled = st.button("Load filled-in prompt", type="primary", key=f"{key}.filled")
            raw = st.button("Load raw template", key=f"{key}.raw")
        if filled or raw:
            to_compare(version, values if filled else None)


def draw_templates() -> None:
    """Templates tab: save a version, list every template's versions, load one into Compare."""
    saved = evaluation.templates(viewer=principal)
    name = st.text_input("Template name", key="evaluate.template_name", persist_state="page")
    system = st.text_area("System prompt", key="evaluate.system", height=80, persist_state="page")
    user = st.text_area(
        "User prompt ({{ variables }} allowed)",
        key="evaluate.user",
        height=120,
        persist_state="page",
    )
    if st.button(
        "Save version",
        icon=":material/save:",
        disabled=not can_create,
        help=None if can_create else VIEWER_HELP,
    ):
        try:
            version = evaluation.save_template(name, system, user, viewer=principal)
            st.success(f"Saved {version.name} v{version.version}.")
            saved = evaluation.templates(viewer=principal)
        except PlaygroundError as exc:
            st.error(user_message(exc))
    for template_name, versions in saved.items():
        with st.expander(f"{escape_markdown(template_name)} · {len(versions)} version(s)"):
            for version in versions:
                st.markdown(f"**v{version.version}** · variables: {', '.join(version.variables)}")
                st.code(f"{version.template.system}\n---\n{version.template.user}", language=None)
                opened = st.button("Load into Compare", key=f"evaluate.load.{version.id}")
                if opened and not version.variables:
                    to_compare(version, {})
                elif opened or st.session_state.get(LOADER_KEY) == version.id:
                    st.session_state[LOADER_KEY] = version.id
                    draw_loader(version)


def draw_dataset() -> None:
    """Dataset tab: upload or paste CSV/JSONL, preview it, save it."""
    # The uploader has no persist_state: its file is gone after a tab switch; pasted text stays.
    upload = st.file_uploader("CSV or JSONL file", type=["csv", "jsonl", "ndjson"])
    pasted = st.text_area(
        "…or paste CSV / JSONL", key="evaluate.pasted", height=120, persist_state="page"
    )
    text = upload.getvalue() if upload else pasted  # bytes: parse_dataset names bad UTF-8
    if text.strip():
        try:
            dataset = parse_dataset(text)
            columns = escape_markdown(", ".join(dataset.columns))
            st.caption(f"{len(dataset.rows)} rows · columns: {columns}")
            st.dataframe(pd.DataFrame(dataset.preview()), hide_index=True)
            dataset_name = st.text_input(
                "Dataset name", key="evaluate.dataset_name", persist_state="page"
            )
            if st.button(
                "Save dataset",
                icon=":material/save:",
                disabled=not can_create,
                help=None if can_create else VIEWER_HELP,
            ):
                dataset_id = evaluation.store_dataset(dataset_name, dataset, viewer=principal)
                st.success(f"Saved dataset #{dataset_id}.")
        except PlaygroundError as exc:
            st.error(user_message(exc))


def watch_batch(batch_id: int) -> None:
    """Show ``batch_id`` in the progress panel and in the Results and Blind vote tabs."""
    # Those tabs' boxes are not drawn in this run, so their keys can still be set.
    for key in (BATCH_KEY, RESULTS_BATCH_KEY, VOTE_BATCH_KEY):
        st.session_state[key] = batch_id


def draw_run() -> None:
    """Run batch tab: pick versions, dataset, models and assertions; estimate; start; watch."""
    versions = {
        f"{label} v{v.version}": v.id
        for label, vs in evaluation.templates(viewer=principal).items()
        for v in vs
    }
    stored = {f"#{i} {n} ({c} rows)": i for i, n, c in evaluation.datasets(viewer=principal)}
    slugs = [m.slug for m in services.get_catalog()]
    chosen_versions = st.multiselect(
        "Template versions", list(versions), key="evaluate.versions", persist_state="page"
    )
    chosen_dataset = st.selectbox(
        "Dataset", list(stored), key="evaluate.dataset", persist_state="page"
    )
    models = st.multiselect("Models", slugs, key="evaluate.models", persist_state="page")
    assertions_text = st.text_area(
        "Assertions (YAML list)",
        key="evaluate.assertions",
        placeholder="- {type: contains, column: expected}\n- {type: max_latency_ms, value: 5000}",
        persist_state="page",
    )
    concurrency = st.slider(
        "Concurrency", 1, 16, 8, key="evaluate.concurrency", persist_state="page"
    )
    budget = st.number_input(
        "Budget cap (tokens, 0 = none)", 0, step=10, key="evaluate.budget", persist_state="page"
    )
    if chosen_versions and chosen_dataset and models:
        try:
            assertions = tuple(
                parse_assertion(a) for a in yaml.safe_load(assertions_text or "[]") or []
            )
            judge = None
            if any(a.kind == "llm_judge" for a in assertions):
                judge = st.selectbox(
                    "Judge model (grades llm_judge)",
                    slugs,
                    key="evaluate.judge",
                    persist_state="page",
                )
            spec = BatchSpec(
                title=", ".join(chosen_versions),
                template_version_ids=tuple(versions[v] for v in chosen_versions),
                dataset_id=stored[chosen_dataset],
                targets=tuple(ModelTarget(connection.provider, m) for m in models),
                assertions=assertions,
                concurrency=concurrency,
                budget_tokens=int(budget) or None,
                judge=None if judge is None else ModelTarget(connection.provider, judge),
            )
            report = evaluation.check_and_estimate(spec, viewer=principal)
            judging = (
                f" (judge {judge}: {report.judge_requests} requests, up to "
                f"{report.judge_tokens} tokens, counted against the budget cap)"
                if judge
                else ""
            )
            st.info(f"{report.requests} requests · up to {report.tokens} billing tokens{judging}")
            for warning in report.warnings:
                st.warning(warning)
            if st.button(
                "Start batch",
                type="primary",
                icon=":material/play_arrow:",
                disabled=not can_create,
                help=None if can_create else VIEWER_HELP,
            ):
                watch_batch(evaluation.start_batch(spec, connection, viewer=principal).batch_id)
        except (PlaygroundError, yaml.YAMLError) as exc:
            st.error(user_message(exc) if isinstance(exc, PlaygroundError) else str(exc))
    progress_panel()


@st.fragment(run_every=1.0)
def progress_panel() -> None:
    """The running batch's progress, refreshed every second, with pause, resume and cancel."""
    batch_id = st.session_state.get(BATCH_KEY)
    if batch_id:
        job = evaluation.running_job(batch_id, viewer=principal)
    else:
        # A new session (after an app restart, or on another app process) follows the
        # user's batch that still runs.
        job = evaluation.live_batch(viewer=principal)
        if job is not None:
            st.session_state[BATCH_KEY] = job.batch_id
    if job is None:
        return
    progress = job.progress()
    eta = "" if progress.eta_s is None else f" · ETA {progress.eta_s:.0f} s"
    st.progress(
        progress.fraction,
        text=f"Batch #{progress.batch_id} {progress.status}: {progress.done}/"
        f"{progress.total} done, {progress.failed} failed · "
        f"{progress.spent_tokens} tokens"
        + (f" + {progress.judge_tokens} for the judge" if progress.judge_tokens else "")
        + eta,
    )
    if progress.message:
        st.caption(progress.message)
    pause, resume, cancel = st.columns(3)
    action: evaluation.BatchAction | None = None
    if pause.button("Pause", disabled=job.finished):
        action = "pause"
    if resume.button("Resume", disabled=job.finished):
        action = "resume"
    if cancel.button("Cancel", disabled=job.finished):
        action = "cancel"
    if action is not None:
        try:
            evaluation.control_batch(progress.batch_id, action, viewer=principal)
        except PlaygroundError as exc:
            st.error(user_message(exc))


def draw_results() -> None:
    """Results tab: a batch's pass/fail matrix, pass rates, export, and rating an answer."""
    statuses = {i: (t, s) for i, t, s in evaluation.batches(viewer=principal)}
    labels = {i: f"#{i} {t} ({s})" for i, (t, s) in statuses.items()}
    batch_id = pick_id("Batch", labels, RESULTS_BATCH_KEY)
    if batch_id is None:
        return
    status = statuses[batch_id][1]
    job = evaluation.running_job(batch_id, viewer=principal)
    resumable = (
        status != "completed"
        and (job is None or job.finished)
        and evaluation.owns_batch(batch_id, viewer=principal)
    )
    if status == "interrupted":
        st.warning(
            "Interrupted — the process running this batch stopped. Resume continues it; "
            "answers already completed are not requested (or paid for) again."
        )
    if resumable and st.button("Resume", icon=":material/replay:"):
        try:
            st.session_state[BATCH_KEY] = evaluation.resume_batch(
                batch_id, connection, viewer=principal
            ).batch_id
        except PlaygroundError as exc:
            st.error(user_message(exc))
    # Marks and figures only: an answer's text is read when it is picked below or exported.
    batch_cells = evaluation.cells(batch_id, viewer=principal, with_content=False)
    only_failing = st.checkbox(
        "Only failing cells", key="evaluate.only_failing", persist_state="page"
    )
    matrix = pd.DataFrame(
        [
            {
                "row": c.key.row_index + 1,
                "version": c.key.template_version_id,
                "model": c.key.model,
                "mark": cell_mark(c),
            }
            for c in batch_cells
            if not only_failing or cell_mark(c) in ("FAIL", "ERROR")
        ]
    )
    if not matrix.empty:
        wide = matrix.pivot_table(
            index=["version", "row"], columns="model", values="mark", aggfunc="first"
        )
        colours = {
            "PASS": "background-color: #d4f4dd",
            "FAIL": "background-color: #f9d6d5",
            "ERROR": "background-color: #f3e0b5",
        }
        st.dataframe(wide.style.map(lambda v: colours.get(v, "")))
    rates = pass_rates(batch_cells)
    st.dataframe(
        pd.DataFrame(
            [
                {"model": m, "pass rate": r.estimate, "95% low": r.low, "95% high": r.high}
                for m, r in rates.items()
            ]
        ),
        hide_index=True,
    )
    csv_col, json_col = st.columns(2)
    # Built when clicked, not on every rerun: the answers' text is read only then.
    export = partial(evaluation.export_batch, batch_id, viewer=principal)
    csv_col.download_button("Export CSV", partial(export, "csv"), "batch.csv")
    json_col.download_button("Export JSON", partial(export, "json"), "batch.json")
    rated = {c.result_id: c for c in batch_cells if c.result_id is not None}
    if rated:
        draw_rating(rated)


def draw_rating(rated: Mapping[int, CellState]) -> None:
    """Pick one answer of the batch (by result id), show its text, and rate it."""
    st.subheader("Rate an answer")
    several_versions = len({c.key.template_version_id for c in rated.values()}) > 1
    labels = {
        i: (f"version {c.key.template_version_id} · " if several_versions else "")
        + f"row {c.key.row_index + 1} · {c.key.model}"
        for i, c in rated.items()
    }
    result_id = pick_id("Answer", labels, "evaluate.rate_cell")
    if result_id is None:
        return
    st.markdown(evaluation.answer_text(result_id, viewer=principal) or "*(empty)*")
    for problem in failed_assertions(rated[result_id]):
        st.caption(f"✗ {problem}")
    rater = rater_field("evaluate.rater_name", principal)
    up, down, score_col = st.columns(3)
    if up.button("👍", key="evaluate.thumb_up"):
        evaluation.rate(result_id, rater, "thumbs", 1, None, viewer=principal)
    if down.button("👎", key="evaluate.thumb_down"):
        evaluation.rate(result_id, rater, "thumbs", -1, None, viewer=principal)
    score = score_col.number_input("Score 1–5", 1, 5, 3, key="evaluate.score", persist_state="page")
    if score_col.button("Save score"):
        evaluation.rate(result_id, rater, "score", score, None, viewer=principal)
    note = st.text_input("Note", key="evaluate.note", persist_state="page")
    if st.button("Save note") and note.strip():
        evaluation.rate(result_id, rater, "note", None, note, viewer=principal)


def draw_vote() -> None:
    """Blind vote tab: anonymous answers to one input, a vote, then the names."""
    batch_id = pick_id(
        "Batch",
        {i: f"#{i} {t}" for i, t, _ in evaluation.batches(viewer=principal)},
        VOTE_BATCH_KEY,
    )
    voter = rater_field("evaluate.voter", principal)
    size = st.radio(
        "Answers per round",
        [2, 3, 4],
        horizontal=True,
        key="evaluate.round_size",
        persist_state="page",
    )
    if batch_id is not None and st.button("Next round", icon=":material/shuffle:"):
        st.session_state[ROUND_KEY] = evaluation.next_blind_round(
            batch_id, voter, random.Random(), size, viewer=principal
        )
        st.session_state[REVEAL_KEY] = None
    blind = st.session_state.get(ROUND_KEY)
    if blind is None:
        st.caption("Press Next round for anonymous answers to the same input.")
        return
    for column, letter, answer in zip(
        st.columns(len(blind.answers)), blind.letters, blind.answers, strict=True
    ):
        column.markdown(f"**Answer {letter}**")
        column.markdown(answer.content)
    if st.session_state.get(REVEAL_KEY) is not None:
        st.success(f"Vote saved. {blind.reveal()}.")
        return
    pair = len(blind.answers) == 2
    choices: dict[str, Verdict] = {
        f"{letter} is {'better' if pair else 'best'}": index
        for index, letter in enumerate(blind.letters)
    }
    choices.update({"Tie": "tie", "Both bad" if pair else "All bad": "all_bad"})
    for column, (label, verdict) in zip(st.columns(len(choices)), choices.items(), strict=True):
        if column.button(label, key=f"evaluate.vote.{verdict}"):
            evaluation.vote(blind, verdict, voter, viewer=principal)
            st.session_state[REVEAL_KEY] = verdict
            st.rerun()


principal = current_principal()
can_create = principal is None or principal.can_run
st.title("Evaluate")
connection = session_connection()
if not can_create:
    st.info(VIEWER_HELP)
TABS = {
    "Templates": draw_templates,
    "Dataset": draw_dataset,
    "Run batch": draw_run,
    "Results": draw_results,
    "Blind vote": draw_vote,
}
# on_change="rerun": only the open tab's code runs (and queries the store) on each rerun;
# the hidden tabs' widgets keep their values through persist_state="page".
for tab, draw in zip(
    st.tabs(list(TABS), key=TAB_KEY, on_change="rerun"), TABS.values(), strict=True
):
    if tab.open:
        with tab:
            draw()
