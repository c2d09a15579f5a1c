"""Compare: one prompt on several models side by side, streamed live."""

from __future__ import annotations

from functools import partial

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.presenters import compare_state as cs
from playground.presenters.compare import (
    MODELS_PARAM,
    SHARE_PARAM,
    TOKEN_PARAM,
    carry_over,
    model_options,
    options_from_param,
    redraw_interval_s,
    share_url,
)
from playground.results import ModelResult
from playground.safe_text import escape_markdown
from playground.services import compare
from playground.services.compare import ColumnRef
from ui.auth import current_principal, session_connection
from ui.columns import ColumnTools, draw_diff, draw_grid, model_title, style_answers
from ui.compare_editor import COLUMNS, NOTICE, SCROLL, SHARE_TOKEN, SHARED, editor
from ui.connection import balance_after, note_own_run
from ui.live_column import FALLBACK, live_answer, stream_urls
from ui.rating import rate_answer
from ui.scroll import scroll_into_view
from ui.session import connection_and_providers

# The columns whose finished run the balance shown was read after.
BALANCE_AFTER = "compare.balance_after"


def stop(columns: list[ColumnRef]) -> None:
    compare.stop_columns(columns, current_principal())


def rerun(position: int) -> None:
    columns = list(st.session_state[COLUMNS])
    connection = session_connection()
    try:
        columns[position] = compare.rerun_column(
            columns[position], connection, current_principal(), st.session_state.get(SHARE_TOKEN)
        )
    except PlaygroundError as exc:
        st.session_state[NOTICE] = user_message(exc)
        return
    note_own_run(st.session_state, columns[position].run_id, connection)
    st.session_state[COLUMNS] = columns


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


shown = st.session_state.get(COLUMNS, [])
if shown and st.session_state.get(BALANCE_AFTER) != shown:
    # Once a run (or one column's re-run) has finished, its charge is in the balance:
    # read it again rather than show the figure read while it streamed.
    finished = compare.column_results(shown, principal, st.session_state.get(SHARE_TOKEN))
    if finished is not None and finished[1]:
        st.session_state[BALANCE_AFTER] = list(shown)
        balance_after(st.session_state, connection, shown, finished[0])
editor(principal, connection, options)


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
    if live is not None and (
        done or all(result.is_terminal for result in results) or st.session_state.get(FALLBACK)
    ):
        # A live column's end of run (or its fallback) reran this fragment: the page
        # draws the finished run, or polls until the run closes or when the stream failed.
        st.rerun()
    # Fixed slots (st.empty) keep every element's position when a button disappears, so a
    # fragment's redraws (in the container Streamlit makes for it) replace elements in place.
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
    stop_all = st.empty()
    if stoppable:
        stop_all.button("Stop all", icon=":material/stop_circle:", on_click=stop, args=(columns,))
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
                # A fragment, so the run the live columns ask for at the end is a fragment
                # run, which reruns the page from inside (st.rerun). Asked for by the
                # browser, a full page run would stop a script runner that has not read its
                # request yet (runner.fastReruns): a click in the editor a moment before
                # the end of a run was lost with it.
                st.fragment(draw_results)(polling=False, live=live)
            else:
                st.fragment(draw_results, run_every=redraw_interval_s(compare.live_runs()))(
                    polling=True
                )
if SCROLL in st.session_state:
    scroll_into_view(".st-key-column-0", key=f"scroll-{st.session_state.pop(SCROLL)}")
