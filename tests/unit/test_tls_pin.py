"""``verify_tls: "sha256:<fingerprint>"``: the site's pin against a real TLS server's certificate.

What the FortiOS client does with a pinned device (site/models.py ``Device.tls_pin_sha256``,
certs.py ``pinning_context`` and ``pin_matches``): handshake without CA or hostname checks, then
compare the peer certificate's SHA-256 with the pin before a byte of the request is sent.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from fortiauto import certs
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


async def peer_der(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=certs.pinning_context())
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    await reader.read()
    writer.close()
    return der


def pinned_device(pin: str, tmp_path: Path):
    data = {
        "version": 1,
        "devices": [{"name": "fgt-1", "url": "https://127.0.0.1", "token": "t", "verify_tls": pin}],
    }
    return load_site_data(data, base_dir=tmp_path, environ={}).devices[0]


async def test_the_pin_of_the_served_certificate_matches(tls_server, tmp_path):
    fingerprint = certs.pem_fingerprint((CERTS / "mx1.pem").read_text())
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    device = pinned_device(f"sha256:{colons}", tmp_path)
    assert device.tls_pin_sha256 == fingerprint
    assert certs.pin_matches(await peer_der(tls_server), device.tls_pin_sha256)


async def test_another_certificate_does_not_match_the_pin(tls_server, tmp_path):
    device = pinned_device("sha256:" + "00" * 32, tmp_path)
    assert device.tls_pin_sha256 is not None
    assert not certs.pin_matches(await peer_der(tls_server), device.tls_pin_sha256)


def test_the_pinning_context_checks_neither_ca_nor_name_and_needs_tls12():
    context = certs.pinning_context()
    assert context.verify_mode is ssl.CERT_NONE
    assert context.check_hostname is False
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
