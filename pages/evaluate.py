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
from playground.evaluation.report import cell_mark, export_text, failed_assertions, pass_rates
from playground.evaluation.voting import Verdict
from playground.results import ModelTarget
from playground.safe_text import escape_markdown
from playground.store.eval_repository import TemplateVersion
from ui.auth import current_principal, session_connection
from ui.rating import rater_field

BATCH_KEY = "evaluate.batch_id"
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


def draw_loader(version: TemplateVersion) -> None:
    """Values for the version's variables, from a saved dataset row or typed, then load."""
    key = f"{LOADER_KEY}.{version.id}"
    with st.container(border=True):
        source = st.radio(
            f"Values for {', '.join(version.variables)} from",
            [FROM_DATASET, "typed values"],
            horizontal=True,
            key=f"{key}.source",
        )
        values: dict[str, Any] = {}
        if source == FROM_DATASET:
            rows = {i: (n, c) for i, n, c in evaluation.datasets(viewer=principal)}
            dataset_id = st.selectbox(
                "Dataset",
                list(rows),
                key=f"{key}.dataset",
                format_func=lambda i: f"#{i} {rows[i][0]} ({rows[i][1]} rows)",
            )
            if dataset_id is None:
                st.info("No saved dataset yet: save one on the Dataset tab, or type the values.")
            else:
                # One row widget per dataset: a row number past a shorter dataset's end
                # would be out of the new widget's bounds.
                number = st.number_input(
                    "Row", 1, rows[dataset_id][1], 1, key=f"{key}.row.{dataset_id}"
                )
                values = evaluation.dataset_row(dataset_id, int(number), viewer=principal)
                st.dataframe(pd.DataFrame([values]), hide_index=True)
        else:
            values = {n: st.text_input(n, key=f"{key}.value.{n}") for n in version.variables}
        with st.container(horizontal=True):
            filled = st.button("Load filled-in prompt", type="primary", key=f"{key}.filled")
            raw = st.button("Load raw template", key=f"{key}.raw")
        if filled or raw:
            to_compare(version, values if filled else None)


principal = current_principal()
can_create = principal is None or principal.can_run
st.title("Evaluate")
connection = session_connection()
if not can_create:
    st.info(VIEWER_HELP)
templates_tab, data_tab, run_tab, results_tab, vote_tab = st.tabs(
    ["Templates", "Dataset", "Run batch", "Results", "Blind vote"]
)

with templates_tab:
    saved = evaluation.templates(viewer=principal)
    name = st.text_input("Template name", key="evaluate.template_name")
    system = st.text_area("System prompt", key="evaluate.system", height=80)
    user = st.text_area("User prompt ({{ variables }} allowed)", key="evaluate.user", height=120)
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

with data_tab:
    upload = st.file_uploader("CSV or JSONL file", type=["csv", "jsonl", "ndjson"])
    pasted = st.text_area("…or paste CSV / JSONL", key="evaluate.pasted", height=120)
    text = upload.getvalue() if upload else pasted  # bytes: parse_dataset names bad UTF-8
    if text.strip():
        try:
            dataset = parse_dataset(text)
            columns = escape_markdown(", ".join(dataset.columns))
            st.caption(f"{len(dataset.rows)} rows · columns: {columns}")
            st.dataframe(pd.DataFrame(dataset.preview()), hide_index=True)
            dataset_name = st.text_input("Dataset name", key="evaluate.dataset_name")
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

with run_tab:
    versions = {f"{label} v{v.version}": v.id for label, vs in saved.items() for v in vs}
    stored = {f"#{i} {n} ({c} rows)": i for i, n, c in evaluation.datasets(viewer=principal)}
    slugs = [m.slug for m in services.get_catalog()]
    chosen_versions = st.multiselect("Template versions", list(versions), key="evaluate.versions")
    chosen_dataset = st.selectbox("Dataset", list(stored), key="evaluate.dataset")
    models = st.multiselect("Models", slugs, key="evaluate.models")
    assertions_text = st.text_area(
        "Assertions (YAML list)",
        key="evaluate.assertions",
        placeholder="- {type: contains, column: expected}\n- {type: max_latency_ms, value: 5000}",
    )
    concurrency = st.slider("Concurrency", 1, 16, 8, key="evaluate.concurrency")
    budget = st.number_input("Budget cap (tokens, 0 = none)", 0, step=10, key="evaluate.budget")
    if chosen_versions and chosen_dataset and models:
        try:
            assertions = tuple(
                parse_assertion(a) for a in yaml.safe_load(assertions_text or "[]") or []
            )
            judge = None
            if any(a.kind == "llm_judge" for a in assertions):
                judge = st.selectbox("Judge model (grades llm_judge)", slugs, key="evaluate.judge")
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
                st.session_state[BATCH_KEY] = evaluation.start_batch(
                    spec, connection, viewer=principal
                ).batch_id
        except (PlaygroundError, yaml.YAMLError) as exc:
            st.error(user_message(exc) if isinstance(exc, PlaygroundError) else str(exc))

    @st.fragment(run_every=1.0)
    def progress_panel() -> None:
        batch_id = st.session_state.get(BATCH_KEY)
        job = evaluation.running_job(batch_id, viewer=principal) if batch_id else None
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

    progress_panel()

with results_tab:
    all_batches = evaluation.batches(viewer=principal)
    listed = {f"#{i} {t} ({s})": i for i, t, s in all_batches}
    statuses = {i: s for i, _, s in all_batches}
    picked = st.selectbox("Batch", list(listed), key="evaluate.results_batch")
    if picked:
        job = evaluation.running_job(listed[picked], viewer=principal)
        resumable = (
            statuses[listed[picked]] != "completed"
            and (job is None or job.finished)
            and evaluation.owns_batch(listed[picked], viewer=principal)
        )
        if statuses[listed[picked]] == "interrupted":
            st.warning(
                "Interrupted — the process running this batch stopped. Resume continues it; "
                "answers already completed are not requested (or paid for) again."
            )
        if resumable and st.button("Resume", icon=":material/replay:"):
            try:
                st.session_state[BATCH_KEY] = evaluation.resume_batch(
                    listed[picked], connection, viewer=principal
                ).batch_id
            except PlaygroundError as exc:
                st.error(user_message(exc))
        batch_cells = evaluation.cells(listed[picked], viewer=principal)
        only_failing = st.checkbox("Only failing cells", key="evaluate.only_failing")
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
        # Built when clicked, not on every rerun: 0.1-0.2 s for a 2,000-cell batch.
        csv_col.download_button("Export CSV", partial(export_text, batch_cells, "csv"), "batch.csv")
        json_col.download_button(
            "Export JSON", partial(export_text, batch_cells, "json"), "batch.json"
        )
        rated = [c for c in batch_cells if c.result_id is not None]
        if rated:
            st.subheader("Rate an answer")
            cell = st.selectbox(
                "Answer",
                rated,
                key="evaluate.rate_cell",
                format_func=lambda c: f"row {c.key.row_index + 1} · {c.key.model}",
            )
            st.markdown(cell.content or "*(empty)*")
            for problem in failed_assertions(cell):
                st.caption(f"✗ {problem}")
            rater = rater_field("evaluate.rater_name", principal)
            up, down, score_col = st.columns(3)
            if up.button("👍", key="evaluate.thumb_up"):
                evaluation.rate(cell.result_id, rater, "thumbs", 1, None, viewer=principal)
            if down.button("👎", key="evaluate.thumb_down"):
                evaluation.rate(cell.result_id, rater, "thumbs", -1, None, viewer=principal)
            score = score_col.number_input("Score 1–5", 1, 5, 3, key="evaluate.score")
            if score_col.button("Save score"):
                evaluation.rate(cell.result_id, rater, "score", score, None, viewer=principal)
            note = st.text_input("Note", key="evaluate.note")
            if st.button("Save note") and note.strip():
                evaluation.rate(cell.result_id, rater, "note", None, note, viewer=principal)

with vote_tab:
    listed_votes = {f"#{i} {t}": i for i, t, _ in evaluation.batches(viewer=principal)}
    vote_batch = st.selectbox("Batch", list(listed_votes), key="evaluate.vote_batch")
    voter = rater_field("evaluate.voter", principal)
    size = st.radio("Answers per round", [2, 3, 4], horizontal=True, key="evaluate.round_size")
    if vote_batch and st.button("Next round", icon=":material/shuffle:"):
        st.session_state[ROUND_KEY] = evaluation.next_blind_round(
            listed_votes[vote_batch], voter, random.Random(), size, viewer=principal
        )
        st.session_state[REVEAL_KEY] = None
    blind = st.session_state.get(ROUND_KEY)
    if blind is None:
        st.caption("Press Next round for anonymous answers to the same input.")
    else:
        for column, letter, answer in zip(
            st.columns(len(blind.answers)), blind.letters, blind.answers, strict=True
        ):
            column.markdown(f"**Answer {letter}**")
            column.markdown(answer.content)
        if st.session_state.get(REVEAL_KEY) is None:
            pair = len(blind.answers) == 2
            choices: dict[str, Verdict] = {
                f"{letter} is {'better' if pair else 'best'}": index
                for index, letter in enumerate(blind.letters)
            }
            choices.update({"Tie": "tie", "Both bad" if pair else "All bad": "all_bad"})
            for column, (label, verdict) in zip(
                st.columns(len(choices)), choices.items(), strict=True
            ):
                if column.button(label, key=f"evaluate.vote.{verdict}"):
                    evaluation.vote(blind, verdict, voter, viewer=principal)
                    st.session_state[REVEAL_KEY] = verdict
                    st.rerun()
        else:
            st.success(f"Vote saved. {blind.reveal()}.")
