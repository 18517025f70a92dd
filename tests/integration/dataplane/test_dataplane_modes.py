"""The VIP acts out each inspection mode: which certificate the client sees, what is delivered and logged."""

from __future__ import annotations

import asyncio
import smtplib
import ssl

from cryptography import x509
from dataplane_support import (
    MAIL_NAME,
    Certs,
    FakeDevice,
    SmtpClient,
    delivered,
    der,
    mail_through,
    no_verify,
    token,
)

from fortiauto_lab.dataplane import EMAILFILTER_LOGID
from fortiauto_lab.smtp_backend import MailBackend
from fortiauto_lab.view import Inspection

# The policy after fortiauto's change: proxy mode, UTM on, email filter logging all SMTP.
LOGGING = {"proxy": True, "utm": True, "logs_smtp": True}


async def test_certificate_inspection_relays_starttls_untouched_and_logs_nothing(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    # The KB's symptom: logging is configured, but the device cannot see inside STARTTLS.
    device.insp = Inspection(policyid=7, ssl_mode="certificate", **LOGGING)
    port = await start_vip("starttls")
    subject = token()

    session = await mail_through(port, subject=subject)

    assert session.banner == 220
    assert session.cert == der(certs.backend.cert)
    assert session.final == 250
    assert len(delivered(backend, subject)) == 1
    assert device.logs == []
    assert device.asked == ["vip-mx1"]


async def test_plain_session_is_logged_with_fortios_fields(
    start_vip, device: FakeDevice, backend: MailBackend
):
    device.insp = Inspection(policyid=7, ssl_mode="certificate", **LOGGING)
    port = await start_vip("starttls")
    subject = token()

    session = await mail_through(port, starttls=False, subject=subject)

    assert session.final == 250
    message = delivered(backend, subject)[0]
    assert message["mail_from"] == "probe@example.test"
    assert message["rcpt_tos"] == ["postmaster@example.test"]
    assert message["message_id"] == f"<{subject}@example.test>"
    [record] = device.logs
    assert record["logid"] == EMAILFILTER_LOGID
    assert (record["type"], record["subtype"], record["eventtype"]) == ("utm", "emailfilter", "smtp")
    assert record["subject"] == subject
    assert record["from"] == "probe@example.test"
    assert record["to"] == "postmaster@example.test"
    assert record["policyid"] == "7"
    assert record["srcip"] == "127.0.0.1"
    assert record["action"] == "log-only"
    assert record["msg"] == "general email log"
    assert int(record["sessionid"]) > 0


async def test_plain_session_without_log_all_is_not_logged(
    start_vip, device: FakeDevice, backend: MailBackend
):
    device.insp = Inspection(policyid=7, ssl_mode="none", proxy=True, utm=True, logs_smtp=False)
    port = await start_vip("starttls")
    subject = token()

    assert (await mail_through(port, starttls=False, subject=subject)).final == 250
    assert len(delivered(backend, subject)) == 1
    assert device.logs == []


async def test_two_messages_in_one_session_are_logged_separately(
    start_vip, device: FakeDevice, backend: MailBackend
):
    device.insp = Inspection(policyid=7, **LOGGING)
    port = await start_vip("starttls")
    first, second = token(), token()
    client = await SmtpClient.connect(port)
    try:
        await client.reply()
        await client.cmd("EHLO probe.example.test")
        assert await client.send_mail(first) == 250
        assert await client.send_mail(second, rcpt="abuse@example.test") == 250
        await client.cmd("QUIT")
    finally:
        await client.close()

    assert [r["subject"] for r in device.logs] == [first, second]
    assert device.logs[1]["to"] == "abuse@example.test"
    assert len(delivered(backend, first)) == len(delivered(backend, second)) == 1


async def test_replace_presents_the_imported_certificate_and_logs(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    device.insp = Inspection(
        policyid=9, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key), **LOGGING
    )
    port = await start_vip("starttls")
    subject = token()

    session = await mail_through(port, subject=subject)

    assert session.cert == der(certs.imported.cert)
    assert session.cert != der(certs.backend.cert)
    assert session.final == 250
    assert len(delivered(backend, subject)) == 1
    assert [r["subject"] for r in device.logs] == [subject]
    assert device.logs[0]["policyid"] == "9"


async def test_replace_without_logging_delivers_but_does_not_log(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    device.insp = Inspection(
        policyid=9, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key)
    )
    port = await start_vip("starttls")
    subject = token()

    assert (await mail_through(port, subject=subject)).final == 250
    assert len(delivered(backend, subject)) == 1
    assert device.logs == []


def _issuer_and_names(cert_der: bytes) -> tuple[x509.Name, list[str]]:
    cert = x509.load_der_x509_certificate(cert_der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return cert.issuer, san.get_values_for_type(x509.DNSName)


async def test_resign_issues_for_the_sni_name_from_the_inspection_ca(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    device.insp = Inspection(policyid=3, ssl_mode="resign", **LOGGING)
    port = await start_vip("starttls")
    ca = x509.load_pem_x509_certificate(certs.inspection_ca.cert.encode())
    subject = token()

    session = await mail_through(port, sni="mail.other.test", subject=subject)

    assert session.cert is not None
    issuer, names = _issuer_and_names(session.cert)
    assert issuer == ca.subject
    assert names == ["mail.other.test"]
    assert len(delivered(backend, subject)) == 1
    assert [r["subject"] for r in device.logs] == [subject]


async def test_resign_without_sni_uses_the_mail_server_name_and_verifies_against_the_ca(
    start_vip, device: FakeDevice, certs: Certs
):
    device.insp = Inspection(policyid=3, ssl_mode="resign")
    port = await start_vip("starttls")
    trusting = ssl.create_default_context(cadata=certs.inspection_ca.cert)
    client = await SmtpClient.connect(port)
    try:
        await client.reply()
        await client.cmd("EHLO probe.example.test")
        # Verification on, hostname checked: the re-signed chain must hold up.
        await client.starttls(sni=MAIL_NAME, context=trusting)
        _, names = _issuer_and_names(client.peer_cert())
        assert names == [MAIL_NAME]
        assert (await client.cmd("EHLO probe.example.test"))[0] == 250
    finally:
        await client.close()


async def test_smtps_relay_passes_the_backend_tls_through(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    device.insp = Inspection(policyid=4, ssl_mode="certificate", **LOGGING)
    port = await start_vip("smtps")
    subject = token()

    session = await mail_through(port, mode="smtps", subject=subject)

    assert session.cert == der(certs.backend.cert)
    assert session.final == 250
    assert len(delivered(backend, subject)) == 1
    assert device.logs == []


async def test_smtps_replace_terminates_tls_and_logs(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    device.insp = Inspection(
        policyid=4, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key), **LOGGING
    )
    port = await start_vip("smtps")
    subject = token()

    session = await mail_through(port, mode="smtps", subject=subject)

    assert session.cert == der(certs.imported.cert)
    assert len(delivered(backend, subject)) == 1
    assert [(r["subject"], r["service"]) for r in device.logs] == [(subject, "SMTPS")]


async def test_policy_is_read_per_connection(start_vip, device: FakeDevice, certs: Certs):
    port = await start_vip("starttls")
    device.insp = Inspection(policyid=1, ssl_mode="certificate")
    before = await mail_through(port, subject=token())
    device.insp = Inspection(
        policyid=1, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key)
    )
    after = await mail_through(port, subject=token())

    assert before.cert == der(certs.backend.cert)
    assert after.cert == der(certs.imported.cert)


def _smtplib_send(port: int, subject: str) -> bytes:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.ehlo("probe.example.test")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client.starttls(context=context)
        assert client.sock is not None
        cert = client.sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        client.sendmail(
            "probe@example.test", ["postmaster@example.test"], f"Subject: {subject}\r\n\r\nhi\r\n"
        )
        return bytes(cert)


async def test_stdlib_smtplib_through_replace(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs
):
    device.insp = Inspection(
        policyid=2, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key), **LOGGING
    )
    port = await start_vip("starttls")
    subject = token()

    # smtplib blocks, and the VIP lives in this loop: run the client in a thread.
    cert = await asyncio.to_thread(_smtplib_send, port, subject)

    assert cert == der(certs.imported.cert)
    assert len(delivered(backend, subject)) == 1
    assert [r["subject"] for r in device.logs] == [subject]


async def test_backend_implicit_tls_does_not_offer_starttls(backend: MailBackend, certs: Certs):
    client = await SmtpClient.connect(backend.smtps_port, tls=no_verify())
    try:
        code, banner = await client.reply()
        _, ehlo = await client.cmd("EHLO probe.example.test")
        cert = client.peer_cert()
    finally:
        await client.close()
    assert code == 220
    assert MAIL_NAME in banner
    assert "STARTTLS" not in ehlo
    assert cert == der(certs.backend.cert)
