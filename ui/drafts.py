"""Drafts that survive a reload: Compare's editor and Evaluate's forms, kept per browser tab.

A reload starts a new Streamlit session with empty state, and a page switch clears the URL's
query parameters, so neither session state nor the page's own parameters outlive an F5 after
moving between pages. ``app.py`` calls :func:`keep_drafts` on every run: the tab's URL always
carries its draft token, a new session restores what that token's draft holds, and every
later run saves the current values (see :mod:`playground.drafts`). The text stays on the
server; the URL carries only the token.
"""

from __future__ import annotations

import re

import streamlit as st

from playground.drafts import DRAFT_PARAM, DRAFTS, draft_values, new_token, valid_token
from playground.presenters import compare_state as cs
from playground.principal import Principal

TOKEN_KEY = "drafts.token"  # noqa: S105  (a session-state key, not a secret)
# Evaluate's form fields that persist for the session (buttons and uploads never do).
EVALUATE_KEYS = tuple(
    re.compile(pattern)
    for pattern in (
        r"evaluate\.(template_name|system|user|pasted|dataset_name)",
        r"evaluate\.(versions|dataset|models|assertions|concurrency|budget|judge)",
        r"evaluate\.mapping\..+",
        r"evaluate\.only_failing",
    )
)
DRAFT_KEYS = (*cs.DRAFT_KEYS, *EVALUATE_KEYS)


def keep_drafts(principal: Principal | None) -> None:
    """Restore this tab's draft into a new session, or save the session's current one."""
    owner = "" if principal is None else str(principal.user_id)
    token: str | None = st.session_state.get(TOKEN_KEY)
    if token is None:
        wanted = st.query_params.get(DRAFT_PARAM)
        token = wanted if wanted is not None and valid_token(wanted) else new_token()
        st.session_state[TOKEN_KEY] = token
        saved = DRAFTS.load(owner, token)
        for key, value in (saved or {}).items():
            st.session_state.setdefault(key, value)
    else:
        save_draft(principal)
    if st.query_params.get(DRAFT_PARAM) != token:
        st.query_params[DRAFT_PARAM] = token


def save_draft(principal: Principal | None) -> None:
    """Save the session's current draft (from a fragment's run, which skips ``app.py``)."""
    token: str | None = st.session_state.get(TOKEN_KEY)
    if token is not None:
        owner = "" if principal is None else str(principal.user_id)
        # One read of every value (to_dict), not a read per key: this runs on every page run.
        DRAFTS.save(owner, token, draft_values(st.session_state.to_dict(), DRAFT_KEYS))
