"""History: past comparisons, searched and filtered; open one to re-run, edit, tag or delete it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.presenters import compare_state as cs
from playground.presenters import history as hv
from playground.presenters.compare import (
    SHARE_PARAM,
    STATUS_LABELS,
    model_options,
    share_ref,
    share_url,
)
from playground.principal import Principal, owns
from playground.safe_text import escape_markdown
from playground.services import compare, hosted, runtime
from playground.services import history as history_service
from playground.services.history import EXPORT_FORMATS, HistoryFilter, StoredComparison
from ui.auth import current_principal
from ui.columns import draw_diff, draw_grid, style_answers
from ui.rating import rate_answer
from ui.session import connection_and_providers

OPEN = "history.open"
CONFIRM_DELETE = "history.confirm_delete"
PAGE = "history.page"
SEEN_FILTER = "history.seen_filter"
BATCHES = "history.batches"
MIME = {"csv": "text/csv", "json": "application/json"}

principal = current_principal()
connection, providers = connection_and_providers()
titles = hv.all_model_options(providers)
can_run = principal is None or principal.can_run


def close() -> None:
    st.session_state.pop(OPEN, None)
    st.session_state.pop(CONFIRM_DELETE, None)


def turn_page(offset: int) -> None:
    st.session_state[PAGE] = st.session_state.get(PAGE, 0) + offset


def to_compare(stored: StoredComparison, ref: str) -> None:
    """Put the comparison's request into the Compare editor and show ``ref`` there."""
    known = {option.key for option in model_options(providers, connection.provider)}
    cs.load_request(st.session_state, stored.request, known)
    close()
    st.switch_page("pages/compare.py", query_params={SHARE_PARAM: ref})


def draw_actions(stored: StoredComparison, mine: bool) -> None:
    with st.container(horizontal=True):
        rerun = st.button(
            "Re-run",
            type="primary",
            icon=":material/replay:",
            disabled=not can_run,
            help="Run the same prompt on the same models again, as a new comparison."
            if can_run
            else "Your role is viewer: you cannot run models. Ask an admin for the member role.",
        )
        load = st.button(
            "Load into Compare",
            icon=":material/edit:",
            help="Open the prompt, models and parameters in the Compare editor to change them.",
        )
        if mine and st.button("Delete", icon=":material/delete:"):
            st.session_state[CONFIRM_DELETE] = stored.id
    if rerun:
        try:
            handle = compare.start_compare(hv.rerun_request(stored.request), connection, principal)
        except PlaygroundError as exc:
            st.error(user_message(exc), icon=":material/error:")
        else:
            to_compare(stored, share_ref(handle.run_id, handle.comparison_id))
    if load:
        to_compare(stored, str(stored.id))
    if st.session_state.get(CONFIRM_DELETE) == stored.id:
        with st.container(border=True):
            st.warning(
                "Delete this comparison? It disappears from history and exports; "
                "the tokens it spent still count on the Costs page.",
                icon=":material/warning:",
            )
            with st.container(horizontal=True):
                if st.button("Yes, delete", type="primary"):
                    try:
                        history_service.delete_stored_comparison(stored.id, principal)
                    except PlaygroundError as exc:
                        st.error(user_message(exc), icon=":material/error:")
                        return
                    close()
                    st.toast("Comparison deleted.", icon=":material/delete:")
                    st.rerun()
                st.button("Cancel", on_click=st.session_state.pop, args=(CONFIRM_DELETE, None))


def draw_meta_form(stored: StoredComparison) -> None:
    request = stored.request
    with st.expander("Title, tags and note", icon=":material/sell:"):
        with st.form(f"history.meta.{stored.id}", border=False):
            title = st.text_input(
                "Title", value=request.title, max_chars=500, key=f"history.title.{stored.id}"
            )
            tags = st.text_input(
                "Tags",
                value=", ".join(request.tags),
                help="Comma-separated, e.g. `sql, ru`",
                key=f"history.tags.{stored.id}",
            )
            note = st.text_area(
                "Note", value=request.note, height=80, key=f"history.note.{stored.id}"
            )
            saved = st.form_submit_button("Save", icon=":material/save:")
        if saved:
            try:
                found = history_service.annotate_comparison(
                    stored.id,
                    title=title.strip(),
                    tags=hv.parse_tags(tags),
                    note=note.strip(),
                    viewer=principal,
                )
            except PlaygroundError as exc:
                st.error(user_message(exc), icon=":material/error:")
                return
            if not found:
                st.warning("This comparison no longer exists.")
                return
            st.toast("Saved.", icon=":material/check:")
            st.rerun()


def share(stored: StoredComparison, owner: Principal, workspace_id: int | None, link: bool) -> None:
    """Make the comparison private or visible in ``workspace_id``, with or without a link."""
    try:
        history_service.set_sharing(
            stored.id,
            owner,
            visibility="private" if workspace_id is None else "workspace",
            workspace_id=workspace_id,
            link=link,
        )
    except PlaygroundError as exc:
        st.error(user_message(exc), icon=":material/error:")
        return
    st.rerun()


def draw_sharing(stored: StoredComparison, owner: Principal) -> None:
    """The owner's Share controls (hosted mode): who may see it, and a revocable link."""
    with st.expander("Share", icon=":material/share:"):
        choices = hv.sharing_choices(owner, hosted.workspaces(owner))
        current = hv.shared_with(stored)
        options = list(choices)
        target = st.selectbox(
            "Who can see it",
            options,
            index=options.index(current) if current in options else 0,
            format_func=choices.__getitem__,
            key=f"history.share.{stored.id}",
        )
        if st.button("Save sharing", key=f"history.share.save.{stored.id}"):
            share(stored, owner, target, link=stored.share_token is not None)
        if stored.share_token is None:
            if st.button("Create share link", icon=":material/link:"):
                share(stored, owner, current, link=True)
            return
        st.caption("Anyone signed in here who has this link can open the comparison read-only:")
        st.code(
            share_url(hv.compare_page_url(st.context.url), str(stored.id), stored.share_token),
            language=None,
        )
        if st.button("Revoke link", icon=":material/link_off:"):
            share(stored, owner, current, link=False)


def draw_opened(comparison_id: int) -> None:
    st.button("Back to the list", icon=":material/arrow_back:", on_click=close)
    stored = history_service.stored_comparison(comparison_id, principal)
    if stored is None:
        # The same words for a comparison someone else did not share: never reveal it exists.
        st.warning("This comparison no longer exists; it may have been deleted.")
        return
    mine = owns(stored.request.owner, principal)
    st.subheader(escape_markdown(hv.heading(stored)))
    st.markdown(hv.summary_line(stored, titles))
    if not mine:
        st.caption(f"Shared with you by {escape_markdown(stored.request.owner or '')}: read-only.")
    if stored.request.note:
        st.caption(f"Note: {escape_markdown(stored.request.note)}")
    with st.expander("Prompt", icon=":material/chat:"):
        if stored.request.system_prompt:
            st.markdown("**System**")
            st.text(stored.request.system_prompt)
        for message in stored.request.messages:
            st.markdown(f"**{message.role.title()}**")
            st.text(message.content)
    draw_actions(stored, mine)
    if mine:
        draw_meta_form(stored)
    if mine and principal is not None:
        draw_sharing(stored, principal)
    if not hv.is_finished(stored):
        st.info("Some models are still answering; re-open this comparison to see the rest.")
    style_answers()
    draw_grid(stored.results, titles, when_done=lambda pos, r: rate_answer(pos, r, key="history"))
    draw_diff(stored.results, titles, key="history.diff")


def read_filter() -> HistoryFilter | None:
    search_col, dates_col = st.columns([3, 1])
    search = search_col.text_input(
        "Search",
        key="history.search",
        persist_state="session",
        placeholder="Words in the prompt or in an answer",
    )
    dates = dates_col.date_input(
        "Dates (UTC)", value=[], key="history.dates", persist_state="session", format="YYYY-MM-DD"
    )
    models_col, status_col, tag_col = st.columns([2, 2, 1])
    choices = hv.model_choices(runtime.get_catalog(), runtime.get_settings().openai_model_list)
    models = models_col.multiselect(
        "Models",
        list(choices),
        key="history.models",
        persist_state="session",
        format_func=choices.__getitem__,
        placeholder="Any model",
    )
    statuses = status_col.multiselect(
        "Status",
        hv.STATUS_CHOICES,
        key="history.statuses",
        persist_state="session",
        format_func=lambda status: STATUS_LABELS[status][0],
        placeholder="Any status",
    )
    tag = tag_col.text_input("Tag", key="history.tag", persist_state="session")
    st.toggle(
        "Show batch runs",
        key=BATCHES,
        value=True,
        persist_state="session",
        help="An evaluation batch's answers are one row; open it to see the batch on Evaluate.",
    )
    try:
        return hv.history_filter(
            models=models, statuses=statuses, dates=dates, tag=tag, search=search, viewer=principal
        )
    except PlaygroundError as exc:
        st.error(user_message(exc), icon=":material/error:")
        return None


def draw_list() -> None:
    flt = read_filter()
    if flt is None:
        return
    batches = bool(st.session_state.get(BATCHES, True))
    if st.session_state.get(SEEN_FILTER) != (flt, batches):
        st.session_state[SEEN_FILTER] = (flt, batches)
        st.session_state[PAGE] = 0
    try:
        found = history_service.history_page(flt, st.session_state.get(PAGE, 0), batches=batches)
    except PlaygroundError as exc:
        st.error(user_message(exc), icon=":material/error:")
        return
    st.session_state[PAGE] = found.page
    if found.total == 0:
        if flt == hv.history_filter(viewer=principal) and batches:
            st.info(
                "No comparisons yet. Every run on the Compare page is recorded here.",
                icon=":material/history:",
            )
            st.page_link(
                "pages/compare.py", label="Go to Compare", icon=":material/compare_arrows:"
            )
        else:
            st.info("Nothing matches these filters.", icon=":material/search_off:")
        return
    st.caption("Click a row to open the comparison (or the batch, on Evaluate).")
    event = st.dataframe(
        hv.comparison_table(found.entries, titles, flt.search),
        key="history.table",
        on_select="rerun",
        selection_mode=["single-row", "single-cell"],
        hide_index=True,
        column_config={
            "Created (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", width=130),
            "Title": st.column_config.TextColumn(width=150),
            "Models": st.column_config.TextColumn(width=330),
            "Cost": st.column_config.TextColumn(
                help="Billing tokens spent; — when nothing was charged", width=60
            ),
            "Prompt": st.column_config.TextColumn(width="large"),
            "Match": st.column_config.TextColumn(
                help="Where the search words were found", width="large"
            ),
            "Tags": st.column_config.TextColumn(width=110),
        },
    )
    row = hv.selected_row(event.selection.rows, event.selection.cells)
    if row is not None and 0 <= row < len(found.entries):
        kind, entry_id = hv.entry_key(found.entries[row])
        if kind == "batch":
            st.switch_page("pages/evaluate.py", query_params={hv.BATCH_PARAM: str(entry_id)})
        st.session_state[OPEN] = entry_id
        st.rerun()
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(
            "Previous",
            icon=":material/chevron_left:",
            disabled=found.page == 0,
            on_click=turn_page,
            args=(-1,),
        )
        st.caption(hv.page_caption(found.page, found.pages, found.total, found.more))
        st.button(
            "Next",
            icon=":material/chevron_right:",
            disabled=found.page + 1 >= found.pages and not found.more,
            on_click=turn_page,
            args=(1,),
        )
        for fmt in EXPORT_FORMATS:
            st.download_button(
                f"Export {fmt.upper()}",
                data=partial(history_service.export_history, flt, fmt),
                file_name=hv.export_file_name(fmt, datetime.now(UTC)),
                mime=MIME[fmt],
                icon=":material/download:",
                on_click="ignore",
                help="Every result matching the filters, one row per model's answer.",
            )


st.title("History")
if st.session_state.get(OPEN) is not None:
    draw_opened(st.session_state[OPEN])
else:
    draw_list()
