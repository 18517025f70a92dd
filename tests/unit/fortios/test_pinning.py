"""``verify="sha256:<fingerprint>"`` against a real HTTPS server on 127.0.0.1 with a self-signed certificate.

The pin is the SHA-256 of the DER certificate, as FortiGates' factory certificates are
self-signed. A matching pin talks; any other certificate is refused inside the TLS handshake,
before a byte of the request (or its token) is sent, and the error names both fingerprints.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from fortiauto.fortios.connect import client_for
from fortiauto.fortios.pinning import parse_pin
from fortiauto.site import Device
from tests.unit.fortios.conftest import TOKEN, envelope


@dataclass
class SelfSigned:
    url: str
    fingerprint: str  # 64 hex, lowercase
    requests: list[bytes] = field(default_factory=list)  # every byte a client sent after the handshake


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)  # self-signed, like a FortiGate's factory certificate
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        writer.close()
        return
    seen.append(head)
    body = json.dumps(envelope(results=[])).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[SelfSigned]:
    cert, key, digest = self_signed(tmp_path, "FGT60FTK2099ABCD")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    seen: list[bytes] = []
    server = await asyncio.start_server(lambda r, w: _serve(r, w, seen), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield SelfSigned(f"https://127.0.0.1:{port}", digest, seen)


async def test_matching_pin_talks_to_the_self_signed_device(device: SelfSigned) -> None:
    async with FortiOSClient(device.url, token=TOKEN, verify=f"sha256:{device.fingerprint}") as client:
        assert await client.get("firewall/vip") == []
    assert len(device.requests) == 1


async def test_pin_in_openssl_format(device: SelfSigned) -> None:
    colons = ":".join(device.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    async with FortiOSClient(device.url, token=TOKEN, verify=f"SHA256:{colons}") as client:
        assert await client.get("firewall/vip") == []


async def test_other_certificate_is_refused_before_anything_is_sent(device: SelfSigned) -> None:
    pin = "ab" * 32
    async with FortiOSClient(device.url, token=TOKEN, verify=f"sha256:{pin}", name="fgt-1") as client:
        with pytest.raises(errors.TLSVerifyError) as caught:
            await client.get("firewall/vip")
        assert client.counts.total == 0
    message = str(caught.value)
    assert pin in message
    assert device.fingerprint in message
    assert device.url in message
    assert caught.value.device == "fgt-1"
    assert device.requests == []  # not one byte of the request, let alone the token
    assert TOKEN not in message


async def test_without_a_pin_the_self_signed_certificate_fails_verification(device: SelfSigned) -> None:
    async with FortiOSClient(device.url, token=TOKEN) as client:
        with pytest.raises(errors.TLSVerifyError, match=r"certificate verify failed: self.signed"):
            await client.get("firewall/vip")
    assert device.requests == []


@pytest.mark.parametrize("bad", ["sha256:", "sha256:abc", "sha256:" + "g" * 64, "sha256:" + "a" * 66])
def test_bad_pins_are_input_errors(bad: str) -> None:
    with pytest.raises(errors.InputError, match="64-hex-digit"):
        parse_pin(bad)
    with pytest.raises(errors.InputError):
        FortiOSClient("https://127.0.0.1:1", token=TOKEN, verify=bad)


@pytest.mark.parametrize("matching", [True, False])
async def test_client_for_passes_a_site_pin_through(device: SelfSigned, matching: bool) -> None:
    # The site model normalises a pin to "sha256:<64 hex>"; connect.py hands it to the client as is.
    pin = device.fingerprint if matching else "cd" * 32
    site_device = Device.model_construct(
        name="fgt-1", url=device.url, verify_tls=f"sha256:{pin}", token=SecretStr(TOKEN), timeout=5.0
    )
    async with client_for(site_device) as client:
        if matching:
            assert await client.get("firewall/vip") == []
        else:
            with pytest.raises(errors.TLSVerifyError, match=pin):
                await client.get("firewall/vip")
