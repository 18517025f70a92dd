"""swaks, an independent real SMTP client, through the VIP in each data-plane mode.

swaks is a Debian package (``apt-get install swaks``; CI installs it). It runs as a
subprocess so the VIP, living in the test's event loop, keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from dataplane_support import Certs, FakeDevice, delivered, token

from fortiauto_lab.faults import Faults
from fortiauto_lab.smtp_backend import MailBackend
from fortiauto_lab.view import Inspection

SWAKS = shutil.which("swaks")
pytestmark = pytest.mark.skipif(SWAKS is None, reason="swaks is not installed (apt-get install swaks)")

SWAKS_TIMEOUT = "2s"  # swaks's own per-step timeout; the hold case relies on it
RUN_BOUND = 30.0  # only bounds a hung subprocess so the test fails instead of hanging

# swaks exit codes (swaks(1), EXIT CODES)
OK, BANNER_ERROR, TLS_ERROR = 0, 21, 29


@dataclass
class SwaksRun:
    code: int
    output: str
    cert: x509.Certificate | None


async def swaks(port: int, tmp_path: Path, *args: str, subject: str) -> SwaksRun:
    peer_cert = tmp_path / f"{subject}.pem"
    command = [
        str(SWAKS),
        "--server",
        "127.0.0.1",
        "--port",
        str(port),
        "--from",
        "probe@example.test",
        "--to",
        "postmaster@example.test",
        "--helo",
        "probe.example.test",
        "--header",
        f"Subject: {subject}",
        "--timeout",
        SWAKS_TIMEOUT,
        "--tls-get-peer-cert",
        str(peer_cert),
        *args,
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), RUN_BOUND)
    cert = None
    if peer_cert.exists() and peer_cert.stat().st_size:
        cert = x509.load_pem_x509_certificate(peer_cert.read_bytes())
    assert process.returncode is not None
    return SwaksRun(process.returncode, output.decode(errors="replace"), cert)


def _pem_cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _replace(certs: Certs, **kwargs: bool) -> Inspection:
    return Inspection(
        policyid=8, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key), **kwargs
    )


async def test_swaks_relay_sees_the_backend_certificate_and_is_not_logged(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs, tmp_path: Path
):
    device.insp = Inspection(policyid=8, ssl_mode="certificate", proxy=True, utm=True, logs_smtp=True)
    port = await start_vip("starttls")
    subject = token()

    run = await swaks(port, tmp_path, "--tls", subject=subject)

    assert run.code == OK, run.output
    assert run.cert == _pem_cert(certs.backend.cert)
    assert len(delivered(backend, subject)) == 1
    assert device.logs == []


async def test_swaks_replace_sees_the_imported_certificate_and_is_logged(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs, tmp_path: Path
):
    device.insp = _replace(certs, proxy=True, utm=True, logs_smtp=True)
    port = await start_vip("starttls")
    subject = token()

    run = await swaks(port, tmp_path, "--tls", subject=subject)

    assert run.code == OK, run.output
    assert run.cert == _pem_cert(certs.imported.cert)
    assert len(delivered(backend, subject)) == 1
    assert [r["subject"] for r in device.logs] == [subject]


async def test_swaks_resign_verifies_against_the_inspection_ca(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs, tmp_path: Path
):
    device.insp = Inspection(policyid=8, ssl_mode="resign", proxy=True, utm=True, logs_smtp=True)
    port = await start_vip("starttls")
    ca_file = tmp_path / "inspection-ca.pem"
    ca_file.write_text(certs.inspection_ca.cert)
    subject = token()

    run = await swaks(
        port,
        tmp_path,
        "--tls",
        "--tls-sni",
        "mail.resign.test",
        "--tls-verify",
        "--tls-ca-path",
        str(ca_file),
        subject=subject,
    )

    assert run.code == OK, run.output
    assert run.cert is not None
    assert run.cert.issuer == _pem_cert(certs.inspection_ca.cert).subject
    san = run.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.resign.test"]
    assert len(delivered(backend, subject)) == 1
    assert [r["subject"] for r in device.logs] == [subject]


@pytest.mark.parametrize(
    ("ssl_mode", "expected"),
    [("certificate", "backend"), ("replace", "imported")],
)
async def test_swaks_implicit_tls(
    start_vip,
    device: FakeDevice,
    backend: MailBackend,
    certs: Certs,
    tmp_path: Path,
    ssl_mode: str,
    expected: str,
):
    device.insp = Inspection(
        policyid=8,
        ssl_mode=ssl_mode,  # type: ignore[arg-type]
        server_cert=(certs.imported.cert, certs.imported.key),
        proxy=True,
        logs_smtp=True,
    )
    port = await start_vip("smtps")
    subject = token()

    run = await swaks(port, tmp_path, "--tls-on-connect", subject=subject)

    assert run.code == OK, run.output
    assert run.cert == _pem_cert(getattr(certs, expected).cert)
    assert len(delivered(backend, subject)) == 1
    # Only the decrypting device can log what it relays.
    assert len(device.logs) == (1 if ssl_mode == "replace" else 0)


async def test_swaks_banner_hold_times_out_waiting_for_the_220(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs, tmp_path: Path
):
    device.insp = _replace(certs, proxy=True, utm=True, logs_smtp=True)
    device.faults = Faults(banner_hold_on_utm=True)
    port = await start_vip("starttls")
    subject = token()

    run = await swaks(port, tmp_path, "--tls", subject=subject)

    assert run.code == BANNER_ERROR, run.output
    assert delivered(backend, subject) == []


async def test_swaks_blackhole_gets_250_but_nothing_arrives(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs, tmp_path: Path
):
    device.insp = _replace(certs, proxy=True, utm=True, logs_smtp=True)
    device.faults = Faults(blackhole_after_data=True)
    port = await start_vip("starttls")
    subject = token()

    run = await swaks(port, tmp_path, "--tls", subject=subject)

    assert run.code == OK, run.output
    assert "250 2.0.0 Ok: queued" in run.output
    assert backend.messages == []
    assert device.logs == []


async def test_swaks_tls_fail(
    start_vip, device: FakeDevice, backend: MailBackend, certs: Certs, tmp_path: Path
):
    device.insp = _replace(certs)
    device.faults = Faults(tls_fail=True)
    port = await start_vip("starttls")
    subject = token()

    run = await swaks(port, tmp_path, "--tls", subject=subject)

    assert run.code == TLS_ERROR, run.output
    assert delivered(backend, subject) == []
