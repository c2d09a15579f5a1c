"""The "Rate" popover on any finished answer: thumbs, a 1–5 score or a note, with who rated."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from playground.errors import PlaygroundError, user_message
from playground.principal import Principal
from playground.results import ModelResult
from playground.safe_text import escape_markdown
from playground.services import evaluate as evaluation
from ui.auth import current_principal

RATER_KEY = "rating.rater"


def rater_field(key: str, principal: Principal | None) -> str:
    """Who rates or votes: the signed-in user in hosted mode (shown, not typed), else the
    name typed into a "Your name" box."""
    if principal is not None:
        name, subject = escape_markdown(principal.display_name), escape_markdown(principal.subject)
        st.caption(f"Rating as **{name}** ({subject})")
        return principal.subject
    # persist_state: the typed name stays while the field is not drawn (another tab open).
    return str(st.text_input("Your name", key=key, value="me", persist_state="page"))


def rate_answer(position: int, result: ModelResult, *, key: str) -> None:
    """Draw the popover for ``result`` (nothing when it was never stored)."""
    if result.result_id is None or not result.content:
        return
    result_id = result.result_id
    prefix = f"{key}.rate.{result_id}"
    principal = current_principal()
    popover = st.popover(
        "Rate",
        icon=":material/star:",
        help="Rate this answer (stored with your name)",
        key=f"{prefix}.open",
        on_change="rerun",
    )
    if not popover.open:
        # Its nine widgets are drawn only once it is opened: a page of six answers would
        # otherwise send 54 hidden widgets with every run.
        return
    with popover:
        if principal is None:
            name_key = f"{prefix}.rater"
            # One name for every popover: the last one typed anywhere fills them all.
            st.session_state[name_key] = st.session_state.setdefault(RATER_KEY, "me")
            st.text_input("Your name", key=name_key, on_change=_remember, args=(name_key,))
            rater = str(st.session_state[RATER_KEY]).strip() or "anonymous"
        else:
            rater = rater_field(f"{prefix}.rater", principal)
        saved: str | None = None
        with st.container(horizontal=True, gap="small"):
            if st.button(
                "Good", key=f"{prefix}.up", icon=":material/thumb_up:", help="Good answer"
            ):
                saved = _save(result_id, rater, "thumbs", 1, None, principal)
            if st.button(
                "Bad", key=f"{prefix}.down", icon=":material/thumb_down:", help="Bad answer"
            ):
                saved = _save(result_id, rater, "thumbs", -1, None, principal)
        score = st.slider("Score", 1, 5, 3, key=f"{prefix}.score")
        if st.button("Save score", key=f"{prefix}.save_score"):
            saved = _save(result_id, rater, "score", score, None, principal)
        note = st.text_area("Note", key=f"{prefix}.note", max_chars=2000)
        if st.button("Save note", key=f"{prefix}.save_note", disabled=not note.strip()):
            saved = _save(result_id, rater, "note", None, note.strip(), principal)
        if saved:
            st.success(saved)


def _remember(name_key: str) -> None:
    st.session_state[RATER_KEY] = st.session_state[name_key]


def _save(
    result_id: int,
    rater: str,
    kind: str,
    value: float | None,
    note: str | None,
    principal: Principal | None,
) -> str:
    try:
        evaluation.rate(result_id, rater, kind, value, note, viewer=principal)
    except (PlaygroundError, SQLAlchemyError) as exc:
        return f"Not saved: {user_message(exc)}"
    return f"Saved ({kind}) as {rater}."
