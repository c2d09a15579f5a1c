"""Live answer columns: the browser follows a run's events itself, Streamlit draws the rest.

A live column is a component (``ui/components/live_column``: its JS and CSS ship with the
app and are served by the app itself, see ``ui/live_code.py``; nothing is fetched from
elsewhere) that opens the run's event stream and appends the
text as plain text while it arrives, with the model's name, a status badge, live metrics and
the column's Stop button (a component trigger: a page run while columns stream sends one
element per column, not a header, a button and their slots). The page reruns
only when the run starts, on clicks, and once when the whole run is done (the component
asks for that rerun); the final rerun draws every answer as markdown with its tools.

Where the stream cannot be reached (a proxy blocks or buffers it, the feature is off), the
component says so before any event came and the page falls back to polling for good.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import streamlit as st

from playground.presenters.live_stream import grant_stream
from playground.principal import Principal
from playground.results import ModelResult
from playground.services import runtime
from ui.live_code import LOADER, code_urls

STREAMS = "live.streams"
"""Session state: the stream path (with its token) of each run this session follows."""
FALLBACK = "live.fallback"
"""Session state: set once the stream could not be reached; the page then polls."""
WAITING = "Waiting for the first token…"

# Only the loader goes with each element (a page run sends every element again): it
# imports the component's code from the app once per page.
_component = st.components.v2.component(
    "playground.live_column",
    js=LOADER,
    # In the page's own DOM (its class names are prefixed), so the page's text search,
    # copy and find-in-page see the live answer like any other.
    isolate_styles=False,
)


def stream_urls(
    run_ids: list[str], viewer: Principal | None, share_token: str | None = None
) -> dict[str, str] | None:
    """Each run's event-stream URL for this session, or ``None`` when the page should poll
    instead (the route is off or unreachable, or a run is not live here)."""
    if not runtime.get_settings().live_route or st.session_state.get(FALLBACK):
        return None
    granted: dict[str, str] = st.session_state.setdefault(STREAMS, {})
    base = _base_url_path()
    urls = {}
    for run_id in dict.fromkeys(run_ids):
        path = granted.get(run_id) or grant_stream(run_id, viewer, share_token)
        if path is None:
            return None
        granted[run_id] = path
        urls[run_id] = f"/{base}{path}" if base else path
    return urls


@functools.cache
def _base_url_path() -> str:
    """Streamlit's ``server.baseUrlPath``, read once: ``serve.py`` mounted the live routes
    under it at start-up, and each read takes Streamlit's config lock (``ui/config_reads.py``)."""
    return str(st.get_option("server.baseUrlPath") or "").strip("/")


def _fall_back() -> None:
    st.session_state[FALLBACK] = True


def _done() -> None:
    """Nothing to do: the run the component asked for (of the fragment that drew it, on
    Compare) sees the run has ended and reruns the page, which draws it finished."""


def live_answer(
    run_id: str,
    url: str,
    position: int,
    result: ModelResult,
    *,
    title: tuple[str, str],
    on_stop: Callable[[], None] | None = None,
) -> None:
    """The live component for ``result``'s column ``position`` of run ``run_id``: the whole
    column while it streams (``title``: the model's name and picker label, its status, live
    metrics, the answer) and, with ``on_stop``, a Stop button that calls it."""
    name, label = title
    data: dict[str, Any] = {
        "url": url,
        "index": result.index,
        "name": name,
        "label": label,
        "waiting": WAITING,
        "price": result.price_tokens,
        "stop": on_stop is not None,
    }
    # Flat strings: Streamlit checks each non-scalar value of a component's data for a
    # data frame on every page run (importing pandas the first time).
    data.update({f"code_{kind}": url for kind, url in code_urls(_base_url_path()).items()})
    _component(
        key=f"live-{run_id}-{result.index}-{position}",
        data=data,
        on_done_change=_done,
        on_fallback_change=_fall_back,
        on_stop_change=on_stop,
    )
