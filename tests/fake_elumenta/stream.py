"""Scripted streaming: a timeline of due-timed frames, and the ASGI responses that play it.

The timeline is a plain generator (easy to test, side effects such as charging happen when
the writer pulls past the last delta); the responses do the I/O: precise sleeps, batching,
byte splitting, and on purpose dropping or stalling the connection.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import socket
import struct
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.fake_elumenta.scripts import ModelScript
from tests.fake_elumenta.sse import DONE, SSEFormat


class Ending(enum.Enum):
    """How a scripted answer ends on the wire."""

    COMPLETE = "complete"
    DROP = "drop"
    HANG = "hang"
    ERROR = "error"


@dataclass(frozen=True)
class Frame:
    """Bytes to send once ``time.perf_counter()`` reaches ``due``."""

    due: float
    data: bytes


@dataclass(frozen=True)
class Stop:
    """At ``due``, end the answer abnormally (drop or hang)."""

    due: float
    ending: Ending


StreamItem = Frame | Stop


class EventRenderer(Protocol):
    """The API-specific payloads of one streamed answer (Elumenta or OpenAI style)."""

    def start(self) -> dict[str, Any]:
        """The first event, sent as soon as the request is accepted."""
        ...

    def delta(self, text: str) -> dict[str, Any]:
        """One piece of content."""
        ...

    def end(self) -> dict[str, Any] | list[dict[str, Any]] | None:
        """The closing event(s) after the last delta (the answer is complete: charge it)."""
        ...

    def error(self) -> dict[str, Any]:
        """An in-band error event."""
        ...

    def fail(self) -> None:
        """The answer will not complete (dropped, stalled or errored)."""
        ...


def sse_format(script: ModelScript) -> SSEFormat:
    """The SSE wire format a script asks for."""
    return SSEFormat(
        line_ending=script.line_ending,
        event_field=script.sse_event_field,
        id_field=script.sse_id_field,
        multiline_data=script.multiline_data,
    )


def delta_due(script: ModelScript, received_at: float, index: int) -> float:
    """When delta ``index`` is due: ``ttft_ms + index * delay_ms`` after the request arrived."""
    return received_at + (script.ttft_ms + index * script.delay_ms) / 1000.0


def timeline(
    script: ModelScript, deltas: list[str], received_at: float, renderer: EventRenderer
) -> Generator[StreamItem, None, None]:
    """Every frame of a scripted SSE answer, in order, with the time each is due."""
    fmt = sse_format(script)
    event_ids = itertools.count(1)

    def event(payload: dict[str, Any]) -> bytes:
        return fmt.event(payload, next(event_ids))

    yield Frame(received_at, event(renderer.start()))
    failure = first_failure(script, len(deltas))
    stop_index = failure[0] if failure is not None else len(deltas)
    previous_due = received_at
    for index, text in enumerate(deltas[:stop_index]):
        due = delta_due(script, received_at, index)
        if script.keepalive_every and index % script.keepalive_every == 0:
            # Keep-alives go out in the idle gap before a delta, as a real proxy sends them.
            yield Frame((previous_due + due) / 2, fmt.comment())
        yield Frame(due, event(renderer.delta(text)))
        previous_due = due
    if failure is not None:
        renderer.fail()
        due = delta_due(script, received_at, stop_index)
        if failure[1] is Ending.ERROR:
            yield Frame(due, event(renderer.error()))
            if not script.omit_done:
                yield Frame(due, fmt.event(DONE))
        else:
            yield Stop(due, failure[1])
        return
    end_due = delta_due(script, received_at, max(len(deltas) - 1, 0))
    end = renderer.end()
    if end is not None and not script.omit_generation_end:
        for payload in end if isinstance(end, list) else [end]:
            yield Frame(end_due, event(payload))
    if not script.omit_done:
        yield Frame(end_due, fmt.event(DONE))


#: epoll rounds timeouts up to whole milliseconds; the last stretch is spun instead.
_SPIN_S = 0.0015


async def sleep_until(due: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``due`` (no-op when it already has).

    Sub-millisecond accurate: a timer sleep for all but the last 1.5 ms, then a loop of
    zero-length sleeps, which keeps serving other connections while it waits.
    """
    delay = due - time.perf_counter()
    if delay > _SPIN_S:
        await asyncio.sleep(delay - _SPIN_S)
    while time.perf_counter() < due:
        await asyncio.sleep(0)


def first_failure(script: ModelScript, n_deltas: int) -> tuple[int, Ending] | None:
    """Where the answer fails: ``(delta index, ending)``, or ``None`` when it completes.

    The earliest scripted point wins (drop before hang before error at the same index);
    a point beyond the last delta never happens.
    """
    points = [
        (index, order, ending)
        for order, (index, ending) in enumerate(
            (
                (script.drop_after_deltas, Ending.DROP),
                (script.hang_after_deltas, Ending.HANG),
                (script.error_event_after, Ending.ERROR),
            )
        )
        if index is not None and index <= n_deltas
    ]
    if not points:
        return None
    index, _, ending = min(points, key=lambda point: (point[0], point[1]))
    return index, ending


async def wait_whole_answer(script: ModelScript, n_deltas: int, received_at: float) -> Ending:
    """Sleep as long as the streamed answer would take; how it ends (same failure points)."""
    failure = first_failure(script, n_deltas)
    if failure is not None:
        index, ending = failure
        await sleep_until(delta_due(script, received_at, index))
        return ending
    await sleep_until(delta_due(script, received_at, max(n_deltas - 1, 0)))
    return Ending.COMPLETE


async def abort_connection(scope: Scope, *, reset: bool) -> None:
    """Close the client's TCP connection mid-response: no chunked terminator, no more data.

    Waits until already-written bytes have left, so the client gets everything sent before
    the drop; ``reset`` makes the close a TCP RST instead of a FIN.
    """
    transport: asyncio.Transport = scope["state"]["transport"]
    while transport.get_write_buffer_size() and not transport.is_closing():
        await asyncio.sleep(0.001)
    if reset:
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone (or the server closed the connection)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _watch_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    await wait_for_disconnect(receive)
    disconnected.set()


def _body(data: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


class ScriptedStream(Response):
    """A ``text/event-stream`` response that plays a :func:`timeline` with exact timing."""

    media_type = "text/event-stream"

    def __init__(
        self,
        items: Generator[StreamItem, None, None],
        script: ModelScript,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.items = items
        self.script = script
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, disconnected))
        try:
            ending = await self._write(send, disconnected)
            if ending is Ending.COMPLETE:
                await send(_body(b"", more=False))
            elif ending is Ending.DROP:
                await abort_connection(scope, reset=self.script.drop_with_reset)
                await disconnected.wait()
            elif ending is Ending.HANG:
                await disconnected.wait()
        finally:
            watcher.cancel()

    async def _write(self, send: Send, disconnected: asyncio.Event) -> Ending | None:
        """Send every frame on time; the ending, or ``None`` when the client went away."""
        pending: list[bytes] = []
        for item in self.items:
            await sleep_until(item.due)
            if disconnected.is_set():
                return None
            if isinstance(item, Stop):
                await self._flush(send, pending)
                return item.ending
            pending.append(item.data)
            if len(pending) >= self.script.events_per_write:
                await self._flush(send, pending)
        await self._flush(send, pending)
        return Ending.COMPLETE

    async def _flush(self, send: Send, pending: list[bytes]) -> None:
        """Write the pending frames as one write, or as ``split_bytes``-sized writes."""
        if not pending:
            return
        data = b"".join(pending)
        pending.clear()
        step = self.script.split_bytes or len(data)
        for start in range(0, len(data), step):
            await send(_body(data[start : start + step]))


class NoAnswer(Response):
    """No HTTP response at all: drop the connection, or keep it open silently."""

    def __init__(self, ending: Ending, *, reset: bool = False) -> None:
        self.ending = ending
        self.reset = reset
        self.status_code = 200
        self.background = None
        self.raw_headers = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ending is Ending.DROP:
            await abort_connection(scope, reset=self.reset)
        await wait_for_disconnect(receive)
