"""The Evaluate page's Run batch tab: plan a batch, see its estimate, start it, watch it run."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.evaluation.assertions import AssertionSpec, parse_assertions_yaml
from playground.evaluation.plan import BatchSpec
from playground.principal import Principal
from playground.results import ModelTarget
from playground.services import evaluate as evaluation
from playground.services import runtime
from playground.services.evaluate import BatchHandle, TemplateVersion
from playground.services.example import ExampleBatch
from ui.evaluate_common import BATCH_KEY, RESULTS_BATCH_KEY, VIEWER_HELP, VOTE_BATCH_KEY

SAME_NAME = "(same name)"
"""The column picker's choice for a variable read from the column of its own name."""


def draw_run(
    *, principal: Principal | None, can_create: bool, connection: runtime.Connection
) -> None:
    """Run batch tab: pick versions, dataset, models and assertions; estimate; start; watch.

    Batches run on ``connection``'s provider; ``can_create`` false (a viewer) disables Start.
    """
    saved = {
        f"{label} v{v.version}": v
        for label, vs in evaluation.templates(viewer=principal).items()
        for v in vs
    }
    versions = {label: v.id for label, v in saved.items()}
    stored = {f"#{i} {n} ({c} rows)": i for i, n, c in evaluation.datasets(viewer=principal)}
    catalog = runtime.get_catalog()
    slugs = catalog.slugs
    chosen_versions = st.multiselect(
        "Template versions", list(versions), key="evaluate.versions", persist_state="session"
    )
    chosen_dataset = st.selectbox(
        "Dataset", list(stored), key="evaluate.dataset", persist_state="session"
    )
    mapping = _draw_mapping(
        [saved[v] for v in chosen_versions],
        stored[chosen_dataset] if chosen_dataset else None,
        principal,
    )
    models = st.multiselect(
        "Models",
        slugs,
        key="evaluate.models",
        format_func=catalog.name_of,
        persist_state="session",
    )
    assertions_text = st.text_area(
        "Assertions (YAML list)",
        key="evaluate.assertions",
        placeholder="- {type: contains, column: expected}\n- {type: max_latency_ms, value: 5000}",
        persist_state="session",
    )
    concurrency = st.slider(
        "Concurrency", 1, 16, 8, key="evaluate.concurrency", persist_state="session"
    )
    budget = st.number_input(
        "Budget cap (tokens, 0 = none)", 0, step=10, key="evaluate.budget", persist_state="session"
    )
    if chosen_versions and chosen_dataset and models:
        try:
            assertions = parse_assertions_yaml(assertions_text or "")
            judge = _pick_judge(assertions, slugs)
            spec = BatchSpec(
                title=", ".join(chosen_versions),
                template_version_ids=tuple(versions[v] for v in chosen_versions),
                dataset_id=stored[chosen_dataset],
                targets=tuple(ModelTarget(connection.provider, m) for m in models),
                mapping=mapping,
                assertions=assertions,
                concurrency=concurrency,
                budget_tokens=int(budget) or None,
                judge=None if judge is None else ModelTarget(connection.provider, judge),
            )
            _draw_estimate(
                spec, judge, principal=principal, can_create=can_create, connection=connection
            )
        except PlaygroundError as exc:
            st.error(user_message(exc))
    _progress_panel(principal)


def fill_in_example(example: ExampleBatch) -> None:
    """Put the offline example's version, dataset, models and checks in the form's boxes.

    Called before the Run batch tab draws them, so the boxes open with these values.
    """
    st.session_state["evaluate.versions"] = [example.version_label]
    st.session_state["evaluate.dataset"] = example.dataset_label
    st.session_state["evaluate.models"] = list(example.models)
    st.session_state["evaluate.assertions"] = example.assertions_yaml
    st.session_state["evaluate.budget"] = example.budget_tokens or 0


def _draw_mapping(
    versions: Sequence[TemplateVersion], dataset_id: int | None, principal: Principal | None
) -> dict[str, str]:
    """A column picker per template variable of the chosen versions; the mapping picked.

    A picker starts on the variable's same-named column when the dataset has one, else on
    "(same name)", which the estimate then names as a variable without a column.
    """
    names = list(dict.fromkeys(n for v in versions for n in v.variables))
    if dataset_id is None or not names:
        return {}
    columns = evaluation.dataset_columns(dataset_id, viewer=principal)
    st.caption("Template variables → dataset columns")
    boxes = st.columns(min(len(names), 4))
    mapping: dict[str, str] = {}
    for i, name in enumerate(names):
        options = [SAME_NAME, *columns]
        picked = boxes[i % len(boxes)].selectbox(
            f"{{{{ {name} }}}}",
            options,
            index=options.index(name) if name in columns else 0,
            key=f"evaluate.mapping.{dataset_id}.{name}",
            persist_state="session",
        )
        if picked not in (SAME_NAME, name):
            mapping[name] = picked
    return mapping


def _pick_judge(assertions: Sequence[AssertionSpec], slugs: list[str]) -> str | None:
    """The judge model picked, its box drawn only when an assertion is ``llm_judge`` (else None)."""
    judge = None
    if any(a.kind == "llm_judge" for a in assertions):
        judge = st.selectbox(
            "Judge model (grades llm_judge)",
            slugs,
            key="evaluate.judge",
            persist_state="session",
        )
    return judge


def _draw_estimate(
    spec: BatchSpec,
    judge: str | None,
    *,
    principal: Principal | None,
    can_create: bool,
    connection: runtime.Connection,
) -> None:
    """The batch's checked estimate and warnings, and Start batch (which raises on a bad spec)."""
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
        _watch_batch(evaluation.start_batch(spec, connection, viewer=principal).batch_id)


def _watch_batch(batch_id: int) -> None:
    """Show ``batch_id`` in the progress panel and in the Results and Blind vote tabs."""
    # Those tabs' boxes are not drawn in this run, so their keys can still be set.
    for key in (BATCH_KEY, RESULTS_BATCH_KEY, VOTE_BATCH_KEY):
        st.session_state[key] = batch_id


@st.fragment(run_every=1.0)
def _progress_panel(principal: Principal | None) -> None:
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
    # A paused, cancelled or finished batch has no time left to guess, however long ago
    # its last answer came.
    running = progress.status == "running" and not job.finished
    eta = "" if progress.eta_s is None or not running else f" · ETA {progress.eta_s:.0f} s"
    st.progress(
        progress.fraction,
        text=f"Batch #{progress.batch_id} {progress.status}: {progress.done}/"
        f"{progress.total} done, {progress.failed} failed · "
        f"{progress.spent_tokens} tokens"
        + (f" + {progress.judge_tokens} for the judge" if progress.judge_tokens else "")
        + eta,
    )
    if progress.message:
        # A batch stopped by an error says so in red; other messages are notes.
        (st.error if progress.status == "interrupted" else st.caption)(progress.message)
    _draw_controls(job, progress.batch_id, principal)


def _draw_controls(job: BatchHandle, batch_id: int, principal: Principal | None) -> None:
    """Pause, Resume and Cancel for the batch (disabled once it finished); errors shown."""
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
            evaluation.control_batch(batch_id, action, viewer=principal)
        except PlaygroundError as exc:
            st.error(user_message(exc))
