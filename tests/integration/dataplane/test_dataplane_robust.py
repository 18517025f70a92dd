"""Bad peers and shutdowns: the VIP survives them, closes both legs and never hangs stop()."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from dataplane_support import READ_TIMEOUT, Certs, FakeDevice, SmtpClient, delivered, mail_through, token

from fortiauto_lab.dataplane import MAX_LINE, VipListener
from fortiauto_lab.faults import Faults
from fortiauto_lab.smtp_backend import MailBackend
from fortiauto_lab.view import Inspection

STOP_BOUND = 10.0  # stop() must return; this only bounds a broken one so the test fails


async def _still_serves(port: int, backend: MailBackend) -> None:
    subject = token()
    assert (await mail_through(port, starttls=False, subject=subject)).final == 250
    assert len(delivered(backend, subject)) == 1


async def _read_to_eof(client: SmtpClient) -> bytes:
    data = b""
    while chunk := await asyncio.wait_for(client.reader.read(65536), READ_TIMEOUT):
        data += chunk
    return data


async def test_overlong_line_closes_the_session_only(start_vip, device: FakeDevice, backend: MailBackend):
    device.insp = Inspection(policyid=1, proxy=True, logs_smtp=True)
    port = await start_vip("starttls")
    client = await SmtpClient.connect(port)
    try:
        await client.reply()
        client.writer.write(b"X" * (MAX_LINE + 10))
        await client.writer.drain()
        await _read_to_eof(client)
    finally:
        await client.close()

    await _still_serves(port, backend)


async def test_client_reset_mid_session(start_vip, device: FakeDevice, backend: MailBackend, certs: Certs):
    device.insp = Inspection(
        policyid=1, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key)
    )
    port = await start_vip("starttls")
    sock = socket.create_connection(("127.0.0.1", port))
    # SO_LINGER 0: close() sends a RST instead of a FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.sendall(b"EHLO probe.example.test\r\nSTARTTLS\r\n")
    sock.close()

    device.insp = Inspection(policyid=1)
    await _still_serves(port, backend)


async def test_garbage_is_relayed_and_answered_by_the_server(
    start_vip, device: FakeDevice, backend: MailBackend
):
    device.insp = Inspection(policyid=1, proxy=True, logs_smtp=True)
    port = await start_vip("starttls")
    client = await SmtpClient.connect(port)
    try:
        await client.reply()
        code, _ = await client.cmd("\x00\xff\x01 nonsense")
        assert code == 500
        assert (await client.cmd("QUIT"))[0] == 221
    finally:
        await client.close()
    assert device.logs == []


async def test_half_closed_client_still_gets_its_replies(start_vip, device: FakeDevice):
    device.insp = Inspection(policyid=1)
    port = await start_vip("starttls")
    client = await SmtpClient.connect(port)
    try:
        await client.reply()
        client.writer.write(b"NOOP\r\nQUIT\r\n")
        client.writer.write_eof()
        data = await _read_to_eof(client)
    finally:
        await client.close()
    assert data.startswith(b"250 ")
    assert b"221 " in data


async def test_backend_down_closes_the_client(
    device: FakeDevice, backend: MailBackend, listeners: list[VipListener]
):
    device.insp = Inspection(policyid=1)
    listener = VipListener(device, "vip-mx1", backend, mode="starttls")
    listeners.append(listener)
    port = await listener.start()
    await backend.stop()  # nothing listens on the backend ports any more

    client = await SmtpClient.connect(port)
    try:
        assert await _read_to_eof(client) == b""
    finally:
        await client.close()


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
async def test_stop_drops_held_and_relayed_sessions(
    device: FakeDevice, backend: MailBackend, certs: Certs, mode: str
):
    device.insp = Inspection(
        policyid=1, ssl_mode="replace", server_cert=(certs.imported.cert, certs.imported.key), utm=True
    )
    device.faults = Faults(banner_hold_on_utm=True)
    listener = VipListener(device, "vip-mx1", backend, mode=mode)  # type: ignore[arg-type]
    port = await listener.start()
    held = await SmtpClient.connect(port)  # never sees a banner
    device.insp = Inspection(policyid=1)
    device.faults = Faults()
    relayed = await SmtpClient.connect(port)
    if mode == "starttls":
        assert (await relayed.reply())[0] == 220

    await asyncio.wait_for(listener.stop(), STOP_BOUND)

    for client in (held, relayed):
        with pytest.raises(ConnectionError):
            await client.reply()
        await client.close()
    with pytest.raises(OSError):
        await SmtpClient.connect(port)


async def test_backend_stop_drops_open_sessions(backend: MailBackend):
    client = await SmtpClient.connect(backend.smtp_port)
    try:
        assert (await client.reply())[0] == 220
        await client.cmd("EHLO probe.example.test")
        await client.starttls()
        assert (await client.cmd("EHLO probe.example.test"))[0] == 250

        await asyncio.wait_for(backend.stop(), STOP_BOUND)

        with pytest.raises((ConnectionError, OSError)):
            await client.cmd("NOOP")
    finally:
        await client.close()
