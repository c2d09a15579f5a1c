"""Compare's editor: system prompt, turns, prompt, models, parameters, the budget and Run.

The editor is a fragment (:func:`editor`): a click or an edit in it reruns the editor alone,
not the result columns the page draws below it. Run's callback (:func:`start_run`) starts
the comparison from the editor's state and asks for a full page run, which draws them.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.presenters import compare_state as cs
from playground.presenters.compare import (
    SHARE_PARAM,
    TOKEN_PARAM,
    Composer,
    ModelOption,
    budget_summary,
    budget_warnings,
    build_compare_request,
    carry_over,
    model_options,
    share_ref,
)
from playground.principal import Principal
from playground.providers.base import GenerationParams
from playground.services import compare, runtime
from playground.services.compare import ColumnRef
from playground.services.runtime import Connection
from ui.auth import current_principal, session_connection
from ui.connection import cached_balance, note_own_run
from ui.drafts import save_draft

COLUMNS = "compare.columns"
SHARED = "compare.shared"
# The share link's token (hosted mode): it keeps opening a comparison shared with a link.
SHARE_TOKEN = "compare.share_token"  # noqa: S105  (a session-state key, not a secret)
NOTICE = "compare.notice"
# Set by Run: the next page run scrolls the new columns into view.
SCROLL = "compare.scroll"


def start_run() -> None:
    """Run's callback: start the comparison before the page is drawn and ask for a full
    page run (not only the editor's), which draws its columns (and the models' requests go
    out a page run sooner). A refused request leaves its message for the editor."""
    principal = current_principal()
    try:
        connection = session_connection()
        providers = runtime.get_providers(connection)
        options = {o.key: o for o in model_options(providers, connection.provider)}
        keys, _ = carry_over(st.session_state.get(cs.MODELS, []), list(options.values()))
        picked = tuple(options[key] for key in keys)
        composer = Composer(
            system_prompt=st.session_state.get(cs.SYSTEM, ""),
            turns=tuple(cs.turns(st.session_state)),
            prompt=st.session_state.get(cs.PROMPT, ""),
            picked=picked,
            temperature=st.session_state.get(cs.TEMPERATURE),
            max_tokens=st.session_state.get(cs.MAX_TOKENS),
            overrides=overrides_of(picked),
        )
        request = build_compare_request(composer)
        request = replace(request, use_cache=bool(st.session_state.get(cs.USE_CACHE)))
        shown = st.session_state.get(COLUMNS, [])
        handle = compare.start_compare(request, connection, principal, shown=shown)
    except PlaygroundError as exc:
        st.session_state[NOTICE] = user_message(exc)
        return
    st.session_state[COLUMNS] = [
        ColumnRef(handle.run_id, i) for i in range(len(handle.request.targets))
    ]
    note_own_run(st.session_state, handle.run_id, connection)
    ref = share_ref(handle.run_id, handle.comparison_id)
    st.session_state[SHARED] = ref
    st.session_state.pop(SHARE_TOKEN, None)
    st.query_params[SHARE_PARAM] = ref
    st.query_params.pop(TOKEN_PARAM, None)
    # The balance is read again once the run has finished (BALANCE_AFTER): not now, on
    # the way to the new columns, while the run has charged nothing yet.
    st.session_state[SCROLL] = handle.run_id
    # Run sits in the editor's fragment: the whole page runs to draw the new columns.
    st.rerun(scope="app")


# Each turn's actions as icons; the turn's text box's help names them, in this order.
TURN_ACTION_ICONS = {
    cs.SWITCH_ROLE: ":material/swap_horiz:",
    cs.MOVE_UP: ":material/arrow_upward:",
    cs.MOVE_DOWN: ":material/arrow_downward:",
    cs.REMOVE: ":material/delete:",
}
TURN_ACTIONS_WIDTH = 208
TURN_ACTIONS_HELP = (
    "The buttons beside this turn: switch between user and assistant, move up, move down, "
    "remove the turn."
)


def act_on_turn(turn_id: int) -> None:
    """A turn's action control was pressed: do what it names to that turn."""
    cs.act_on_turn(st.session_state, turn_id, st.session_state.get(cs.action_key(turn_id)))


def overrides_of(picked: tuple[ModelOption, ...]) -> dict[str, GenerationParams]:
    """The per-model overrides the session holds for ``picked``."""
    return {
        option.key: GenerationParams(
            temperature=st.session_state.get(cs.override_key(option.key, "temperature")),
            max_tokens=st.session_state.get(cs.override_key(option.key, "max_tokens")),
        )
        for option in picked
    }


@st.fragment
def editor(principal: Principal | None, connection: Connection, options: list[ModelOption]) -> None:
    """The editor: system prompt, turns, prompt, models, parameters, the budget and Run.

    A fragment: a click or an edit here reruns only the editor, not the result columns
    below it (while six columns stream, they were most of every page run). Run's callback
    asks for a full page run, which draws the new columns. ``options``: the models the
    connection offers.
    """
    by_key = {option.key: option for option in options}
    # A fragment run skips app.py, which saves the tab's draft on every full page run.
    save_draft(principal)
    st.text_area(
        "System prompt",
        key=cs.SYSTEM,
        persist_state="session",
        height=68,
        placeholder="Optional: how the assistant should behave, e.g. “Answer in two sentences.”",
    )
    turns = cs.turn_ids(st.session_state)
    with st.expander(f"Earlier turns ({len(turns)})", expanded=bool(turns)):
        if not turns:
            st.caption("Add user and assistant turns to compare answers to a multi-turn chat.")
        for position, turn_id in enumerate(turns):
            # Three elements a turn (a row, its text, one control for every action), not
            # six (a role box and three buttons): every element is one more message on every
            # run of the editor, and a click far down the editor waits for all the turns.
            role = cs.turn_role(st.session_state, turn_id)
            with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
                st.text_area(
                    f"{position + 1}. {role.title()}",
                    key=cs.turn_key(turn_id, "content"),
                    persist_state="session",
                    height=68,
                    help=TURN_ACTIONS_HELP,
                )
                st.segmented_control(
                    f"Turn {position + 1} actions",
                    cs.turn_actions(position, len(turns)),
                    key=cs.action_key(turn_id),
                    format_func=TURN_ACTION_ICONS.__getitem__,
                    on_change=act_on_turn,
                    args=(turn_id,),
                    label_visibility="collapsed",
                    # Room for all four at any position: the text boxes line up.
                    width=TURN_ACTIONS_WIDTH,
                )
        with st.container(horizontal=True):
            for role in ("user", "assistant"):
                st.button(
                    f"Add {role} turn",
                    icon=":material/add:",
                    on_click=cs.add_turn,
                    args=(st.session_state, role),
                )
    st.text_area(
        "Prompt",
        key=cs.PROMPT,
        height=120,
        placeholder="Your message to every model, e.g. “Explain…”",
        persist_state="session",
    )

    st.multiselect(
        "Models",
        [option.key for option in options],
        key=cs.MODELS,
        persist_state="session",
        format_func=lambda key: by_key[key].label,
        placeholder="Pick the models to compare",
    )
    picked = tuple(by_key[key] for key in st.session_state[cs.MODELS])
    temperature_col, max_tokens_col = st.columns(2)
    temperature_col.number_input(
        "Temperature",
        key=cs.TEMPERATURE,
        persist_state="session",
        value=None,
        step=0.1,
        format="%.2f",
        placeholder="API default",
        help="0 to 2: higher is more varied. Empty uses the API's default.",
    )
    max_tokens_col.number_input(
        "Max tokens",
        key=cs.MAX_TOKENS,
        persist_state="session",
        value=None,
        step=1,
        placeholder="API default",
        help="Upper bound on the answer length in LLM tokens. Empty uses the API's default.",
    )
    st.toggle(
        "Reuse identical earlier answers (cache)",
        key=cs.USE_CACHE,
        persist_state="session",
        help="A model asked exactly the same thing before answers from history at once, "
        "without an API call or cost. Its column is marked “cached”.",
    )
    if picked:
        overrides_box = st.expander(
            "Per-model overrides", key="compare.overrides", on_change="rerun"
        )
        if overrides_box.open:  # the fields keep their values while it is closed
            with overrides_box:
                st.caption("Leave a field empty to use the shared value above.")
                for option in picked:
                    name_col, temp_col, tokens_col = st.columns(
                        [2, 1, 1], vertical_alignment="bottom"
                    )
                    name_col.markdown(option.label)
                    temp_col.number_input(
                        "Temperature",
                        key=cs.override_key(option.key, "temperature"),
                        persist_state="session",
                        value=None,
                        step=0.1,
                        format="%.2f",
                        placeholder="shared",
                    )
                    tokens_col.number_input(
                        "Max tokens",
                        key=cs.override_key(option.key, "max_tokens"),
                        persist_state="session",
                        value=None,
                        step=1,
                        placeholder="shared",
                    )
    shown = st.session_state.get(COLUMNS, [])
    balance, balance_error = cached_balance(st.session_state, connection)
    if principal is not None and not principal.can_run:
        run_help: str | None = "Viewers cannot run models."
    elif compare.still_running(shown, principal):
        run_help = "Stop the running comparison first (Stop all), or wait for it to finish."
    else:
        run_help = None
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(
            "Run",
            type="primary",
            icon=":material/play_arrow:",
            shortcut="Ctrl+Enter",
            disabled=run_help is not None,
            help=run_help,
            on_click=start_run,
        )
        st.markdown(budget_summary(picked, balance))
    if balance_error:
        st.warning(f"Could not read the balance: {balance_error}", icon=":material/warning:")
    for warning in budget_warnings(picked, balance):
        st.warning(warning, icon=":material/warning:")

    if NOTICE in st.session_state:
        st.error(st.session_state.pop(NOTICE))
