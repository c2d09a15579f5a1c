"""The fake's Starlette app: the three route groups plus recording and rate-limit headers."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.fake_elumenta import control, elumenta, openai_compat
from tests.fake_elumenta.errors import FakeApiError, handle
from tests.fake_elumenta.state import FakeState, RecordedRequest

API_PREFIX = "/api/v2"
CONTROL_PREFIX = "/_fake"
# Bytes of a streamed answer's text event: Elumenta's content_delta, or an OpenAI chunk
# whose delta carries content (its first chunk may carry only the role).
TEXT_EVENTS = re.compile(rb'content_delta|"delta":\s*\{[^}]*"content"')


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


class FakeMiddleware:
    """Stamps each request's arrival time, records API requests (Elumenta's and the
    OpenAI-compatible ones) with when their answer ended, adds ``X-RateLimit-*`` to Elumenta's.

    The body is read up front (so the record has it) and replayed to the app.
    """

    def __init__(self, app: ASGIApp, state: FakeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        body = await _read_body(receive)
        scope.setdefault("state", {})["received_at"] = arrived
        path: str = scope["path"]
        index = len(self.state.requests)
        if not path.startswith(CONTROL_PREFIX):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host, port = scope.get("client") or ("", 0)
            self.state.requests.append(
                RecordedRequest(
                    scope["method"],
                    path,
                    headers,
                    _parse_json(body),
                    body,
                    arrived,
                    f"{host}:{port}",
                )
            )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start" and path.startswith(API_PREFIX):
                extra = [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in self.state.rate_limit_headers().items()
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            if (
                message["type"] == "http.response.body"
                and index not in self.state.first_text_at
                and TEXT_EVENTS.search(message.get("body", b""))
            ):
                self.state.first_text_at[index] = time.perf_counter()
            if message["type"] == "http.response.body" and not message.get("more_body"):
                # Before sending: the client cannot have the whole answer any earlier.
                self.state.answered_at[index] = time.perf_counter()
            await send(message)

        recorded = not path.startswith(CONTROL_PREFIX)
        await self.app(scope, replay, send_recorded if recorded else send)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) in the Elumenta error format."""
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == 404 else "bad_request"
    body = {"error": code, "message": exc.detail, "details": {"path": request.url.path}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def build_app(state: FakeState) -> Starlette:
    """An ASGI app serving ``state``: ``/api/v2``, ``/openai/v1`` and ``/_fake``."""
    app = Starlette(
        routes=[
            Mount(API_PREFIX, routes=elumenta.routes),
            Mount("/openai/v1", routes=openai_compat.routes),
            Mount(CONTROL_PREFIX, routes=control.routes),
        ],
        middleware=[Middleware(FakeMiddleware, state=state)],
        exception_handlers={FakeApiError: handle, HTTPException: _http_error},
    )
    app.state.fake = state
    return app
