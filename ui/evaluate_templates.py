"""The Evaluate page's Templates tab: save prompt template versions, load one into Compare."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.presenters import compare_state
from playground.principal import Principal
from playground.safe_text import escape_markdown
from playground.services import evaluate as evaluation
from playground.services.evaluate import TemplateVersion
from ui.evaluate_common import VIEWER_HELP, pick_id

LOADER_KEY = "evaluate.loader"
"""The id of the version whose loader is open (it stays open through reruns)."""
FROM_DATASET = "a saved dataset row"


def draw_templates(*, principal: Principal | None, can_create: bool) -> None:
    """Templates tab: save a version, list every template's versions, load one into Compare.

    ``can_create`` false (a viewer) disables Save version.
    """
    saved = evaluation.templates(viewer=principal)
    name = st.text_input("Template name", key="evaluate.template_name", persist_state="session")
    system = st.text_area(
        "System prompt", key="evaluate.system", height=80, persist_state="session"
    )
    user = st.text_area(
        "User prompt ({{ variables }} allowed)",
        key="evaluate.user",
        height=120,
        persist_state="session",
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
                    _to_compare(version, {})
                elif opened or st.session_state.get(LOADER_KEY) == version.id:
                    st.session_state[LOADER_KEY] = version.id
                    _draw_loader(version, principal)


def _draw_loader(version: TemplateVersion, principal: Principal | None) -> None:
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
            values = _dataset_row(key, principal)
        else:
            values = {
                n: st.text_input(n, key=f"{key}.value.{n}", persist_state="page")
                for n in version.variables
            }
        with st.container(horizontal=True):
            filled = st.button("Load filled-in prompt", type="primary", key=f"{key}.filled")
            raw = st.button("Load raw template", key=f"{key}.raw")
        if filled or raw:
            _to_compare(version, values if filled else None)


def _dataset_row(key: str, principal: Principal | None) -> dict[str, Any]:
    """A saved dataset and row picked (``key`` prefixes their widget keys), shown; its values.

    Empty, with a hint, when no dataset is saved yet.
    """
    values: dict[str, Any] = {}
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
    return values


def _to_compare(version: TemplateVersion, values: Mapping[str, Any] | None) -> None:
    """Load the version (filled with ``values``, or raw) into Compare and go there."""
    try:
        compare_state.load_into_compare(st.session_state, version.template, values)
    except PlaygroundError as exc:
        st.error(user_message(exc))
    else:
        st.switch_page("pages/compare.py")
