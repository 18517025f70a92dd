"""A device that cannot be reached is ``Unreachable``, naming its URL and the cause in words.

Real sockets on 127.0.0.1: a closed port (refused), a listener that never finishes the TLS
handshake (timed out), a plain-HTTP listener on the HTTPS port (TLS handshake failed), and a
name under ``.invalid`` (which never resolves, RFC 6761). Nothing reached the device, so the
counts stay at zero and no write is ever in doubt.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from tests.unit.fortios.conftest import TOKEN


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word (the TLS handshake never completes)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]
        for writer in held:
            writer.close()


@pytest.fixture
async def plain_http_port() -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def unreachable(url: str, **kwargs: object) -> errors.Unreachable:
    async with FortiOSClient(url, token=TOKEN, name="fgt-1", retries=0, **kwargs) as client:  # type: ignore[arg-type]
        with pytest.raises(errors.Unreachable) as caught:
            await client.update("firewall/policy", 12, {"comment": "x"})
        assert client.counts.total == 0
    assert caught.value.device == "fgt-1"
    assert caught.value.url == url
    assert url in str(caught.value)
    return caught.value


async def test_connection_refused() -> None:
    err = await unreachable(f"https://127.0.0.1:{closed_port()}")
    assert err.cause == "connection refused"
    assert str(err).startswith("fgt-1: cannot reach https://127.0.0.1:")


async def test_name_does_not_resolve() -> None:
    err = await unreachable("https://fgt-1.example.invalid:8443")
    assert err.cause == "name does not resolve"


async def test_connect_timeout_says_how_long(silent_port: int) -> None:
    err = await unreachable(f"https://127.0.0.1:{silent_port}", timeout=0.3)
    assert err.cause == "timed out after 0.3 s"


async def test_tls_handshake_failure(plain_http_port: int) -> None:
    err = await unreachable(f"https://127.0.0.1:{plain_http_port}")
    assert err.cause.startswith("TLS handshake failed: ")


async def test_unreachable_is_retried_because_nothing_was_sent(delays: list[float]) -> None:
    port = closed_port()
    async with FortiOSClient(f"https://127.0.0.1:{port}", token=TOKEN, retries=2) as client:
        with pytest.raises(errors.Unreachable):
            await client.create("firewall/vip", {"name": "x"})
    assert delays == [0.2, 0.4]
