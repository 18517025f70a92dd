"""The lab's mail server behind a VIP: the end of the SMTP data plane.

A ``MailBackend`` is what the mock FortiGate relays to. It runs two aiosmtpd listeners in
the current event loop (the lab runs hundreds of devices in one loop, so no Controller
threads): one on the SMTP port offering STARTTLS, one speaking implicit TLS, both with the
mail server's own certificate. Every delivered message is recorded so tests and the lab's
``GET /__lab__/messages`` can prove end-to-end delivery, and, with ``lab up --maildir DIR``,
also written into that Maildir as a local delivery agent would, so a real IMAP server can
serve it. ``lab up --backend HOST:PORT`` replaces the built-in server with an external MTA
(``ExternalBackend``): the VIPs relay there and the lab records nothing itself. The TLS
context helpers live here too because the data plane (``dataplane.py``) builds its own from
PEM strings the same way.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import os
import ssl
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.x509.oid import NameOID

from fortiauto_lab.errors import LabInputError

__all__ = [
    "ExternalBackend",
    "MailBackend",
    "MailHandoff",
    "RelayTarget",
    "cert_hostname",
    "client_tls_context",
    "header_fields",
    "header_pairs",
    "parse_host_port",
    "server_tls_context",
]

logger = logging.getLogger(__name__)

# A lab backend keeps at most this many delivered messages (oldest dropped first) so a
# long-running lab cannot grow without bound; the control API can reset the list anyway.
MAX_MESSAGES = 10_000
DATA_SIZE_LIMIT = 10 * 1024 * 1024
MAX_HEADERS = 64  # headers recorded per delivered message


def _refuse_passphrase() -> str:
    # Without a password callback OpenSSL would prompt on the terminal for an encrypted
    # key and hang the whole lab; an empty passphrase makes it fail fast instead.
    return ""


def server_tls_context(cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A TLS server context presenting ``cert_pem`` (leaf first, chain after) with ``key_pem``.

    The ssl module loads keys only from files, so both go to a private temporary directory
    (mode 0700, files 0600) that is removed before returning.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="fortiauto-tls-") as tmp:
        cert_path = Path(tmp) / "cert.pem"
        key_path = Path(tmp) / "key.pem"
        for path, text in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(text)
        context.load_cert_chain(cert_path, key_path, password=_refuse_passphrase)
    return context


def client_tls_context() -> ssl.SSLContext:
    """The device's TLS client leg to the mail server: no verification.

    A FortiGate re-originating TLS to its own protected server does not check that
    server's certificate by default (``untrusted-server-cert allow`` on the server side).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def cert_hostname(cert_pem: str) -> str:
    """The first DNS name of a certificate (SAN, then CN), or ``localhost``."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if names:
        return names[0]
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = common[0].value if common else ""
    return value if isinstance(value, str) and value else "localhost"


def header_fields(raw: bytes) -> tuple[str, str]:
    """``(subject, message_id)`` from a message or its header block; ``""`` when absent."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        return str(headers.get("subject", "")), str(headers.get("message-id", ""))
    except (ValueError, TypeError, IndexError, AttributeError):
        # Malformed headers from a test client must not break delivery or logging.
        return "", ""


def header_pairs(raw: bytes, limit: int = MAX_HEADERS) -> list[list[str]]:
    """The first ``limit`` headers of a message as ``[name, value]`` pairs (what a filter added shows)."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        return [[str(name), str(value)] for name, value in list(headers.items())[:limit]]
    except (ValueError, TypeError, IndexError, AttributeError):
        return []


def parse_host_port(text: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) for a lab option.

    Raises:
        LabInputError: not of that shape, or the port is not 1-65535.
    """
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise LabInputError(f"{option} expects HOST:PORT with a port between 1 and 65535, not {text!r}")
    return host, int(port)


@dataclass(frozen=True)
class MailHandoff:
    """Where the lab's VIPs hand their mail: built-in servers (and a Maildir), or an external MTA."""

    maildir: Path | None = None  # each built-in delivery is also written here
    backend: tuple[str, int] | None = None  # an external SMTP server replaces the built-in ones

    def __post_init__(self) -> None:
        if self.maildir is not None and self.backend is not None:
            raise LabInputError("--maildir and --backend exclude each other: the external MTA delivers")


class _MaildirWriter:
    """A local delivery agent's last step: the message, with its envelope headers, into a Maildir."""

    def __init__(self, path: Path) -> None:
        # Creates new/ cur/ tmp/ when missing; a file written to tmp/ is renamed into new/.
        self._box = mailbox.Maildir(path, create=True)

    def deliver(self, envelope: Envelope, content: bytes) -> None:
        trace = f"Return-Path: <{envelope.mail_from or ''}>\n"
        trace += "".join(f"Delivered-To: {rcpt}\n" for rcpt in envelope.rcpt_tos)
        body = content.replace(b"\r\n", b"\n")
        self._box.add(trace.encode("utf-8", "replace") + body)


class _Recorder:
    """aiosmtpd handler: accept every message and record its envelope and headers."""

    def __init__(self, messages: list[dict[str, Any]], maildir: _MaildirWriter | None = None) -> None:
        self._messages = messages
        self._maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        subject, message_id = header_fields(content)
        if self._maildir is not None:
            try:
                self._maildir.deliver(envelope, content)
            except OSError as exc:
                # What an MTA says when its mail store fails: try again later, nothing recorded.
                logger.warning("maildir delivery failed: %s", exc)
                return "451 4.3.0 Mail store unavailable"
        self._messages.append(
            {
                "mail_from": envelope.mail_from or "",
                "rcpt_tos": list(envelope.rcpt_tos),
                "subject": subject,
                "message_id": message_id,
                "headers": header_pairs(content),
                "received_at": datetime.now(UTC).isoformat(),
            }
        )
        if len(self._messages) > MAX_MESSAGES:
            del self._messages[0]
        return "250 2.0.0 Ok: queued"


class MailBackend:
    """The mail server behind a VIP: SMTP with STARTTLS, and implicit TLS, on port 0 each."""

    def __init__(
        self, *, cert_pem: str, key_pem: str, host: str = "127.0.0.1", maildir: Path | None = None
    ) -> None:
        self.host = host
        self._tls = server_tls_context(cert_pem, key_pem)
        self._maildir = _MaildirWriter(maildir) if maildir is not None else None
        # Named after its certificate, as a real MTA's banner and EHLO would be; this also
        # keeps aiosmtpd from calling socket.getfqdn() (a DNS lookup) per connection.
        self.hostname = cert_hostname(cert_pem)
        self.smtp_port = 0
        self.smtps_port = 0
        self.messages: list[dict[str, Any]] = []
        self._servers: list[asyncio.Server] = []
        # Weak: a session leaves the set by itself once its connection is gone.
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _factory(self, loop: asyncio.AbstractEventLoop, *, starttls: bool) -> Callable[[], SMTP]:
        def make() -> SMTP:
            protocol = SMTP(
                _Recorder(self.messages, self._maildir),
                hostname=self.hostname,
                ident="ESMTP lab mail server",
                # Implicit TLS must not offer STARTTLS again, so no context there.
                tls_context=self._tls if starttls else None,
                data_size_limit=DATA_SIZE_LIMIT,
                timeout=300,
                loop=loop,
            )
            self._sessions.add(protocol)
            return protocol

        return make

    async def start(self) -> None:
        """Bind both listeners on ``host`` with OS-picked ports."""
        loop = asyncio.get_running_loop()
        plain = await loop.create_server(self._factory(loop, starttls=True), self.host, 0)
        self._servers.append(plain)
        implicit = await loop.create_server(self._factory(loop, starttls=False), self.host, 0, ssl=self._tls)
        self._servers.append(implicit)
        self.smtp_port = plain.sockets[0].getsockname()[1]
        self.smtps_port = implicit.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every open session at once."""
        for server in self._servers:
            server.close()
        for session in list(self._sessions):
            transport = session.transport
            if transport is not None:
                # abort(), not close(): a TLS close waits for the peer's close_notify.
                original = getattr(session, "_original_transport", None)
                for leg in (transport, original):
                    if isinstance(leg, asyncio.Transport):
                        leg.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


class RelayTarget(Protocol):
    """What a VIP listener relays to: the built-in ``MailBackend`` or an ``ExternalBackend``."""

    host: str
    hostname: str
    smtp_port: int
    smtps_port: int


class ExternalBackend:
    """An SMTP server the lab does not run (``--backend HOST:PORT``): STARTTLS side only.

    The lab cannot see what it delivers, so ``messages`` stays empty; proof of delivery comes
    from the mail store behind it (IMAP). ``smtps_port`` is 0: no implicit-TLS VIP relays here.
    """

    def __init__(self, host: str, port: int, *, hostname: str) -> None:
        self.host = host
        self.hostname = hostname  # the name the device sends as SNI when it starts TLS itself
        self.smtp_port = port
        self.smtps_port = 0
        self.messages: list[dict[str, Any]] = []

    async def start(self) -> None:
        """Nothing to start: the server runs elsewhere."""

    async def stop(self) -> None:
        """Nothing to stop."""
