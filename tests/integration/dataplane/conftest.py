"""Fixtures for the SMTP data plane: certificates, a fake device, a backend and running VIPs.

Everything binds 127.0.0.1 on OS-picked ports and runs in the test's event loop, as the lab does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from dataplane_support import MAIL_NAME, Certs, FakeDevice, Pem

from fortiauto_lab.dataplane import VipListener
from fortiauto_lab.smtp_backend import MailBackend

StartVip = Callable[..., Awaitable[int]]


@pytest.fixture(scope="session")
def certs() -> Certs:
    mail_ca = trustme.CA(organization_name="Example Mail CA")
    backend = mail_ca.issue_cert(MAIL_NAME)
    imported = mail_ca.issue_cert(MAIL_NAME, organization_name="Imported")
    inspection = trustme.CA(organization_name="Fortinet", organization_unit_name="Fortinet_CA_SSL")
    return Certs(
        backend=Pem(backend.cert_chain_pems[0].bytes().decode(), backend.private_key_pem.bytes().decode()),
        imported=Pem(imported.cert_chain_pems[0].bytes().decode(), imported.private_key_pem.bytes().decode()),
        inspection_ca=Pem(inspection.cert_pem.bytes().decode(), inspection.private_key_pem.bytes().decode()),
        mail_ca_pem=mail_ca.cert_pem.bytes().decode(),
    )


@pytest.fixture
def device(certs: Certs) -> FakeDevice:
    return FakeDevice(ca=(certs.inspection_ca.cert, certs.inspection_ca.key))


@pytest.fixture
async def backend(certs: Certs) -> AsyncIterator[MailBackend]:
    server = MailBackend(cert_pem=certs.backend.cert, key_pem=certs.backend.key)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def listeners(device: FakeDevice, backend: MailBackend) -> AsyncIterator[list[VipListener]]:
    started: list[VipListener] = []
    yield started
    for listener in started:
        await listener.stop()


@pytest.fixture
def start_vip(device: FakeDevice, backend: MailBackend, listeners: list[VipListener]) -> StartVip:
    """``await start_vip("starttls")`` -> the port of a VIP in front of ``backend``."""

    async def start(mode: str = "starttls") -> int:
        listener = VipListener(device, "vip-mx1", backend, mode=mode)  # type: ignore[arg-type]
        listeners.append(listener)
        return await listener.start()

    return start
