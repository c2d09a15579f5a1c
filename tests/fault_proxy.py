"""A TCP proxy that fails on command, to take a database away without touching its server.

Listens on 127.0.0.1 (a free port) and forwards every connection to ``upstream``. A test
points a database URL through it (:func:`through`), then:

- :meth:`FaultProxy.cut` aborts every open connection (what clients see when the server
  restarts or fails over);
- :meth:`FaultProxy.refuse` closes new connections at once, for ``seconds`` or until
  :meth:`FaultProxy.restore` (the server is still down);
- :meth:`FaultProxy.stall` stops forwarding bytes until :meth:`FaultProxy.restore`;
- :meth:`FaultProxy.lose_next_commit_answer` lets the next ``COMMIT`` through and cuts
  that connection when the server answers it: committed, but the client never hears so.

``benchmarks/bench_outage.py`` uses it the same way.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Self

from sqlalchemy.engine import make_url


class FaultProxy:
    """A forwarding proxy to ``upstream`` (host, port) with faults on command."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refuse_until = 0.0
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._lose_commit_answer = False
        self.commit_answers_lost = 0
        self.accepted = 0
        self.refused = 0
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    # -- faults ----------------------------------------------------------------------------

    def cut(self) -> None:
        """Abort every open connection now (a TCP reset to both sides)."""
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _reset(sock)

    def refuse(self, seconds: float | None = None) -> None:
        """Close new connections at once, for ``seconds`` (``None``: until :meth:`restore`)."""
        with self._lock:
            self._refuse_until = float("inf") if seconds is None else time.monotonic() + seconds

    def outage(self, seconds: float | None = None) -> None:
        """The server goes away: open connections cut, new ones refused (see :meth:`refuse`)."""
        self.refuse(seconds)
        self.cut()

    def stall(self) -> None:
        """Stop forwarding bytes (connections stay open) until :meth:`restore`."""
        self._flowing.clear()

    def lose_next_commit_answer(self) -> None:
        """Forward the next ``COMMIT`` a client sends, then cut its connection instead of
        forwarding the server's answer (a connection lost right after the commit)."""
        with self._lock:
            self._lose_commit_answer = True

    def restore(self) -> None:
        """Forward again and accept new connections."""
        with self._lock:
            self._refuse_until = 0.0
        self._flowing.set()

    @property
    def refusing(self) -> bool:
        """Whether new connections are refused now."""
        with self._lock:
            return time.monotonic() < self._refuse_until

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        self._flowing.set()
        self._listener.close()
        self.cut()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- forwarding ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                self.refused += 1
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            self.accepted += 1
            with self._lock:
                self._open.update((client, server))
            committing = threading.Event()  # this connection's COMMIT answer is to be lost
            for source, target, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, target, upstream, committing), daemon=True
                ).start()

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        upstream: bool,
        committing: threading.Event,
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                if upstream and b"COMMIT" in data.upper():
                    with self._lock:
                        if self._lose_commit_answer:
                            self._lose_commit_answer = False
                            committing.set()
                elif not upstream and committing.is_set():
                    self.commit_answers_lost += 1
                    break  # the server committed; its answer goes nowhere
                target.sendall(data)
        except OSError:
            pass  # cut, or the other side went away: both ends close below
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            for sock in (source, target):
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    with suppress(OSError):
        # Linger 0: close() sends a reset, as a crashed or restarted server's host does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        # Wakes a pump blocked in recv() on it: close() alone would not, and the socket
        # would stay open (its peer waiting forever) until that recv() returned.
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


def through(proxy: FaultProxy, url: str) -> str:
    """``url`` (a PostgreSQL URL) pointed at ``proxy`` instead of its server."""
    return (
        make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )


def upstream_of(url: str) -> tuple[str, int]:
    """The (host, port) a PostgreSQL URL connects to."""
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


@contextmanager
def proxied(url: str) -> Iterator[tuple[FaultProxy, str]]:
    """A proxy in front of ``url``'s server, and ``url`` pointed through it."""
    with FaultProxy(upstream_of(url)) as proxy:
        yield proxy, through(proxy, url)
