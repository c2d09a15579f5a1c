"""HTTP plumbing shared by the HTTP providers: timeouts, error mapping, retry policy."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from playground.errors import (
    ELUMENTA_MESSAGES,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    error_from_response,
)

USER_AGENT = "elumenta-playground/0.1"

T = TypeVar("T")
E = TypeVar("E")

Sleep = Callable[[float], Awaitable[None]]
# How long to wait for the end of a stream's body after its [DONE]: it normally follows at once.
BODY_END_WAIT_S = 0.25


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a retryable failure before any content arrived.

    ``max_retries + 1`` is one answer's whole retry budget: the requests it may send, shared
    with every layer that retries (a batch re-queueing a rate-limited cell passes the
    requests already sent on, see ``GenerationRequest.requests_before``).
    """

    max_retries: int = 3
    max_wait_s: float = 30.0
    base_backoff_s: float = 0.5

    def delay_for(
        self, attempt: int, error: APIError, *, only_unprocessed: bool = False
    ) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or ``None`` to give up.

        ``only_unprocessed`` (a non-streamed request that bills): retry only when the API
        surely did not process it (``error.unprocessed``); after a read timeout, a dropped
        answer or a 5xx it may already have been billed. Honours the server's
        ``retry_after``; gives up when it is longer than ``max_wait_s`` (a user would
        rather see "retry in 40 min" than a frozen column).
        """
        if not error.retryable or attempt > self.max_retries:
            return None
        if only_unprocessed and not error.unprocessed:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_wait_s else None
        backoff = self.base_backoff_s * float(2 ** (attempt - 1))
        return min(self.max_wait_s, backoff * (0.5 + random.random()))


KEEPALIVE_EXPIRY_S = 4.0
"""How long an idle pooled connection is reused: under the 5 s after which common servers
(uvicorn, Node) close idle ones. At httpx's default of 5 s, a request sent as the server
closed its end met a reset ("Could not reach the API (ReadError)") about once in a few
thousand requests under load."""


MAX_IDLE_CONNECTIONS = 16
"""Idle connections a pool keeps for the next requests. httpcore 1.0's pool walks every
connection (polling each idle socket) once per idle connection whenever a request starts
or ends: with 64 kept, that bookkeeping took 14 % of a busy app process and the runner's
time to first token rose from 0.18 to 0.57 s (20 load users); reconnecting costs less."""

POOL_CONNECTIONS = MAX_IDLE_CONNECTIONS
"""Connections per pool: a provider allowed more streams at once spreads them over several
pools of at most this many. httpcore 1.0 walks all of a pool's connections whenever a
request starts or ends, and closes an idle connection as soon as the pool holds more than
its keep-alive count in all (it counts every connection, not the idle ones): one pool of
128 streams walked 128 connections per event and reconnected for nearly every request."""


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS settings every pooled client uses (httpx's defaults: certifi's CA bundle, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``), made once per process.

    Building them loads the CA bundle (~50 ms); a client given none builds its own, and a
    provider has several pools (:func:`pool_sizes`): ~0.4 s before its first request."""
    return httpx.create_ssl_context()


def pool_sizes(max_connections: int) -> list[int]:
    """How ``max_connections`` are split into pools of at most :data:`POOL_CONNECTIONS`
    (as even as can be)."""
    pools = max(1, -(-max_connections // POOL_CONNECTIONS))
    size, extra = divmod(max(1, max_connections), pools)
    return [size + (index < extra) for index in range(pools)]


def make_limits(max_connections: int) -> httpx.Limits:
    """A connection pool for ``max_connections`` streams at once; a few stay open between
    requests, so the next comparison mostly reuses them instead of connecting again."""
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=min(MAX_IDLE_CONNECTIONS, max_connections),
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )


def make_timeout(connect_s: float, read_s: float) -> httpx.Timeout:
    """An httpx timeout: ``read_s`` is the longest silence allowed between two chunks."""
    return httpx.Timeout(connect=connect_s, read=read_s, write=connect_s, pool=connect_s)


async def raise_for_status(
    response: httpx.Response, messages: Mapping[type[APIStatusError], str] = ELUMENTA_MESSAGES
) -> None:
    """Raise the typed API error for an HTTP error answer (reads its body first); a body
    without a message gets the one ``messages`` has for its status."""
    if response.status_code < 400:
        return
    raw = await response.aread()
    try:
        body: Any = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    raise error_from_response(response.status_code, body, response.headers, messages)


async def read_to_end(events: AsyncIterator[Any]) -> None:
    """Read what is left of a response after its [DONE], briefly, ignoring it.

    A response closed with its body unread also closes its connection: every request
    would open a new one (a TCP and TLS handshake, in the runner's event loop). Read to
    the end, the connection goes back to the client's pool. A body that does not end
    within ``BODY_END_WAIT_S`` is given up on, and its connection closed.
    """
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(BODY_END_WAIT_S):
            async for _ in events:
                pass


# Failures before the request left this machine: the API cannot have processed it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def map_transport_error(exc: httpx.TransportError, what: str) -> APIError:
    """Turn an httpx transport failure into the playground's connection/timeout error,
    ``unprocessed`` only when the request never reached the server."""
    unsent = isinstance(exc, _NOT_SENT)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{what} timed out ({type(exc).__name__}).", unprocessed=unsent)
    return APIConnectionError(f"Could not reach {what} ({type(exc).__name__}).", unprocessed=unsent)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    *,
    only_unprocessed: bool,
    requests_before: int = 0,
) -> T:
    """Run ``call`` and retry it per ``policy`` on retryable API errors.

    ``only_unprocessed``: ``True`` for a request that bills (``POST /generate``): it is
    retried only when the API surely did not process it (:meth:`RetryPolicy.delay_for`).
    ``requests_before``: requests an earlier try already sent, out of the same budget.
    The error raised in the end says how many requests were sent in all.
    """
    attempt = requests_before
    while True:
        try:
            return await call()
        except APIError as exc:
            attempt += 1
            delay = policy.delay_for(attempt, exc, only_unprocessed=only_unprocessed)
            if delay is None:
                exc.requests_sent = attempt
                raise
            await sleep(delay)


async def stream_with_retries(
    open_stream: Callable[[], AsyncGenerator[E, None]],
    is_content: Callable[[E], bool],
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    requests_before: int = 0,
) -> AsyncGenerator[E, None]:
    """Yield the events of ``open_stream()``, reopening it per ``policy`` on retryable errors.

    Only retries while no content event has been yielded: after that a retry would show
    (and bill) a second answer glued onto the first. ``requests_before`` and the final
    error's ``requests_sent`` are as for :func:`with_retries`.
    """
    attempt = requests_before
    received_content = False
    while True:
        try:
            async for event in open_stream():
                received_content = received_content or is_content(event)
                yield event
            return
        except APIError as exc:
            attempt += 1
            delay = None if received_content else policy.delay_for(attempt, exc)
            if delay is None:
                exc.requests_sent = attempt
                raise
            await sleep(delay)
