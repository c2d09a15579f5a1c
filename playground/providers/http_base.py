"""One base for the HTTP providers: a lazy pooled client, the SSE loop and the retry rules.

A provider over HTTP (Elumenta, an OpenAI-compatible server) only says what differs: its
paths, its request body and how one decoded SSE payload maps to events (:meth:`read_event`)
or a whole answer to a :class:`Generation` (:meth:`parse_generation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import httpx
from httpx_sse import EventSource
from pydantic import SecretStr

from playground.errors import (
    ELUMENTA_MESSAGES,
    APIStatusError,
    RateLimitInfo,
    StreamErrorEvent,
    StreamInterruptedError,
)
from playground.providers._http import (
    USER_AGENT,
    RetryPolicy,
    Sleep,
    make_limits,
    make_timeout,
    map_transport_error,
    pool_sizes,
    raise_for_status,
    read_to_end,
    shared_ssl_context,
    stream_with_retries,
    with_retries,
)
from playground.providers.asyncio_net import asyncio_transport
from playground.providers.base import (
    ContentDelta,
    Generation,
    GenerationRequest,
    ProviderEvent,
    StreamFinished,
    StreamStarted,
    is_content,
)

log = logging.getLogger(__name__)

DONE_SENTINEL = "[DONE]"


class SSEJson:
    """The JSON object of each SSE ``data`` line of a response, with its ``event:`` name.

    Stops at ``[DONE]`` (then reads the rest of the body briefly, so the connection goes
    back to the pool) and records that it saw it in :attr:`done`; skips keep-alive
    comments, empty data and data that is not a JSON object.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._events = EventSource(response).aiter_sse()
        self.done = False

    async def __aiter__(self) -> AsyncIterator[tuple[dict[str, Any], str]]:
        async for sse in self._events:
            data = sse.data.strip()
            if data == DONE_SENTINEL:
                self.done = True
                await read_to_end(self._events)
                return
            if not data:
                continue
            try:
                payload = json.loads(data)
            except json.JSONDecodeError:
                log.warning("Skipping an SSE event whose data is not JSON (%d chars)", len(data))
                continue
            if isinstance(payload, dict):
                yield payload, sse.event


def iter_sse_json(response: httpx.Response) -> SSEJson:
    """The JSON payloads of ``response``'s SSE stream (see :class:`SSEJson`)."""
    return SSEJson(response)


class HTTPOptions(TypedDict, total=False):
    """How a provider talks HTTP, passed on unchanged by every subclass's constructor."""

    connect_timeout_s: float
    read_timeout_s: float
    max_connections: int
    retry: RetryPolicy | None
    sleep: Sleep


@dataclass
class StreamProgress:
    """What one stream told us besides its text, filled in by :meth:`HTTPProvider.read_event`."""

    model: str = ""
    """The model asked for."""
    generation_id: str | None = None
    tokens_used: int | None = None
    balance_remaining: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = False
    ended: bool = False
    """The API sent its own end-of-answer event (then a missing ``[DONE]`` is harmless)."""

    def finished(self) -> StreamFinished:
        """The final event of a complete stream."""
        return StreamFinished(
            tokens_used=self.tokens_used,
            balance_remaining=self.balance_remaining,
            generation_id=self.generation_id,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            truncated=self.truncated,
        )


@dataclass(eq=False)
class _Pool:
    """One ``httpx.AsyncClient`` (its own connection pool) and how many requests use it."""

    client: httpx.AsyncClient
    busy: int = 0


class HTTPProvider:
    """A provider over HTTP + SSE with pooled ``httpx.AsyncClient`` objects (created on first
    use): ``max_connections`` spread over pools of at most ``POOL_CONNECTIONS``, each
    request on the least busy one, so none waits while the provider has room.

    Subclasses set ``name``, ``label``, ``target`` (the server named in error messages),
    ``stream_path`` and ``generate_path``, and implement :meth:`read_event` and
    :meth:`parse_generation`.
    """

    name: str
    label: str
    target: str
    stream_path: str
    generate_path: str
    error_messages: Mapping[type[APIStatusError], str] = ELUMENTA_MESSAGES
    """What an HTTP error without a message in its body says, written for this server."""

    def __init__(
        self,
        *,
        api_key: SecretStr | None,
        base_url: str,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        max_connections: int = 64,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._timeout = make_timeout(connect_timeout_s, read_timeout_s)
        self._pool_sizes = pool_sizes(max_connections)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._pools: list[_Pool] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    @contextlib.contextmanager
    def _http(self) -> Iterator[httpx.AsyncClient]:
        """The client of the least busy pool, counted busy until the block ends (the whole
        stream, for a streamed answer)."""
        if not self._pools:
            self._pools = [
                _Pool(
                    httpx.AsyncClient(
                        base_url=self._base_url,
                        timeout=self._timeout,
                        headers={"User-Agent": USER_AGENT},
                        # asyncio's own sockets under httpcore, not anyio's: see asyncio_net.
                        transport=asyncio_transport(make_limits(size), shared_ssl_context()),
                    )
                )
                for size in self._pool_sizes
            ]
        pool = min(self._pools, key=lambda p: p.busy)
        pool.busy += 1
        try:
            yield pool.client
        finally:
            pool.busy -= 1

    def _auth_headers(self) -> dict[str, str]:
        """The bearer key when there is one; a subclass may refuse to go on without it."""
        key = self._api_key.get_secret_value() if self._api_key else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def stream_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body of a streamed request."""
        return request.chat_body(stream=True)

    def read_event(
        self, payload: dict[str, Any], event_name: str, progress: StreamProgress
    ) -> ContentDelta | StreamStarted | StreamErrorEvent | None:
        """Map one SSE payload: text to yield, a ``StreamStarted`` carrying the generation's
        id, an in-band error (raised by the caller), or ``None``; usage and the end of the
        answer go into ``progress``."""
        raise NotImplementedError

    def parse_generation(
        self, payload: dict[str, Any], rate_limit: RateLimitInfo | None, model: str
    ) -> Generation:
        """Read a whole (non-streamed) answer to a request for ``model``."""
        raise NotImplementedError

    async def _get_json(self, path: str) -> tuple[Any, RateLimitInfo | None]:
        headers = self._auth_headers()

        async def call() -> tuple[Any, RateLimitInfo | None]:
            try:
                with self._http() as http:
                    response = await http.get(path, headers=headers)
            except httpx.TransportError as exc:
                raise map_transport_error(exc, self.target) from exc
            await raise_for_status(response, self.error_messages)
            return response.json(), RateLimitInfo.from_headers(response.headers)

        return await with_retries(call, self._retry, self._sleep, only_unprocessed=False)

    async def generate(self, request: GenerationRequest) -> Generation:
        """The whole answer at once.

        Retried per the retry policy only when the server surely did not process the
        request (not after a read timeout or a 5xx: it may have been billed already).
        """
        headers = self._auth_headers()
        body = request.chat_body(stream=False)

        async def call() -> Generation:
            try:
                with self._http() as http:
                    response = await http.post(self.generate_path, json=body, headers=headers)
            except httpx.TransportError as exc:
                raise map_transport_error(exc, self.target) from exc
            await raise_for_status(response, self.error_messages)
            payload = response.json()
            rate_limit = RateLimitInfo.from_headers(response.headers)
            payload = payload if isinstance(payload, dict) else {}
            return self.parse_generation(payload, rate_limit, request.model)

        return await with_retries(
            call,
            self._retry,
            self._sleep,
            only_unprocessed=True,
            requests_before=request.requests_before,
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderEvent, None]:
        """Stream one answer; retries only before the first content arrived."""
        headers = self._auth_headers()
        headers["Accept"] = "text/event-stream"
        body = self.stream_body(request)
        async for event in stream_with_retries(
            lambda: self._stream_once(body, headers),
            is_content,
            self._retry,
            self._sleep,
            request.requests_before,
        ):
            yield event

    async def _stream_once(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncGenerator[ProviderEvent, None]:
        received_content = False
        progress = StreamProgress(model=str(body.get("model", "")))
        try:
            with self._http() as http:
                async with http.stream(
                    "POST", self.stream_path, json=body, headers=headers
                ) as response:
                    await raise_for_status(response, self.error_messages)
                    rate_limit = RateLimitInfo.from_headers(response.headers)
                    yield StreamStarted(rate_limit=rate_limit)
                    payloads = iter_sse_json(response)
                    async for payload, event_name in payloads:
                        event = self.read_event(payload, event_name, progress)
                        if isinstance(event, StreamErrorEvent):
                            raise event
                        if isinstance(event, ContentDelta):
                            received_content = True
                            yield event
                        elif isinstance(event, StreamStarted):
                            yield StreamStarted(
                                generation_id=event.generation_id, rate_limit=rate_limit
                            )
                    # Without [DONE], only the API's own end event proves the answer is complete.
                    if not payloads.done and not progress.ended:
                        raise StreamInterruptedError(
                            "The connection closed before the answer was complete."
                        )
        except httpx.TransportError as exc:
            if not received_content and not progress.ended:
                raise map_transport_error(exc, self.target) from exc
            raise StreamInterruptedError(
                f"The connection dropped mid-answer ({type(exc).__name__}); "
                "the text received so far is kept.",
                code="timeout" if isinstance(exc, httpx.TimeoutException) else None,
            ) from exc
        yield progress.finished()

    async def aclose(self) -> None:
        """Close the pooled HTTP clients."""
        pools, self._pools = self._pools, []
        for pool in pools:
            await pool.client.aclose()
