"""``/_fake/*``: script and inspect a fake running in another process, over plain HTTP.

None of these need an API key and none are recorded in ``requests``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_elumenta.elumenta import fake_state
from tests.fake_elumenta.errors import elumenta_error
from tests.fake_elumenta.scenarios import apply_scenario
from tests.fake_elumenta.scripts import ModelScript


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise elumenta_error(400, "bad_request", f"The body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise elumenta_error(400, "bad_request", "The body must be a JSON object.")
    return body


async def set_script(request: Request) -> Response:
    """``POST /_fake/script`` ``{"model": slug or "*", <ModelScript fields>}``."""
    fields = await _json_object(request)
    model = fields.pop("model", None)
    if not isinstance(model, str) or not model:
        raise elumenta_error(400, "bad_request", "'model' (a slug, or '*') is required.")
    try:
        script = ModelScript.from_dict(fields)
    except (TypeError, ValueError) as exc:
        raise elumenta_error(400, "bad_request", str(exc)) from exc
    fake_state(request).script(model, script)
    return JSONResponse({"model": model, "script": script.to_dict()})


async def reset(request: Request) -> Response:
    """``POST /_fake/reset``: scripts, requests, balance and quota back to their defaults."""
    fake_state(request).reset()
    return JSONResponse({"ok": True})


async def list_requests(request: Request) -> Response:
    """``GET /_fake/requests``: every recorded API request, oldest first, with
    ``answered_at`` (``time.perf_counter()`` as its last byte went out; ``null`` before)
    and ``first_text_at`` (as its first streamed answer text went out; ``null`` before, or
    for an answer that was not streamed)."""
    state = fake_state(request)
    return JSONResponse(
        [
            {
                **recorded.to_dict(),
                "answered_at": state.answered_at.get(index),
                "first_text_at": state.first_text_at.get(index),
            }
            for index, recorded in enumerate(state.requests)
        ]
    )


async def account(request: Request) -> Response:
    """``GET /_fake/state`` shows, ``POST /_fake/state`` changes the account (balance, plan…)."""
    state = fake_state(request)
    if request.method == "POST":
        try:
            state.update_account(await _json_object(request))
        except ValueError as exc:
            raise elumenta_error(400, "bad_request", str(exc)) from exc
    return JSONResponse(state.account_dict())


async def scenario(request: Request) -> Response:
    """``POST /_fake/scenario`` ``{"name": "demo"}``: add a named set of scripts."""
    name = (await _json_object(request)).get("name")
    try:
        apply_scenario(fake_state(request), str(name))
    except ValueError as exc:
        raise elumenta_error(400, "bad_request", str(exc)) from exc
    return JSONResponse({"scenario": name})


async def connection(request: Request) -> Response:
    """``GET /_fake/connection``: socket options of this very connection (``tcp_nodelay``)."""
    sock = request.scope["state"]["transport"].get_extra_info("socket")
    nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    return JSONResponse({"tcp_nodelay": bool(nodelay)})


routes = [
    Route("/script", set_script, methods=["POST"]),
    Route("/reset", reset, methods=["POST"]),
    Route("/requests", list_requests, methods=["GET"]),
    Route("/state", account, methods=["GET", "POST"]),
    Route("/scenario", scenario, methods=["POST"]),
    Route("/connection", connection, methods=["GET"]),
]
