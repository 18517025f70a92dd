"""Helpers for the data plane tests: certificates, a fake DeviceView and a tiny SMTP client.

The client is deliberately small (asyncio streams) so each test can look at raw replies,
the certificate it was shown, and what happens on the wire.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from dataclasses import dataclass, field

from fortiauto_lab.faults import Faults
from fortiauto_lab.smtp_backend import MailBackend
from fortiauto_lab.view import Inspection

MAIL_NAME = "mx1.example.test"
READ_TIMEOUT = 5.0  # a bound so a broken relay fails the test instead of hanging it


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class Certs:
    backend: Pem  # the mail server's own certificate
    imported: Pem  # what "replace" is configured with (a different cert for the same name)
    inspection_ca: Pem  # the device's Fortinet_CA_SSL
    mail_ca_pem: str


@dataclass
class FakeDevice:
    """A DeviceView whose inspection and faults each test sets directly."""

    ca: tuple[str, str] = field(repr=False)
    insp: Inspection = field(default_factory=lambda: Inspection(policyid=1))
    faults: Faults = field(default_factory=Faults)
    name: str = "fgt-test"
    logs: list[dict[str, str]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def inspection(self, vip: str, source: str | None = None) -> Inspection:
        self.asked.append(vip)
        return self.insp

    def current_faults(self) -> Faults:
        return self.faults

    def log_emailfilter(self, fields: dict[str, str]) -> None:
        self.logs.append(fields)

    def inspection_ca(self) -> tuple[str, str]:
        return self.ca


def no_verify() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


def token() -> str:
    return f"probe-{uuid.uuid4().hex[:12]}"


class SmtpClient:
    """Just enough SMTP to drive the VIP and see what it does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, *, tls: ssl.SSLContext | None = None, sni: str | None = None
    ) -> SmtpClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname=sni if tls else None
        )
        return cls(reader, writer)

    async def reply(self) -> tuple[int, str]:
        lines: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), READ_TIMEOUT)
            if not raw:
                raise ConnectionError("closed by the VIP after: " + "".join(lines))
            line = raw.decode()
            lines.append(line)
            if line[3:4] != "-":
                return int(line[:3]), "".join(lines)

    async def cmd(self, line: str) -> tuple[int, str]:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def starttls(self, *, sni: str | None = None, context: ssl.SSLContext | None = None) -> None:
        code, _ = await self.cmd("STARTTLS")
        assert code == 220
        await self.writer.start_tls(context or no_verify(), server_hostname=sni)

    def peer_cert(self) -> bytes:
        ssl_object = self.writer.get_extra_info("ssl_object")
        assert ssl_object is not None
        cert: bytes = ssl_object.getpeercert(binary_form=True)
        return cert

    async def send_mail(self, subject: str, *, rcpt: str = "postmaster@example.test") -> int:
        assert (await self.cmd("MAIL FROM:<probe@example.test> SIZE=100"))[0] == 250
        assert (await self.cmd(f"RCPT TO:<{rcpt}>"))[0] == 250
        assert (await self.cmd("DATA"))[0] == 354
        body = (
            f"Subject: {subject}\r\nMessage-ID: <{subject}@example.test>\r\n\r\n"
            "hello\r\n..a dot-stuffed line\r\n.\r\n"
        )
        self.writer.write(body.encode())
        await self.writer.drain()
        code, _ = await self.reply()
        return code

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), READ_TIMEOUT)
        except OSError:
            self.writer.transport.abort()


@dataclass
class Session:
    banner: int
    cert: bytes | None
    final: int


async def mail_through(
    port: int, *, mode: str = "starttls", starttls: bool = True, sni: str | None = None, subject: str
) -> Session:
    """One full probe: banner, EHLO, STARTTLS (or implicit TLS), one message, QUIT."""
    client = await SmtpClient.connect(port, tls=no_verify() if mode == "smtps" else None, sni=sni)
    try:
        banner, _ = await client.reply()
        assert (await client.cmd("EHLO probe.example.test"))[0] == 250
        cert = None
        if mode == "smtps":
            cert = client.peer_cert()
        elif starttls:
            await client.starttls(sni=sni)
            cert = client.peer_cert()
            assert (await client.cmd("EHLO probe.example.test"))[0] == 250
        final = await client.send_mail(subject)
        assert (await client.cmd("QUIT"))[0] == 221
        return Session(banner, cert, final)
    finally:
        await client.close()


def delivered(backend: MailBackend, subject: str) -> list[dict[str, object]]:
    """Messages the backend recorded with ``subject`` (it records before answering 250)."""
    return [message for message in backend.messages if message["subject"] == subject]
