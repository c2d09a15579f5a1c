"""Comparison results drawn side by side: one bordered column per model, on every page.

The Compare page draws a live run with its tools (stop, continue, re-run); History draws a
stored comparison read-only. Both go through :func:`draw_grid`, so they look the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import streamlit as st

from playground.presenters.compare import (
    ModelOption,
    column_header,
    column_notice,
    diff_answers,
    highlights,
    metrics,
    option_key,
    row_layout,
)
from playground.results import ModelResult
from playground.safe_text import inert_images

ColumnTools = Callable[[int, ModelResult], None]
"""Draws a column's buttons: called with the column's position and its result."""
WAITING_TEXT = "_Waiting for the first token…_"
NO_TEXT = "_The model returned no text._"
"""What a column's answer box shows until the model's first text arrives."""

# Answers sit in narrow columns: their own headings must not outshout the page's.
_ANSWER_STYLE = (
    "<style>[class*='st-key-answer-'] :is(h1, h2, h3) "
    "{font-size: 1.15rem !important; padding: 0.4rem 0 0.2rem !important}</style>"
)


def style_answers() -> None:
    """Add the stylesheet that keeps headings inside answers small (once per page run)."""
    st.html(_ANSWER_STYLE)


def model_title(result: ModelResult, titles: Mapping[str, ModelOption]) -> tuple[str, str]:
    """The model's display name and its picker label (or the slug and provider if unknown)."""
    option = titles.get(option_key(result.provider, result.model))
    return (option.name, option.label) if option else (result.model, result.provider)


def draw_grid(
    results: Sequence[ModelResult],
    titles: Mapping[str, ModelOption],
    *,
    while_running: ColumnTools | None = None,
    when_done: ColumnTools | None = None,
    live_answer: ColumnTools | None = None,
) -> None:
    """Every result in its own column, in balanced rows of at most three.

    With ``live_answer``, an unfinished column is drawn by it alone: the live component
    that follows the run in the browser draws the column's header, status, Stop and answer.
    """
    marks = highlights(results)
    rows = row_layout(len(results))
    for row in rows:
        for column, position in zip(st.columns(len(rows[0])), row, strict=False):
            with column.container(border=True, key=f"column-{position}"):
                result = results[position]
                if live_answer is not None and not result.is_terminal:
                    # One element for the whole column: a page run while columns stream
                    # (every click does one) sends each element again, for every column.
                    live_answer(position, result)
                    continue
                name, label = model_title(result, titles)
                st.markdown(
                    column_header(
                        name,
                        label,
                        result,
                        fastest=position in marks.fastest,
                        cheapest=position in marks.cheapest,
                    )
                )
                _draw_body(position, result, while_running, when_done)


def _draw_body(
    position: int,
    result: ModelResult,
    while_running: ColumnTools | None,
    when_done: ColumnTools | None,
) -> None:
    # A fixed slot keeps every later element in place when the live tools disappear.
    live_tools = st.empty()
    if not result.is_terminal and while_running is not None:
        with live_tools:
            while_running(position, result)
    notice = column_notice(result)
    with st.container(key=f"answer-{position}"):
        if result.content or not result.is_terminal:
            st.markdown(inert_images(result.content) or WAITING_TEXT)
        elif notice is None:  # finished without text and without an error to say why
            st.markdown(NO_TEXT)
    if notice is not None:
        level, message = notice
        getattr(st, level)(message)
    if not result.is_terminal:
        return
    st.caption(" · ".join(f"{k} **{v}**" for k, v in metrics(result)))
    if result.content:
        # Drawn only while open: the copy of the answer would double what every redraw
        # sends (and it is rarely opened).
        raw = st.expander("Raw text (copy)", key=f"raw-{position}", on_change="rerun")
        if raw.open:
            with raw:
                st.code(result.content, language=None, wrap_lines=True)
    if when_done is not None:
        with st.container(horizontal=True, gap="small"):
            when_done(position, result)


def draw_diff(
    results: Sequence[ModelResult], titles: Mapping[str, ModelOption], *, key: str
) -> None:
    """An expander comparing two answers of ``results`` (nothing if fewer than two).

    ``key`` prefixes the two pickers' widget keys.
    """
    answers = {
        f"{i + 1}. {model_title(r, titles)[0]}": r.content
        for i, r in enumerate(results)
        if r.content
    }
    if len(answers) < 2:
        return
    labels = list(answers)
    expander = st.expander(
        "Compare two answers", icon=":material/difference:", key=f"{key}.open", on_change="rerun"
    )
    if not expander.open:  # the diff of long answers is worked out only when asked for
        return
    with expander:
        first_col, second_col = st.columns(2)
        first = first_col.selectbox("First", labels, key=f"{key}.a") or labels[0]
        second = second_col.selectbox("Second", labels, index=1, key=f"{key}.b") or labels[1]
        diff = diff_answers(answers[first], answers[second], first, second)
        st.caption(f"Similarity {diff.similarity:.0%}")
        st.code(diff.unified or "The two answers are identical.", language="diff")
