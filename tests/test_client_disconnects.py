"""A browser that leaves while the server writes to it ends its connection without an
error reaching the server (``ui/client_disconnects.py``), over real WebSockets: uvicorn
serves an endpoint shaped like Streamlit's, which uses the socket again after it closed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fake_elumenta.process import served_in_thread
from ui.client_disconnects import MIDDLEWARE

ESCAPED: list[BaseException] = []
"""What left the app served below (past the middleware under test)."""


class Escapes:
    """Outermost middleware: records an exception on its way out to the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            ESCAPED.append(exc)
            raise


async def streamlit_like(websocket: WebSocket) -> None:
    """Streamlit 1.67's session loop when the browser left mid-send: the socket is closed
    (the send failed), the next read raises ``WebSocketDisconnected``, a ``RuntimeError``,
    which its text-frame handler takes for one and closes the socket again."""
    await websocket.accept()
    await websocket.close()
    try:
        await websocket.receive_bytes()
    except RuntimeError:
        await websocket.close()


async def broken(websocket: WebSocket) -> None:
    await websocket.accept()
    raise ValueError("a real bug")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = Starlette(
        routes=[WebSocketRoute("/left", streamlit_like), WebSocketRoute("/broken", broken)],
        middleware=[Middleware(Escapes), *MIDDLEWARE],
    )
    with served_in_thread(app) as base:
        yield base.replace("http://", "ws://")


async def _connect_until_closed(address: str) -> None:
    async with connect(address) as socket:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), 10)


def test_a_socket_used_after_the_browser_left_ends_without_an_error(url: str) -> None:
    ESCAPED.clear()
    asyncio.run(_connect_until_closed(f"{url}/left"))
    assert ESCAPED == []


def test_other_errors_of_a_websocket_still_reach_the_server(url: str) -> None:
    ESCAPED.clear()
    asyncio.run(_connect_until_closed(f"{url}/broken"))
    assert [type(exc) for exc in ESCAPED] == [ValueError]
