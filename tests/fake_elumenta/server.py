"""Run the fake on a real socket: uvicorn (h11) in a daemon thread, one event loop of its own."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tests.fake_elumenta.app import build_app
from tests.fake_elumenta.state import FakeState


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with ``TCP_NODELAY`` forced and the transport exposed to the app.

    asyncio's selector transport already sets ``TCP_NODELAY``; setting it again keeps the
    timing guarantee independent of the event loop. The transport goes into the scope's
    ``state`` so a script can abort the connection on purpose.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A per-connection copy: uvicorn copies app_state into every request's scope["state"].
        self.app_state = {**self.app_state, "transport": transport}
        super().connection_made(transport)  # type: ignore[arg-type]


class FakeElumenta(FakeState):
    """A fake Elumenta server on ``127.0.0.1`` (``port=0`` picks a free port).

    Use as ``with FakeElumenta() as fake:`` or ``fake.start()`` / ``fake.stop()``. Every
    :class:`FakeState` attribute (``balance``, ``plan``, ``quota_hour``…) can be changed
    while it runs.
    """

    def __init__(
        self, port: int = 0, *, host: str = "127.0.0.1", log_level: str = "warning", **account: Any
    ) -> None:
        super().__init__(**account)
        self.host = host
        self.log_level = log_level
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The bound port (only once started)."""
        if self._port is None:
            raise RuntimeError("FakeElumenta is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """The Elumenta API root, e.g. ``http://127.0.0.1:54321/api/v2``."""
        return f"http://{self.host}:{self.port}/api/v2"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI-compatible root, e.g. ``http://127.0.0.1:54321/openai/v1``."""
        return f"http://{self.host}:{self.port}/openai/v1"

    @property
    def control_url(self) -> str:
        """The ``/_fake`` control root."""
        return f"http://{self.host}:{self.port}/_fake"

    def start(self, timeout: float = 10.0) -> FakeElumenta:
        """Bind, serve in a daemon thread, and return once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("FakeElumenta is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self),
            http=NoDelayH11Protocol,
            loop="asyncio",
            lifespan="off",
            log_level=self.log_level,
            access_log=self.log_level in ("debug", "info"),
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"fake-elumenta:{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("FakeElumenta did not start")
            time.sleep(0.005)
        return self

    def _run(self, sock: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        try:
            asyncio.run(serve())
        finally:
            sock.close()

    def _abort_connections(self) -> None:
        """Cut every open connection, so stalled (``hang_after_deltas``) streams end too."""
        assert self._server is not None
        for protocol in list(self._server.server_state.connections):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.abort()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread; open connections are cut."""
        if self._server is None or self._thread is None:
            return
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._abort_connections)
        self._server.should_exit = True
        self._thread.join(timeout)
        self._server = None
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeElumenta:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
