"""``verify_tls: "sha256:<fingerprint>"`` from the site file to the handshake, against a real TLS server.

The loader normalises the pin (``Device.tls_pin_sha256``, ``verify_tls == "sha256:<hex>"``); the
client's ``fortios/pinning.pinned_context`` accepts exactly that certificate in the handshake.
This checks the two halves agree on a server that presents the fixture certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from fortiauto import certs
from fortiauto.fortios.pinning import is_pin, parse_pin, pinned_context
from fortiauto.site.loader import load_site_data

CERTS = Path(__file__).resolve().parents[1] / "fixtures" / "certs"


@pytest.fixture
async def tls_server():
    """A TLS server on 127.0.0.1 (port from the OS) presenting the fixture certificate mx1.pem."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERTS / "mx1.pem", CERTS / "mx1.key")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def pinned_device(pin: str, tmp_path: Path):
    data = {
        "version": 1,
        "devices": [{"name": "fgt-1", "url": "https://127.0.0.1", "token": "t", "verify_tls": pin}],
    }
    return load_site_data(data, base_dir=tmp_path, environ={}).devices[0]


async def greet(port: int, context: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    line = await reader.readline()
    writer.close()
    return line


async def test_the_site_pin_of_the_served_certificate_connects(tls_server, tmp_path):
    fingerprint = certs.pem_fingerprint((CERTS / "mx1.pem").read_text())
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    device = pinned_device(f"SHA256:{colons}", tmp_path)
    assert device.tls_pin_sha256 == fingerprint
    assert is_pin(device.verify_tls)
    assert parse_pin(str(device.verify_tls)) == fingerprint
    assert await greet(tls_server, pinned_context(device.tls_pin_sha256)) == b"hello\n"


async def test_a_site_pin_of_another_certificate_stops_the_handshake(tls_server, tmp_path):
    device = pinned_device("sha256:" + "00" * 32, tmp_path)
    assert device.tls_pin_sha256 is not None
    with pytest.raises(ssl.SSLError, match="not the pinned"):
        await greet(tls_server, pinned_context(device.tls_pin_sha256))
