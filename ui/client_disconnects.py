"""A browser that leaves while the server is writing to it is not an error of the app.

Streamlit (1.67) serves each session's WebSocket in a loop that reads the browser's
messages. When the browser goes away while the server is sending, Starlette marks the
socket closed; the loop's next read then raises ``WebSocketDisconnected``, which is a
``RuntimeError``, and Streamlit's handler for a *text* frame (``except RuntimeError``)
catches it and closes the socket again, which raises once more. The session is cleaned
up by then (Streamlit's ``finally`` ran), but the exception reaches uvicorn, which logs
"Exception in ASGI application" with a traceback for a tab that was simply closed.

:class:`QuietClientDisconnects` ends such a connection with one line in the log instead.
It only touches WebSocket connections and only that exception: any other error, and any
error of an HTTP request, goes on as before.
"""

from __future__ import annotations

import logging

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnected

_LOGGER = logging.getLogger(__name__)


class QuietClientDisconnects:
    """ASGI middleware: a WebSocket used after it was closed ends the connection quietly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except WebSocketDisconnected as exc:
            _LOGGER.info("A browser left while the server was sending to it (%s)", exc)


MIDDLEWARE = [Middleware(QuietClientDisconnects)]
"""The middleware ``serve.py`` serves the app with."""
