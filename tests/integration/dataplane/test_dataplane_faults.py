"""Each data-plane fault shows its symptom only when the bound policy triggers it."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from dataplane_support import Certs, FakeDevice, SmtpClient, delivered, der, mail_through, no_verify, token

from fortiauto_lab.faults import Faults
from fortiauto_lab.smtp_backend import MailBackend
from fortiauto_lab.view import Inspection

HOLD_TIMEOUT = 1.5  # how long the test client waits for a banner that should never come


def _replace(certs: Certs, **kwargs: bool) -> Inspection:
    return Inspection(
        policyid=5, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key), **kwargs
    )


async def _first_bytes(port: int, *, tls: ssl.SSLContext | None = None) -> bytes:
    """What the VIP says within HOLD_TIMEOUT; b"" when it closes; raises TimeoutError on silence."""
    client = await SmtpClient.connect(port, tls=tls)
    try:
        return await asyncio.wait_for(client.reader.read(100), HOLD_TIMEOUT)
    finally:
        await client.close()


async def test_banner_hold_on_utm_withholds_the_220(start_vip, device: FakeDevice, certs: Certs):
    device.insp = _replace(certs, proxy=True, utm=True)
    device.faults = Faults(banner_hold_on_utm=True)
    port = await start_vip("starttls")

    with pytest.raises(TimeoutError):
        await _first_bytes(port)


async def test_banner_hold_on_utm_in_smtps_mode_holds_after_the_handshake(
    start_vip, device: FakeDevice, certs: Certs
):
    device.insp = _replace(certs, proxy=True, utm=True)
    device.faults = Faults(banner_hold_on_utm=True)
    port = await start_vip("smtps")

    with pytest.raises(TimeoutError):
        await _first_bytes(port, tls=no_verify())


@pytest.mark.parametrize(
    "insp_kwargs",
    [
        pytest.param({"ssl_mode": "certificate", "utm": True}, id="certificate-inspection"),
        pytest.param({"ssl_mode": "replace", "utm": False}, id="replace-without-utm"),
    ],
)
async def test_banner_hold_needs_deep_inspection_and_utm(
    start_vip, device: FakeDevice, certs: Certs, insp_kwargs: dict[str, object]
):
    device.insp = Inspection(
        policyid=5, server_cert=(certs.imported.cert, certs.imported.key), proxy=True, **insp_kwargs
    )  # type: ignore[arg-type]
    device.faults = Faults(banner_hold_on_utm=True)
    port = await start_vip("starttls")

    assert (await _first_bytes(port)).startswith(b"220 ")


async def test_blackhole_after_data_says_queued_but_never_delivers(
    start_vip, device: FakeDevice, backend: MailBackend
):
    device.insp = Inspection(policyid=5, proxy=True, utm=True, logs_smtp=True)
    device.faults = Faults(blackhole_after_data=True)
    port = await start_vip("starttls")
    first, second = token(), token()
    client = await SmtpClient.connect(port)
    try:
        await client.reply()
        await client.cmd("EHLO probe.example.test")
        assert await client.send_mail(first) == 250
        # The session stays usable: the device reset the server's transaction quietly.
        assert await client.send_mail(second) == 250
        assert (await client.cmd("NOOP"))[0] == 250
        assert (await client.cmd("QUIT"))[0] == 221
    finally:
        await client.close()

    assert backend.messages == []
    assert device.logs == []


async def test_blackhole_needs_a_proxy_mode_policy(start_vip, device: FakeDevice, backend: MailBackend):
    device.insp = Inspection(policyid=5, proxy=False)
    device.faults = Faults(blackhole_after_data=True)
    port = await start_vip("starttls")
    subject = token()

    assert (await mail_through(port, starttls=False, subject=subject)).final == 250
    assert len(delivered(backend, subject)) == 1


async def test_blackhole_in_decrypted_starttls(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    device.insp = _replace(certs, proxy=True, utm=True)
    device.faults = Faults(blackhole_after_data=True)
    port = await start_vip("starttls")

    assert (await mail_through(port, subject=token())).final == 250
    assert backend.messages == []


async def test_wrong_cert_presents_a_fortinet_factory_certificate(
    start_vip, device: FakeDevice, certs: Certs
):
    device.insp = _replace(certs)
    device.faults = Faults(wrong_cert=True)
    port = await start_vip("starttls")

    first = await mail_through(port, subject=token())
    second = await mail_through(port, subject=token())

    assert first.cert is not None
    assert first.cert != der(certs.imported.cert)
    assert first.cert != der(certs.backend.cert)
    assert second.cert == first.cert  # generated once, like the factory certificate
    subject = x509.load_der_x509_certificate(first.cert).subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Fortinet"


async def test_wrong_cert_does_not_touch_certificate_inspection(start_vip, device: FakeDevice, certs: Certs):
    device.insp = Inspection(policyid=5, ssl_mode="certificate")
    device.faults = Faults(wrong_cert=True)
    port = await start_vip("starttls")

    assert (await mail_through(port, subject=token())).cert == der(certs.backend.cert)


@pytest.mark.parametrize("ssl_mode", ["replace", "resign"])
async def test_tls_fail_breaks_the_starttls_handshake(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs, ssl_mode: str
):
    device.insp = Inspection(
        policyid=5, ssl_mode=ssl_mode, server_cert=(certs.imported.cert, certs.imported.key)
    )  # type: ignore[arg-type]
    device.faults = Faults(tls_fail=True)
    port = await start_vip("starttls")
    client = await SmtpClient.connect(port)
    try:
        assert (await client.reply())[0] == 220
        await client.cmd("EHLO probe.example.test")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await client.starttls()
    finally:
        await client.close()
    assert backend.messages == []


async def test_tls_fail_breaks_the_implicit_tls_handshake(start_vip, device: FakeDevice, certs: Certs):
    device.insp = _replace(certs)
    device.faults = Faults(tls_fail=True)
    port = await start_vip("smtps")

    with pytest.raises((ssl.SSLError, ConnectionError)):
        await SmtpClient.connect(port, tls=no_verify())


async def test_tls_fail_does_not_touch_certificate_inspection(start_vip, device: FakeDevice, certs: Certs):
    device.insp = Inspection(policyid=5, ssl_mode="certificate")
    device.faults = Faults(tls_fail=True)
    port = await start_vip("starttls")

    assert (await mail_through(port, subject=token())).final == 250


async def test_no_policy_closes_the_connection_at_once(start_vip, device: FakeDevice, backend: MailBackend):
    device.insp = Inspection(policyid=None)
    port = await start_vip("starttls")

    assert await _first_bytes(port) == b""
    assert backend.messages == []
