"""The app's own route that streams one run's events to the browser (Server-Sent Events).

``GET /_run/<run_id>/events?token=…`` (or the token in an ``X-Stream-Token`` header) answers
``text/event-stream``: every event after ``Last-Event-ID`` (the header a browser's
EventSource sends when it reconnects, or ``?last_event_id=``), then each new one as the
runner publishes it, until the run's ``done`` event. Server-Sent Events rather than a
websocket: the stream is one-way, EventSource reconnects by itself and resumes from the
last id it saw, and it is plain HTTP that proxies pass once buffering is off.

A missing, wrong or other user's token gets the same 404 as a run that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

# Streamlit's own reading of its signed sign-in cookie (what st.user is built from).
from streamlit.web.server.starlette.starlette_websocket import (
    _get_signed_cookie_with_chunks,
    _parse_decoded_user_cookie,
)

from playground.errors import PlaygroundError
from playground.live_feed import EventFeed
from playground.presenters.live_stream import RETRY_MS, ROUTE_PREFIX, encode, open_feed
from playground.services import hosted, runtime

KEEPALIVE_S = 15.0
"""A comment line this often keeps idle proxies from closing a quiet stream."""
BATCH_S = 0.015
"""After sending, events are gathered this long into the next message: about one message
per frame of the browser however fast the models stream (the first one goes at once)."""
TOKEN_HEADER = "X-Stream-Token"  # noqa: S105  (a header name, not a secret)
_NOT_FOUND = "Not found"


def live_routes(base_url_path: str = "") -> list[BaseRoute]:
    """The routes the app serves next to Streamlit's own (see ``serve.py``), under
    Streamlit's ``server.baseUrlPath`` like its own routes."""
    base = f"/{base_url_path.strip('/')}" if base_url_path.strip("/") else ""
    return [Route(f"{base}{ROUTE_PREFIX}{{run_id}}/events", run_events, methods=["GET"])]


async def run_events(request: Request) -> Response:
    """Stream one run's events to a requester holding its token; 404 for anything else."""
    token = request.query_params.get("token") or request.headers.get(TOKEN_HEADER)
    try:
        feed = open_feed(request.path_params["run_id"], token, _requester(request))
    except PlaygroundError:  # nobody is signed in
        feed = None
    if feed is None:
        return PlainTextResponse(_NOT_FOUND, status_code=404)
    last = request.headers.get("Last-Event-ID") or request.query_params.get("last_event_id")
    return StreamingResponse(
        _events(feed, _event_id(last)),
        media_type="text/event-stream",
        # no-transform and X-Accel-Buffering: a proxy must pass each event on at once.
        headers={"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"},
    )


def _event_id(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _requester(request: Request) -> str | None:
    """The signed-in user's subject (hosted) or ``None`` (local); a ``PlaygroundError``
    when nobody is signed in."""
    settings = runtime.get_settings()
    if not settings.hosted:
        return None
    if settings.auth_mode == "oidc":
        identity = hosted.oidc_identity(_oidc_user(request))
    else:
        peer = request.client.host if request.client else None
        identity = hosted.proxy_identity(dict(request.headers), peer)
    return identity.subject


def _oidc_user(request: Request) -> dict[str, Any]:
    """What ``st.user`` holds for this request's browser: Streamlit's signed user cookie,
    issued for this app's host (the scheme is the one the cookie was issued for: behind a
    TLS proxy the app itself sees plain HTTP)."""
    raw = _get_signed_cookie_with_chunks(dict(request.cookies), USER_COOKIE_NAME)
    if raw is None:
        return {}
    try:
        payload = json.loads(raw)
    except ValueError:
        return {}
    claimed = urlsplit(str(payload.get("origin") or "")) if isinstance(payload, dict) else None
    if claimed is None:
        return {}
    return _parse_decoded_user_cookie(raw, f"{claimed.scheme}://{request.headers.get('host', '')}")


async def _events(feed: EventFeed, after: int) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    pending = False

    def wake() -> None:  # called on the runner's thread after each event
        nonlocal pending
        if not pending:
            pending = True
            with contextlib.suppress(RuntimeError):  # this stream's loop has closed
                loop.call_soon_threadsafe(woken.set)

    unsubscribe = feed.subscribe(wake)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            pending = False
            woken.clear()
            events, ended = feed.read(after)
            if events:
                after = events[-1].id
                yield encode(events)
                if not ended:
                    await asyncio.sleep(BATCH_S)
            elif ended:
                return
            else:
                try:
                    await asyncio.wait_for(woken.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
    finally:
        unsubscribe()
