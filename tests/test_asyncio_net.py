"""The model streams' network layer (playground/providers/asyncio_net.py) over real sockets:
TLS with a certificate checked, timeouts, closed and refused connections, a connection the
server closed while idle in the pool, bodies larger than the read-ahead in both directions.

The servers here are plain asyncio servers on 127.0.0.1 written for each case (the fake
Elumenta server's own tests run through this layer as well).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from playground.providers._http import make_limits
from playground.providers.asyncio_net import _HIGH_WATER, asyncio_transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[int]]]:
    """A server on a free port running ``handler`` per connection; yields the port and the
    count of connections it accepted (a one-item list)."""
    accepted = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield srv.sockets[0].getsockname()[1], accepted
    finally:
        srv.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request's body (Content-Length only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


def response(body: bytes, *, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), connection, body)


def client(port: int, scheme: str = "http", **kwargs: object) -> httpx.AsyncClient:
    context = kwargs.pop("ssl_context", None) or ssl.create_default_context()
    assert isinstance(context, ssl.SSLContext)
    return httpx.AsyncClient(
        base_url=f"{scheme}://localhost:{port}",
        transport=asyncio_transport(make_limits(4), context),
        timeout=kwargs.pop("timeout", 5.0),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each request on the connection with its own body."""
    while True:
        try:
            body = await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.write(response(body))
        await writer.drain()


async def test_a_request_and_its_answer_over_tls_with_the_certificate_checked(
    certificate: tuple[Path, Path],
) -> None:
    cert_path, key_path = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert_path, key_path)
    trusting = ssl.create_default_context(cafile=str(cert_path))
    async with server(echo, server_side) as (port, accepted):
        async with client(port, "https", ssl_context=trusting) as http:
            first = await http.post("/", content=b"over tls")
            second = await http.post("/", content=b"again")
        assert (first.content, second.content) == (b"over tls", b"again")
        assert accepted == [1]  # the second request reused the connection
        # A certificate nobody vouched for is refused before anything is sent.
        async with client(port, "https") as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.post("/", content=b"secret")


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request(reader)
        writer.write(response(body))
        await writer.drain()
        # Keep-alive as far as the client knows, then closed: a server's idle timeout.

    async with server(once) as (port, accepted), client(port) as http:
        assert (await http.post("/", content=b"one")).content == b"one"
        await asyncio.sleep(0.1)  # the close reaches the client's loop
        assert (await http.post("/", content=b"two")).content == b"two"
        assert accepted == [2]


async def test_silence_longer_than_the_read_timeout_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with server(silent) as (port, _), client(port, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/", content=b"anyone?")


async def test_a_connection_cut_mid_answer_is_a_transport_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    async with server(cut) as (port, _), client(port) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/", content=b"x")


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with server(echo) as (port, _):
        pass  # the port is free again
    async with client(port) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_bodies_larger_than_the_read_ahead_arrive_whole_both_ways() -> None:
    big = bytes(range(256)) * (3 * _HIGH_WATER // 256)

    async def slow_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request(reader)
        # Written in one go: the client reads past its read-ahead, pausing and resuming.
        writer.write(response(body))
        await writer.drain()

    async with server(slow_echo) as (port, _), client(port) as http:
        got = await http.post("/", content=big)
    assert got.content == big


async def test_a_streamed_answer_arrives_chunk_by_chunk() -> None:
    async def chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for word in (b"one ", b"two ", b"three"):
            writer.write(b"%x\r\n%b\r\n" % (len(word), word))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with (
        server(chunks) as (port, _),
        client(port) as http,
        http.stream("POST", "/", content=b"go") as answer,
    ):
        parts = [part async for part in answer.aiter_raw()]
    assert b"".join(parts) == b"one two three"
    assert len(parts) == 3  # each as it came, not gathered at the end
