"""Compare: one prompt on several models side by side, streamed live."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.presenters import compare_state as cs
from playground.presenters.compare import (
    MODELS_PARAM,
    SHARE_PARAM,
    TOKEN_PARAM,
    Composer,
    ModelOption,
    budget_summary,
    budget_warnings,
    build_compare_request,
    carry_over,
    model_options,
    options_from_param,
    redraw_interval_s,
    share_ref,
    share_url,
)
from playground.providers.base import GenerationParams
from playground.results import ModelResult
from playground.safe_text import escape_markdown
from playground.services import compare, runtime
from playground.services.compare import ColumnRef
from ui.auth import current_principal, session_connection
from ui.columns import ColumnTools, draw_diff, draw_grid, model_title, style_answers
from ui.connection import BALANCE_STATE_KEY, cached_balance
from ui.drafts import save_draft
from ui.live_column import live_answer, stream_urls
from ui.rating import rate_answer
from ui.scroll import scroll_into_view
from ui.session import connection_and_providers

COLUMNS = "compare.columns"
SHARED = "compare.shared"
# The share link's token (hosted mode): it keeps opening a comparison shared with a link.
SHARE_TOKEN = "compare.share_token"  # noqa: S105  (a session-state key, not a secret)
NOTICE = "compare.notice"
# Set by Run: the next page run scrolls the new columns into view.
SCROLL = "compare.scroll"
# The columns whose finished run the balance shown was read after.
BALANCE_AFTER = "compare.balance_after"


def stop(columns: list[ColumnRef]) -> None:
    for column in columns:
        compare.cancel_column(column, current_principal())


def rerun(position: int) -> None:
    columns = list(st.session_state[COLUMNS])
    try:
        columns[position] = compare.rerun_column(
            columns[position],
            session_connection(),
            current_principal(),
            st.session_state.get(SHARE_TOKEN),
        )
    except PlaygroundError as exc:
        st.session_state[NOTICE] = user_message(exc)
        return
    st.session_state[COLUMNS] = columns


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


def overrides_of(picked: tuple[ModelOption, ...]) -> dict[str, GenerationParams]:
    """The per-model overrides the session holds for ``picked``."""
    return {
        option.key: GenerationParams(
            temperature=st.session_state.get(cs.override_key(option.key, "temperature")),
            max_tokens=st.session_state.get(cs.override_key(option.key, "max_tokens")),
        )
        for option in picked
    }


principal = current_principal()
connection, providers = connection_and_providers()
options = model_options(providers, connection.provider)
by_key = {option.key: option for option in options}

shared = st.query_params.get(SHARE_PARAM)
if shared and st.session_state.get(SHARED) != shared:
    st.session_state[SHARED] = shared
    st.session_state[SHARE_TOKEN] = st.query_params.get(TOKEN_PARAM)
    view = compare.open_run(shared, principal, st.session_state[SHARE_TOKEN])
    if view is None:
        st.warning(
            f"Comparison '{escape_markdown(shared)}' is not available: it may have been "
            "deleted, or it was not shared with you."
        )
    else:
        st.session_state[COLUMNS] = [
            ColumnRef(shared, i) for i in range(len(view.snapshot().results))
        ]
        if not st.session_state.get(cs.PROMPT):
            cs.load_request(st.session_state, view.request, set(by_key))
wanted_models = st.query_params.get(MODELS_PARAM)
if wanted_models and not st.session_state.get(cs.MODELS):
    st.session_state[cs.MODELS] = options_from_param(wanted_models, options, connection.provider)
st.session_state[cs.MODELS], dropped_models = carry_over(
    st.session_state.get(cs.MODELS, []), options
)

st.title("Compare models")
if principal is not None and not principal.can_run:
    st.info("Your role is viewer: you can open shared comparisons but not run models.")
style_answers()
if dropped_models:
    st.warning(
        f"{connection.label} does not offer {', '.join(dropped_models)}: "
        "removed from the picked models.",
        icon=":material/info:",
    )


@st.fragment
def editor() -> None:
    """The editor: system prompt, turns, prompt, models, parameters, the budget and Run.

    A fragment: a click or an edit here reruns only the editor, not the result columns
    below it (while six columns stream, they were most of every page run). Run's callback
    asks for a full page run, which draws the new columns.
    """
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
            # One horizontal row, not st.columns: every element is one more message on every
            # page run (and the turns come before the result columns), so a row of three
            # columns and a button group cost four blocks more per turn than this one.
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.selectbox(
                    "Role",
                    ["user", "assistant"],
                    key=cs.turn_key(turn_id, "role"),
                    persist_state="session",
                    format_func=str.title,
                    label_visibility="collapsed",
                    width=130,
                )
                st.text_area(
                    f"Turn {position + 1}",
                    key=cs.turn_key(turn_id, "content"),
                    persist_state="session",
                    height=68,
                    label_visibility="collapsed",
                )
                st.button(
                    ":material/arrow_upward:",
                    key=f"compare.up.{turn_id}",
                    help="Move up",
                    on_click=cs.move_turn,
                    args=(st.session_state, position, -1),
                    disabled=position == 0,
                )
                st.button(
                    ":material/arrow_downward:",
                    key=f"compare.down.{turn_id}",
                    help="Move down",
                    on_click=cs.move_turn,
                    args=(st.session_state, position, 1),
                    disabled=position == len(turns) - 1,
                )
                st.button(
                    ":material/delete:",
                    key=f"compare.remove.{turn_id}",
                    help="Remove this turn",
                    on_click=cs.remove_turn,
                    args=(st.session_state, position),
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


shown = st.session_state.get(COLUMNS, [])
if shown and st.session_state.get(BALANCE_AFTER) != shown:
    # Once a run (or one column's re-run) has finished, its charge is in the balance:
    # read it again rather than show the figure read while it streamed.
    finished = compare.column_results(shown, principal, st.session_state.get(SHARE_TOKEN))
    if finished is not None and finished[1]:
        st.session_state[BALANCE_AFTER] = list(shown)
        st.session_state.pop(BALANCE_STATE_KEY, None)
editor()


def stop_buttons(stoppable: set[str]) -> ColumnTools:
    """A polled column's Stop button, for the runs in ``stoppable`` only."""

    def draw(position: int, result: ModelResult) -> None:
        column = st.session_state[COLUMNS][position]
        if column.run_id in stoppable:
            st.button(
                "Stop",
                key=f"compare.stop.{position}",
                icon=":material/stop:",
                on_click=stop,
                args=([column],),
            )

    return draw


def after_run_buttons(run_done: bool) -> ColumnTools:
    def draw(position: int, result: ModelResult) -> None:
        if result.content and st.button(
            "Continue chat",
            key=f"compare.continue.{position}",
            icon=":material/reply:",
            help="Continue the conversation with this answer: it becomes an assistant turn.",
            on_click=cs.continue_conversation,
            args=(st.session_state, result.content),
        ):
            st.rerun()
        if run_done and st.button(
            "Re-run",
            key=f"compare.rerun.{position}",
            icon=":material/refresh:",
            help="Run this model again with the same prompt.",
            on_click=rerun,
            args=(position,),
        ):
            st.rerun()
        if run_done:
            rate_answer(position, result, key="compare")

    return draw


def live_columns(
    columns: list[ColumnRef], urls: dict[str, str], stoppable: set[str]
) -> ColumnTools:
    """Live columns; those of the runs in ``stoppable`` with their Stop button."""

    def draw(position: int, result: ModelResult) -> None:
        run_id = columns[position].run_id
        live_answer(
            run_id,
            urls[run_id],
            position,
            result,
            title=model_title(result, by_key),
            on_stop=partial(stop, [columns[position]]) if run_id in stoppable else None,
        )

    return draw


def draw_results(polling: bool, live: dict[str, str] | None = None) -> None:
    """The columns: polled (a fragment), followed live by the browser (``live``: each
    run's stream URL), or finished."""
    columns = st.session_state[COLUMNS]
    state = compare.column_results(columns, principal, st.session_state.get(SHARE_TOKEN))
    if state is None:
        st.session_state.pop(COLUMNS)
        st.rerun()
    results, done = state
    if polling and done:
        # Redraw the whole page once: polling stops and the after-run tools appear.
        st.rerun()
    # One container holds the whole fragment, and fixed slots (st.empty) keep every
    # element's position when a button disappears, so redraws replace elements in place.
    # Only the run's owner may stop it: a viewer of someone else's shared run gets no Stop
    # (the owner check would refuse it anyway, and a button that does nothing misleads).
    stoppable = (
        set()
        if done
        else {
            run_id
            for run_id in {column.run_id for column in columns}
            if compare.may_stop(run_id, principal)
        }
    )
    with st.container():
        stop_all = st.empty()
        if stoppable:
            stop_all.button(
                "Stop all", icon=":material/stop_circle:", on_click=stop, args=(columns,)
            )
        draw_grid(
            results,
            by_key,
            while_running=stop_buttons(stoppable),
            when_done=after_run_buttons(done),
            live_answer=None if live is None else live_columns(columns, live, stoppable),
        )


if st.session_state.get(COLUMNS):
    state = compare.column_results(
        st.session_state[COLUMNS], principal, st.session_state.get(SHARE_TOKEN)
    )
    if state is None:
        st.info("That comparison is no longer in memory. Run it again.")
        st.session_state.pop(COLUMNS)
    else:
        results, done = state
        if done:
            # Drawn inline, not as a fragment: a fragment rerun queued by the last polling
            # tick would otherwise race this full run (Streamlit then drops later blocks).
            draw_results(polling=False)
            draw_diff(results, by_key, key="compare.diff")
            if st.session_state.get(SHARED) and principal is None:
                st.caption("Share link to this comparison")
                st.code(share_url(st.context.url, st.session_state[SHARED]), language=None)
            elif st.session_state.get(SHARED):
                st.caption("To share this comparison, open it in History and create a link.")
        else:
            live = stream_urls(
                [c.run_id for c in st.session_state[COLUMNS]],
                principal,
                st.session_state.get(SHARE_TOKEN),
            )
            # The browser follows the run; Streamlit reruns when it ends or on a click. With
            # every answer final but the run not yet closed there is no live column left to
            # ask for that rerun: the fragment's polling does, within one tick.
            if live is not None and not all(result.is_terminal for result in results):
                draw_results(polling=False, live=live)
            else:
                st.fragment(draw_results, run_every=redraw_interval_s(compare.live_runs()))(
                    polling=True
                )
if SCROLL in st.session_state:
    scroll_into_view(".st-key-column-0", key=f"scroll-{st.session_state.pop(SCROLL)}")
