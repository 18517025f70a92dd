"""TLS verification against a real HTTPS server on 127.0.0.1 with a trustme certificate.

Verification is on by default: a device certificate from an unknown CA is a ``TLSVerifyError``
(naming ``verify_tls``), never retried; a CA bundle path makes the same server trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from tests.unit.fortios.conftest import TOKEN, envelope


@dataclass
class HTTPSDevice:
    url: str
    ca_file: Path
    # One entry per accepted connection, appended before the TLS handshake (so before the client
    # can fail); replaced by the request line once a request arrives.
    connections: list[str] = field(default_factory=list)


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext, seen: list[str]
) -> None:
    seen.append("connected")
    try:
        await writer.start_tls(ctx)
    except (ssl.SSLError, ConnectionError):
        writer.close()
        return
    head = await reader.readuntil(b"\r\n\r\n")
    seen[-1] = head.split(b"\r\n", 1)[0].decode()
    body = json.dumps(envelope(results=[])).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[HTTPSDevice]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    seen: list[str] = []
    server = await asyncio.start_server(lambda r, w: _serve(r, w, server_ctx, seen), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield HTTPSDevice(url=f"https://127.0.0.1:{port}", ca_file=ca_file, connections=seen)


async def test_untrusted_certificate_is_a_tls_verify_error(device: HTTPSDevice) -> None:
    async with FortiOSClient(device.url, token=TOKEN, name="fgt-1", retries=2, backoff=0) as client:
        with pytest.raises(errors.TLSVerifyError) as caught:
            await client.get("firewall/vip")
        assert client.counts.total == 0
    assert "verify_tls" in str(caught.value)
    assert caught.value.device == "fgt-1"
    assert caught.value.__cause__ is not None
    assert device.connections == ["connected"]  # not retried


async def test_untrusted_certificate_on_session_login(device: HTTPSDevice) -> None:
    with pytest.raises(errors.TLSVerifyError):
        async with FortiOSClient(device.url, username="admin", password="pw", backoff=0):
            pass
    assert device.connections == ["connected"]


@pytest.mark.parametrize("as_path", [True, False])
async def test_ca_bundle_makes_the_device_trusted(device: HTTPSDevice, as_path: bool) -> None:
    verify: str | Path = device.ca_file if as_path else str(device.ca_file)
    async with FortiOSClient(device.url, token=TOKEN, verify=verify) as client:
        assert await client.get("firewall/vip") == []
    assert device.connections == ["GET /api/v2/cmdb/firewall/vip?vdom=root HTTP/1.1"]


async def test_verify_false_skips_verification(device: HTTPSDevice) -> None:
    async with FortiOSClient(device.url, token=TOKEN, verify=False) as client:
        assert await client.get("firewall/vip") == []
