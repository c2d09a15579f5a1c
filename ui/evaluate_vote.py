"""The Evaluate page's Blind vote tab: anonymous answers to one input, a vote, then names."""

from __future__ import annotations

import random

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.evaluation.voting import BlindRound, Verdict
from playground.principal import Principal
from playground.safe_text import inert_images
from playground.services import evaluate as evaluation
from playground.services import runtime
from ui.evaluate_common import VOTE_BATCH_KEY, pick_id
from ui.rating import rater_field

ROUND_KEY = "evaluate.round"
"""The round on show (a :class:`BlindRound`), or ``None`` before the first one."""
REVEAL_KEY = "evaluate.revealed"
"""The verdict given on the round on show, or ``None`` while it is not voted on."""
ALL_VOTED_KEY = "evaluate.all_voted"
"""The batch whose every input this voter has judged, when Next round found none left."""


def draw_vote(*, principal: Principal | None) -> None:
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
        blind = evaluation.next_blind_round(
            batch_id, voter, random.Random(), size, viewer=principal
        )
        st.session_state[ROUND_KEY] = blind
        st.session_state[REVEAL_KEY] = None
        st.session_state[ALL_VOTED_KEY] = batch_id if blind is None else None
    blind = st.session_state.get(ROUND_KEY)
    if blind is None:
        if batch_id is not None and st.session_state.get(ALL_VOTED_KEY) == batch_id:
            _all_voted(batch_id)
        else:
            st.caption("Press Next round for anonymous answers to the same input.")
        return
    for column, letter, answer in zip(
        st.columns(len(blind.answers)), blind.letters, blind.answers, strict=True
    ):
        column.markdown(f"**Answer {letter}**")
        column.markdown(inert_images(answer.content))
    if st.session_state.get(REVEAL_KEY) is not None:
        st.success(f"Vote saved. {blind.reveal(runtime.get_catalog().name_of)}.")
        return
    _draw_ballot(blind, voter, principal)


def _all_voted(batch_id: int) -> None:
    """Say that this batch has no input left to vote on, and where to go from here."""
    st.success(
        f"All inputs voted: you have judged every pair of answers in batch #{batch_id}.",
        icon=":material/done_all:",
    )
    st.markdown(
        "What's next: see the ranking on the **Leaderboard**, pick another batch above, "
        "or run a new batch (more rows or models) on the **Run batch** tab."
    )
    st.page_link(
        "pages/leaderboard.py", label="Open the Leaderboard", icon=":material/leaderboard:"
    )


def _draw_ballot(blind: BlindRound, voter: str, principal: Principal | None) -> None:
    """One button per verdict on the round; a click saves the vote and reruns to reveal."""
    pair = len(blind.answers) == 2
    choices: dict[str, Verdict] = {
        f"{letter} is {'better' if pair else 'best'}": index
        for index, letter in enumerate(blind.letters)
    }
    choices.update({"Tie": "tie", "Both bad" if pair else "All bad": "all_bad"})
    for column, (label, verdict) in zip(st.columns(len(choices)), choices.items(), strict=True):
        if column.button(label, key=f"evaluate.vote.{verdict}"):
            try:
                evaluation.vote(blind, verdict, voter, viewer=principal)
            except PlaygroundError as exc:
                st.session_state[ROUND_KEY] = None
                st.error(user_message(exc), icon=":material/error:")
                return
            st.session_state[REVEAL_KEY] = verdict
            st.rerun()
