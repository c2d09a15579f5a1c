"""Property tests of both SSE clients: however the bytes are cut, the same text comes out.

A tiny HTTP/1.1 server on 127.0.0.1 answers each request with exactly the bytes drawn,
one HTTP chunk per piece (httpx hands each chunk on as it arrives), so a cut can fall
inside a line, a line ending (CR | LF) or a multi-byte UTF-8 character.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from playground.catalog import load_catalog
from playground.providers._http import RetryPolicy
from playground.providers.base import (
    ContentDelta,
    GenerationRequest,
    Message,
    Provider,
    StreamFinished,
)
from playground.providers.elumenta import ElumentaProvider
from playground.providers.openai_compatible import OpenAICompatibleProvider


class ChunkedServer:
    """Answers every request with ``pieces`` as a chunked ``text/event-stream`` body."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChunkedServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._answer, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for piece in self.pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ChunkedServer]:
    with ChunkedServer() as running:
        yield running


# Multi-byte characters (2, 3 and 4 bytes in UTF-8), Unicode line separators that are no
# SSE line ends, and JSON's own escapes.
SPECIAL = ["é", "€", "😀", "\u2028", "\x85", '"', "\\", "\n", "\r", " ", "data: x", "[DONE]"]
TEXT = (
    st.lists(st.one_of(st.sampled_from(SPECIAL), st.text(max_size=4)), min_size=1, max_size=6)
    .map("".join)
    .filter(bool)
)
DELTAS = st.lists(TEXT, min_size=1, max_size=6)


@st.composite
def sse_body(draw: st.DrawFn, payloads: list[str]) -> list[bytes]:
    """``payloads`` as SSE events (random line ends, comments, event/id fields), cut at
    random byte offsets."""
    lines: list[str] = []
    for number, payload in enumerate(payloads):
        if draw(st.booleans()):
            lines.append(": keep-alive")
        if draw(st.booleans()):
            lines.append(f"id: {number}")
        lines += [f"data: {payload}", ""]
    text, previous = "", ""
    for line in lines:
        ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        if previous == "\r" and not line and ending == "\n":
            ending = "\r\n"  # CR then LF would be one line end, not an empty line
        text += line + ending
        previous = ending
    body = text.encode()
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=24)))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]


def _stream_text(provider: Provider) -> tuple[str, list[Any]]:
    async def read() -> tuple[str, list[Any]]:
        request = GenerationRequest(model="gpt-5", messages=(Message("user", "hi"),))
        events = [event async for event in provider.stream(request)]
        await provider.aclose()
        text = "".join(e.text for e in events if isinstance(e, ContentDelta))
        return text, events

    return asyncio.run(read())


def _elumenta(url: str) -> Provider:
    return ElumentaProvider(
        api_key=SecretStr("nb_test"),
        base_url=url,
        catalog=load_catalog(),
        retry=RetryPolicy(max_retries=0),
    )


def _openai_compatible(url: str) -> Provider:
    return OpenAICompatibleProvider(
        base_url=url, api_key=None, model_names=["gpt-5"], retry=RetryPolicy(max_retries=0)
    )


def _elumenta_payloads(deltas: list[str]) -> list[str]:
    return [
        json.dumps({"type": "generation_start", "id": "gen_1", "model": "gpt-5"}),
        *(json.dumps({"type": "content_delta", "delta": d}, ensure_ascii=False) for d in deltas),
        json.dumps({"type": "generation_end", "id": "gen_1", "tokens_used": 3}),
        "[DONE]",
    ]


def _openai_payloads(deltas: list[str]) -> list[str]:
    chunks = [{"choices": [{"delta": {"content": d}}]} for d in deltas]
    return [*(json.dumps(c, ensure_ascii=False) for c in chunks), "[DONE]"]


@pytest.mark.parametrize(
    ("provider", "payloads"),
    [(_elumenta, _elumenta_payloads), (_openai_compatible, _openai_payloads)],
    ids=["elumenta", "openai_compatible"],
)
@given(data=st.data(), deltas=DELTAS)
def test_any_cut_of_the_stream_gives_the_same_text(
    server: ChunkedServer,
    provider: Callable[[str], Provider],
    payloads: Callable[[list[str]], list[str]],
    data: st.DataObject,
    deltas: list[str],
) -> None:
    server.pieces = data.draw(sse_body(payloads(deltas)))

    text, events = _stream_text(provider(server.url))

    assert text == "".join(deltas)
    assert isinstance(events[-1], StreamFinished)
