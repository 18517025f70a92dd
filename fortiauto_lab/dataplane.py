"""The lab's SMTP data plane: a mock FortiGate VIP acting out the policy bound to it.

A ``VipListener`` is the loopback port a probe (or swaks) connects to instead of a real
FortiGate. On every connection it asks its ``DeviceView`` how the bound policy inspects
SMTP (``Inspection``) and which faults are active, then relays to its ``RelayTarget`` (the
lab's own ``MailBackend``, or an external MTA given with ``lab up --backend``):
byte-for-byte for no inspection or certificate-inspection, or terminating TLS itself for
Protecting SSL Server (``replace``) and deep inspection (``resign``). Whatever the device
can see in clear (a plain session, or one it decrypts) is followed by ``SmtpWatcher`` so
an accepted message becomes an email filter log line when the policy asks for one: the
KB's symptom (STARTTLS mail through certificate-inspection is never logged) falls out.
When the bound email filter judges mail (``Inspection.spam_filter``), the relay answers DATA
itself, holds the message to its dot and lets ``antispam.judge`` decide: clean or tagged it goes
on with a DATA of the device's own, discarded the client hears the spam reply. A client that
pipelines DATA behind commands still awaiting replies (only an external backend offers
PIPELINING) is relayed unjudged, as the device could not answer in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fortiauto_lab.antispam import Listings, Mail, SpamFilter, Verdict, judge, tagged
from fortiauto_lab.faults import Faults
from fortiauto_lab.pki import CertKey, issue_cert
from fortiauto_lab.smtp_backend import (
    RelayTarget,
    client_tls_context,
    header_fields,
    server_tls_context,
)
from fortiauto_lab.view import DeviceView, Inspection

__all__ = [
    "EMAILFILTER_LOGID",
    "SPAM_LOGID",
    "ProtocolViolation",
    "Reply",
    "SeenMessage",
    "SmtpWatcher",
    "SpamSession",
    "VipListener",
    "emailfilter_log",
    "factory_certificate",
    "issue_certificate",
]

logger = logging.getLogger(__name__)

# FortiOS "general email log" for SMTP (log message reference: LOGID 20503, type utm,
# subtype emailfilter, eventtype smtp, action log-only).
EMAILFILTER_LOGID = "0508020503"
# A spam verdict: FortiOS logs those under the email filter's per-protocol notice ids (log
# message reference: 20484 LOGID_ANTISPAM_EMAIL_IMAP_NOTIF, severity notice). The SMTP id was
# not in the sources reached: this number is the lab's own, in the same scheme; nothing should
# key on it (fortiauto reads ``action`` and ``msg``).
SPAM_LOGID = "0510020480"
# How a verdict is logged per ``smtp action`` (the lab's reading: tagged and delivered, or blocked).
VERDICT_ACTIONS = {"tag": "tagged", "discard": "blocked"}

CHUNK = 64 * 1024
MAX_LINE = 64 * 1024  # SMTP allows 1000 octets; beyond 64 KiB the peer is not speaking SMTP
MAX_HEADER_BYTES = 64 * 1024
MAX_PENDING = 256  # commands awaiting a reply; more means a client that never reads
MAX_RECIPIENTS = 1000
MAX_CACHED_CONTEXTS = 128
# What the email filter holds to scan: FortiOS's proxy options scan messages up to oversize-limit
# (default 10 MB, ``firewall profile-protocol-options``) and pass larger ones unscanned by default.
MAX_SCANNED = 10 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0
HALF_CLOSE_GRACE = 5.0
CLOSE_GRACE = 2.0
STOP_GRACE = 2.0
# A TLS 1.2 fatal alert record, handshake_failure(40): what a client reads as "the device
# refused the handshake" for the tls-fail fault.
TLS_HANDSHAKE_FAILURE = bytes.fromhex("15030300020228")

Mode = Literal["starttls", "smtps"]


class ProtocolViolation(Exception):
    """The peer broke SMTP framing or a bound (line length, pending commands)."""


# -- certificates the device presents ------------------------------------------------


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def issue_certificate(ca: tuple[str, str], name: str) -> tuple[str, str]:
    """A server certificate for ``name`` signed by ``ca``: ``(leaf + CA PEM, key PEM)``.

    What a deep-inspecting FortiGate presents, re-signed by its ``Fortinet_CA_SSL``; the
    CA goes along as the chain so a client that trusts it can verify.
    """
    leaf = issue_cert(CertKey(*ca), name, sans=(name,), organisation="Fortinet")
    return leaf.cert_pem + ca[0], leaf.key_pem


def factory_certificate() -> tuple[str, str]:
    """A self-signed stand-in for FortiGate's ``Fortinet_Factory`` certificate (cert, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Sunnyvale"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fortinet"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "FortiGate"),
            x509.NameAttribute(NameOID.COMMON_NAME, "FortiGate"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return _pem(cert), _key_pem(key)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class _TlsContexts:
    """Server contexts for the device's client leg, cached (bounded LRU) per listener."""

    def __init__(self, default_name: str) -> None:
        self._default_name = default_name
        self._cache: OrderedDict[tuple[str, ...], ssl.SSLContext] = OrderedDict()

    def _get(self, key: tuple[str, ...], make: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = self._cache.get(key)
        if context is None:
            context = self._cache[key] = make()
            if len(self._cache) > MAX_CACHED_CONTEXTS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return context

    def imported(self, pair: tuple[str, str]) -> ssl.SSLContext:
        # Keyed by a digest so the cache never holds the key PEM as a dict key.
        return self._get(("replace", _digest(*pair)), lambda: server_tls_context(*pair))

    def factory(self) -> ssl.SSLContext:
        return self._get(("factory",), lambda: server_tls_context(*factory_certificate()))

    def resigning(self, ca: tuple[str, str]) -> ssl.SSLContext:
        """Presents a cert for the mail server's name, or for the client's SNI when it sends one."""
        ca_id = _digest(ca[0])

        def make() -> ssl.SSLContext:
            context = server_tls_context(*issue_certificate(ca, self._default_name))
            context.sni_callback = partial(self._on_sni, ca, ca_id)
            return context

        return self._get(("resign", ca_id, ""), make)

    def _on_sni(
        self,
        ca: tuple[str, str],
        ca_id: str,
        ssl_object: ssl.SSLObject,
        server_name: str | None,
        _context: ssl.SSLContext,
    ) -> None:
        if not server_name or server_name.lower() == self._default_name.lower() or len(server_name) > 253:
            return
        name = server_name.lower()
        try:
            ssl_object.context = self._get(
                ("resign", ca_id, name), lambda: server_tls_context(*issue_certificate(ca, name))
            )
        except (ValueError, TypeError, ssl.SSLError):
            # A name no certificate can carry: keep the default certificate rather than
            # failing inside OpenSSL's callback.
            logger.debug("re-sign: no certificate for SNI %r", name)


# -- what the device sees of an SMTP session -----------------------------------------


@dataclass(frozen=True)
class SeenMessage:
    """A message the device followed from MAIL FROM to the final dot."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    message_id: str
    size: int


@dataclass(frozen=True)
class Reply:
    """One complete server reply and the command it answers.

    ``command`` is the verb (upper case), ``BANNER`` for the greeting, ``.`` for the end
    of DATA, ``""`` when nothing was pending. ``message`` is set on a 2xx after the dot.
    """

    command: str
    code: int
    raw: bytes
    injected: bool = False
    message: SeenMessage | None = None


@dataclass(frozen=True)
class _Pending:
    verb: str
    arg: str = ""
    injected: bool = False


def _address(arg: str, prefix: str) -> str:
    rest = arg[len(prefix) :].strip() if arg.upper().startswith(prefix) else arg.strip()
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end != -1 else rest[1:]
    return rest.split(" ", 1)[0]


class SmtpWatcher:
    """Follows one SMTP session from both sides, without I/O (sans-IO).

    The relay feeds it complete client lines and server lines in the order it relays
    them; it pairs replies with commands (every SMTP command gets exactly one reply) and
    reports the messages the server accepted. Once ``opaque`` the device can no longer
    see the stream (TLS it does not terminate).
    """

    def __init__(self, *, opaque: bool = False) -> None:
        self.opaque = opaque
        self.in_body = False
        self._pending: deque[_Pending] = deque([_Pending("BANNER")])
        self._reply_lines: list[bytes] = []
        self._reply_size = 0
        self._mail_from = ""
        self._rcpts: list[str] = []
        self._headers = bytearray()
        self._headers_done = False
        self._size = 0
        self._sent: SeenMessage | None = None
        self.helo = ""  # the session's EHLO/HELO argument, once the server accepted it

    @property
    def sent(self) -> SeenMessage | None:
        """The message whose final dot was fed last, until its reply arrives."""
        return self._sent

    def go_opaque(self) -> None:
        """STARTTLS was accepted end to end: the rest of the session is ciphertext."""
        self.opaque = True

    def restart_after_tls(self) -> None:
        """The device terminated TLS: forget the plaintext session (RFC 3207 §4.2); no banner follows."""
        self._pending.clear()
        self._reply_lines.clear()
        self._reply_size = 0
        self.in_body = False
        self.helo = ""
        self._reset_envelope()

    def client_line(self, line: bytes) -> str:
        """Feed one client line; returns the command verb, ``BODY``, or ``.`` at the end of DATA."""
        if self.in_body:
            return self._body_line(line)
        verb, _, arg = line.decode("latin-1").rstrip("\r\n").partition(" ")
        self._expect(_Pending(verb.upper(), arg))
        return verb.upper()

    def inject(self, verb: str, *, ahead_of_last: bool = False) -> None:
        """The device itself sent ``verb`` to the server; its reply is ``injected``.

        ``ahead_of_last``: sent before the client's last command, which the device held back
        (the DATA of a message the email filter held until its dot).
        """
        pending = _Pending(verb, injected=True)
        if ahead_of_last and self._pending:
            last = self._pending.pop()
            self._expect(pending)
            self._pending.append(last)
        else:
            self._expect(pending)

    def can_hold_data(self) -> bool:
        """DATA was the last command and the only one awaiting a reply, with a recipient accepted.

        Then the device may answer it itself and hold the message (no pipelining to reorder).
        """
        return len(self._pending) == 1 and self._pending[0].verb == "DATA" and bool(self._rcpts)

    def answer_locally(self, code: int) -> Reply:
        """The device answered the last client command itself (the server never sees it)."""
        return self._answer(self._pending.pop(), code, b"")

    def server_line(self, line: bytes) -> Reply | None:
        """Feed one server line; returns the reply once its last line arrived."""
        self._reply_lines.append(line)
        self._reply_size += len(line)
        if self._reply_size > MAX_LINE:
            raise ProtocolViolation("server reply too long")
        if line[3:4] == b"-":
            return None
        raw = b"".join(self._reply_lines)
        self._reply_lines.clear()
        self._reply_size = 0
        code = int(line[:3]) if line[:3].isdigit() else 0
        pending = self._pending.popleft() if self._pending else _Pending("")
        return self._answer(pending, code, raw)

    def _expect(self, pending: _Pending) -> None:
        if len(self._pending) >= MAX_PENDING:
            raise ProtocolViolation("too many commands without replies")
        self._pending.append(pending)

    def _reset_envelope(self) -> None:
        self._mail_from = ""
        self._rcpts = []
        self._sent = None

    def _body_line(self, line: bytes) -> str:
        if line in (b".\r\n", b".\n"):
            self.in_body = False
            subject, message_id = header_fields(bytes(self._headers))
            self._sent = SeenMessage(self._mail_from, tuple(self._rcpts), subject, message_id, self._size)
            self._expect(_Pending("."))
            return "."
        self._size += len(line)
        if not self._headers_done:
            if line in (b"\r\n", b"\n"):
                self._headers_done = True
            elif len(self._headers) + len(line) <= MAX_HEADER_BYTES:
                # Undo dot-stuffing (RFC 5321 §4.5.2) before the header parser sees it.
                self._headers += line[1:] if line.startswith(b".") else line
        return "BODY"

    def _answer(self, pending: _Pending, code: int, raw: bytes) -> Reply:
        ok = 200 <= code < 300
        message = None
        if pending.verb == "MAIL" and ok:
            self._mail_from = _address(pending.arg, "FROM:")
            self._rcpts = []
        elif pending.verb == "RCPT" and ok and len(self._rcpts) < MAX_RECIPIENTS:
            self._rcpts.append(_address(pending.arg, "TO:"))
        elif pending.verb == "DATA" and code == 354 and not pending.injected:
            self.in_body = True
            self._headers.clear()
            self._headers_done = False
            self._size = 0
        elif pending.verb == ".":
            message = self._sent if ok else None
            self._reset_envelope()
        elif pending.verb in ("RSET", "EHLO", "HELO") and ok:
            self._reset_envelope()
            if pending.verb != "RSET":
                self.helo = pending.arg.strip()
        return Reply(pending.verb, code, raw, pending.injected, message)


# -- relaying ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Leg:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class _LineBuffer:
    """Splits a byte stream into lines, keeping at most ``MAX_LINE`` of an unfinished one."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        lines: list[bytes] = []
        start = 0
        while (end := self._buf.find(b"\n", start)) != -1:
            lines.append(bytes(self._buf[start : end + 1]))
            start = end + 1
        del self._buf[:start]
        if len(self._buf) > MAX_LINE:
            raise ProtocolViolation("line too long")
        return lines

    def take(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        return data


StartTls = Callable[[bytes], Awaitable[bool]]
OnMessage = Callable[[SeenMessage, Verdict | None], None]


@dataclass(frozen=True)
class SpamSession:
    """The email filter acting on one session: the profile's settings, the lists, the client."""

    spam: SpamFilter
    listings: Listings
    client_ip: str
    smtps: bool = False


def _unstuff(data: bytes) -> bytes:
    """Undo dot-stuffing line by line (RFC 5321 §4.5.2)."""
    return b"".join(line[1:] if line.startswith(b".") else line for line in data.splitlines(keepends=True))


def _stuff(data: bytes) -> bytes:
    return b"".join(b"." + line if line.startswith(b".") else line for line in data.splitlines(keepends=True))


class _Relay:
    """Two pumps between client and server, watched while the device can see the session.

    ``on_starttls`` set: the device terminates STARTTLS itself; when the server accepts
    it the pumps stop, ``on_starttls(reply)`` upgrades both legs and relaying resumes in
    the clear. ``blackhole``: the device answers DATA and the final dot itself and resets
    the server's transaction instead of delivering. ``spam``: the email filter holds each
    message until its dot and judges it (``antispam.py``): clean or tagged it goes on to the
    server, discarded the client hears the spam reply and the server's transaction is reset.
    """

    def __init__(
        self,
        client: _Leg,
        server: _Leg,
        watcher: SmtpWatcher,
        *,
        on_message: OnMessage,
        on_starttls: StartTls | None = None,
        blackhole: bool = False,
        spam: SpamSession | None = None,
    ) -> None:
        self._client = client
        self._server = server
        self._watcher = watcher
        self._on_message = on_message
        self._on_starttls = on_starttls
        self._blackhole = blackhole
        self._swallowing = False
        self._spam = spam
        self._holding = False  # from the client's DATA (answered by the device) to its dot
        self._held = bytearray()
        self._released = False  # the message outgrew MAX_SCANNED: it went on unscanned
        self._refusal: bytes | None = None  # the server's answer to a DATA the device sent late
        self._data_reply: asyncio.Future[tuple[int, bytes]] | None = None
        self._judged: Verdict | None = None  # the verdict on the message whose reply is awaited
        self._verdict: asyncio.Future[bool] | None = None
        self._starttls_reply = b""

    async def run(self) -> None:
        while await self._phase() == "upgrade":
            assert self._on_starttls is not None  # only then does a phase end in "upgrade"
            if not await self._on_starttls(self._starttls_reply):
                return
            self._watcher.restart_after_tls()
            self._verdict = None

    async def _phase(self) -> str:
        c2s = asyncio.create_task(self._client_to_server())
        s2c = asyncio.create_task(self._server_to_client())
        try:
            done, _ = await asyncio.wait({c2s, s2c}, return_when=asyncio.FIRST_COMPLETED)
            if s2c in done:
                if s2c.exception() is None and s2c.result() == "upgrade":
                    # c2s is parked on the verdict s2c just set, and ends right after.
                    return await c2s
                return "closed"
            if c2s.exception() is None:
                await self._after_client_eof(s2c)
            return "closed"
        finally:
            for task in (c2s, s2c):
                task.cancel()
            await asyncio.gather(c2s, s2c, return_exceptions=True)

    async def _after_client_eof(self, s2c: asyncio.Task[str]) -> None:
        # A client may half-close after its last command: pass the EOF on and let the
        # server's last replies through, briefly, before both legs close together.
        # A TLS leg cannot half-close, and its server would not notice: close at once then.
        if self._server.writer.can_write_eof():
            self._server.writer.write_eof()
            await asyncio.wait({s2c}, timeout=HALF_CLOSE_GRACE)

    async def _client_to_server(self) -> str:
        lines = _LineBuffer()
        while True:
            chunk = await self._client.reader.read(CHUNK)
            if not chunk:
                return "eof"
            if self._watcher.opaque:
                self._server.writer.write(lines.take() + chunk)
                await self._server.writer.drain()
                continue
            out = bytearray()
            for line in lines.feed(chunk):
                if self._watcher.opaque:
                    out += line
                    continue
                verb = self._watcher.client_line(line)
                if self._blackhole and (self._swallowing or verb == "DATA"):
                    out += await self._blackhole_line(verb)
                    continue
                if self._spam is not None and (
                    self._holding or (verb == "DATA" and self._watcher.can_hold_data())
                ):
                    if out:  # what came before goes first: the filter may write to the server itself
                        self._server.writer.write(out)
                        out.clear()
                    out += await self._filter_line(self._spam, verb, line)
                    continue
                out += line
                if verb == "STARTTLS" and self._on_starttls is not None:
                    self._server.writer.write(out)
                    await self._server.writer.drain()
                    out.clear()
                    self._verdict = asyncio.get_running_loop().create_future()
                    if await self._verdict:
                        # Anything the client sent after STARTTLS is discarded (RFC 3207).
                        return "upgrade"
            if self._watcher.opaque:
                out += lines.take()
            self._server.writer.write(out)
            await self._server.writer.drain()

    async def _blackhole_line(self, verb: str) -> bytes:
        """Act out blackhole-after-data for one client line; returns what goes to the server.

        The local 354 and 250 assume no pipelining (the backend does not offer PIPELINING),
        so every earlier command has had its reply by the time DATA arrives.
        """
        if verb == "DATA":
            self._watcher.answer_locally(354)
            self._swallowing = True
            await self._to_client(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            return b""
        if verb != ".":
            return b""
        self._swallowing = False
        # The client hears "queued"; the server only sees its transaction reset.
        self._watcher.answer_locally(250)
        self._watcher.inject("RSET")
        await self._to_client(b"250 2.0.0 Ok: queued\r\n")
        return b"RSET\r\n"

    async def _filter_line(self, spam: SpamSession, verb: str, line: bytes) -> bytes:
        """Act out the email filter for one client line; returns what goes on to the server.

        As a mail proxy does, the device answers DATA itself, holds the message until its
        dot and judges it; only a message it lets through is sent on, with a DATA of its own.
        """
        if verb == "DATA":
            self._watcher.answer_locally(354)
            self._holding = True
            await self._to_client(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            return b""
        if verb == "BODY":
            return await self._hold(line)
        self._holding = False
        held = bytes(self._held)
        self._held.clear()
        if self._refusal is not None or self._released:
            return await self._after_release(line)
        sent = self._watcher.sent
        content = _unstuff(held)
        helo, mail_from = self._watcher.helo, sent.mail_from if sent else ""
        verdict = judge(
            Mail(spam.client_ip, helo, mail_from, content, smtps=spam.smtps), spam.spam, spam.listings
        )
        if verdict is not None and spam.spam.action == "discard" and sent is not None:
            # FortiOS answers with its spam replacement message; the server's transaction is reset.
            self._watcher.answer_locally(554)
            self._watcher.inject("RSET")
            self._on_message(sent, verdict)
            await self._to_client(verdict.smtp_reply)
            return b"RSET\r\n"
        refused = await self._open_data(ahead_of_last=True)
        if refused is not None:
            self._watcher.answer_locally(int(refused[:3]) if refused[:3].isdigit() else 554)
            await self._to_client(refused)
            return b""
        self._judged = verdict
        return (held if verdict is None else _stuff(tagged(content, verdict, spam.spam))) + line

    async def _hold(self, line: bytes) -> bytes:
        if self._refusal is not None:
            return b""
        if self._released:
            return line
        if len(self._held) + len(line) <= MAX_SCANNED:
            self._held += line
            return b""
        # Too large to scan: it goes on unscanned, as FortiOS passes oversized mail by default.
        self._released = True
        held = bytes(self._held) + line
        self._held.clear()
        self._refusal = await self._open_data(ahead_of_last=False)
        return b"" if self._refusal is not None else held

    async def _after_release(self, line: bytes) -> bytes:
        refusal, self._refusal, self._released = self._refusal, None, False
        if refusal is None:
            return line  # the server answers the dot of the message it received
        self._watcher.answer_locally(int(refusal[:3]) if refusal[:3].isdigit() else 554)
        await self._to_client(refusal)
        return b""

    async def _open_data(self, *, ahead_of_last: bool) -> bytes | None:
        """Send the held message's DATA to the server; None once it said 354, else its refusal."""
        self._watcher.inject("DATA", ahead_of_last=ahead_of_last)
        self._data_reply = asyncio.get_running_loop().create_future()
        self._server.writer.write(b"DATA\r\n")
        await self._server.writer.drain()
        code, raw = await self._data_reply
        self._data_reply = None
        return None if code == 354 else raw

    async def _to_client(self, data: bytes) -> None:
        self._client.writer.write(data)
        await self._client.writer.drain()

    def _seen(self, reply: Reply) -> bool:
        """Account for one server reply; False when it is the device's own (not for the client)."""
        if reply.injected:
            if reply.command == "DATA" and self._data_reply is not None and not self._data_reply.done():
                self._data_reply.set_result((reply.code, reply.raw))
            return False
        if reply.message is not None:
            self._on_message(reply.message, self._judged)
        if reply.command == ".":
            self._judged = None
        return True

    async def _server_to_client(self) -> str:
        lines = _LineBuffer()
        while True:
            chunk = await self._server.reader.read(CHUNK)
            if not chunk:
                return "eof"
            if self._watcher.opaque:
                await self._to_client(lines.take() + chunk)
                continue
            out = bytearray()
            for line in lines.feed(chunk):
                if self._watcher.opaque:
                    out += line
                    continue
                reply = self._watcher.server_line(line)
                if reply is None or not self._seen(reply):
                    continue
                if reply.command == "STARTTLS" and self._verdict is not None and not self._verdict.done():
                    self._verdict.set_result(reply.code == 220)
                    if reply.code == 220:
                        self._starttls_reply = reply.raw
                        await self._to_client(bytes(out))
                        return "upgrade"
                out += reply.raw
                if reply.command == "STARTTLS" and reply.code == 220:
                    self._watcher.go_opaque()
            if self._watcher.opaque:
                out += lines.take()
            await self._to_client(bytes(out))


async def _reject_handshake(client: _Leg) -> None:
    """Answer the client's ClientHello with a fatal alert: a failed handshake as clients see it.

    Waiting for the hello first matters: closing before it arrives makes the client's
    write hit a reset socket instead (swaks then dies of SIGPIPE, not a TLS error).
    """
    transport = client.writer.transport
    if isinstance(transport, asyncio.ReadTransport) and not transport.is_reading():
        transport.resume_reading()  # paused for implicit TLS in _on_client
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.reader.read(CHUNK), HANDSHAKE_TIMEOUT)
    await _send(client, TLS_HANDSHAKE_FAILURE)


async def _hold(client: _Leg) -> None:
    """Say nothing and discard whatever the client sends until it gives up."""
    while await client.reader.read(CHUNK):
        pass


async def _close(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        try:
            await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE)
        except OSError:
            # Includes TimeoutError: a TLS peer that never answers close_notify.
            writer.transport.abort()


def _abort(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.transport.abort()


def _peer(writer: asyncio.StreamWriter, name: str) -> tuple[str, int]:
    address = writer.get_extra_info(name)
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "0.0.0.0", 0  # noqa: S104 -- a placeholder value in a log line, not a bind


def emailfilter_log(
    message: SeenMessage,
    *,
    policyid: int,
    sessionid: int,
    src: tuple[str, int],
    dst: tuple[str, int],
    service: str,
    verdict: Verdict | None = None,
    action: str = "log-only",
    profile: str = "",
) -> dict[str, str]:
    """A FortiOS-style email filter log record for one message.

    Clean: the "general email log" (``action log-only``, FortiOS 7.4 log message reference,
    "Email Spamfilter log support for CEF" sample). Judged: ``action`` (``tagged`` or
    ``blocked``) and ``msg``, the check's FortiOS spam-info text (``antispam.Verdict``).
    """
    now = datetime.now().astimezone()
    recipients = ", ".join(message.rcpt_tos)
    record = {
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H:%M:%S"),
        "eventtime": str(time.time_ns()),
        "tz": now.strftime("%z"),
        "logid": EMAILFILTER_LOGID if verdict is None else SPAM_LOGID,
        "type": "utm",
        "subtype": "emailfilter",
        "eventtype": "smtp",
        "level": "information" if verdict is None else "notice",
        "policyid": str(policyid),
        "sessionid": str(sessionid),
        "srcip": src[0],
        "srcport": str(src[1]),
        "dstip": dst[0],
        "dstport": str(dst[1]),
        "proto": "6",
        "service": service,
        **({"profile": profile} if profile else {}),
        "action": action if verdict is not None else "log-only",
        "from": message.mail_from,
        "to": recipients,
        "sender": message.mail_from,
        "recipient": recipients,
        "direction": "incoming",
        "msg": "general email log" if verdict is None else verdict.spaminfo,
        "subject": message.subject,
        "size": str(message.size),
        "attachment": "no",
    }
    return record


# -- the VIP -----------------------------------------------------------------------------


class VipListener:
    """The FortiGate's VIP for one mail server: a loopback listener acting out the bound policy.

    Each connection reads ``device.inspection(vip)`` and ``device.current_faults()`` once,
    at accept time, as a FortiGate matches a session to a policy when it starts.
    """

    def __init__(
        self,
        device: DeviceView,
        vip: str,
        backend: RelayTarget,
        *,
        mode: Mode,
        host: str = "127.0.0.1",
        vdom: str | None = None,
    ) -> None:
        self._device = device
        self._vip = vip
        self._vdom = vdom  # the VIP's vdom, for log lines (an external backend's port says nothing)
        self._backend = backend
        self._mode: Mode = mode
        self._host = host
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._session_ids = itertools.count(random.randint(1, 1 << 24))
        self._contexts = _TlsContexts(backend.hostname)
        self._backend_tls = client_tls_context()

    async def start(self, port: int = 0) -> int:
        """Listen on ``host:port`` (0: the OS picks); returns the bound port."""
        self._server = await asyncio.start_server(self._on_client, self._host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        """Stop listening and drop every session now; never waits on a peer."""
        if self._server is not None:
            self._server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.wait(sessions, timeout=STOP_GRACE)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Runs inside connection_made, before any byte is read: the policy is matched here,
        # once, as a FortiGate does when the session starts.
        transport = writer.transport
        try:
            insp = self._device.inspection(self._vip, _peer(writer, "peername")[0])
            faults = self._device.current_faults()
        except Exception:
            # A bug on the store side: refuse this connection, keep the listener.
            logger.warning("%s/%s: cannot read the bound policy", self._device.name, self._vip, exc_info=True)
            transport.abort()
            return
        if self._mode == "smtps" and insp.ssl_mode in ("replace", "resign"):
            # The client speaks first (its ClientHello); bytes read into the stream buffer
            # now would be lost to the TLS layer start_tls() puts in later.
            assert isinstance(transport, asyncio.ReadTransport)
            transport.pause_reading()
        # A task of our own rather than a coroutine callback: Python 3.11's stream
        # callback wrapper logs an error for a cancelled callback task, and stop() cancels.
        session = self._session(_Leg(reader, writer), insp, faults)
        task = asyncio.get_running_loop().create_task(session)
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    async def _session(self, client: _Leg, insp: Inspection, faults: Faults) -> None:
        writers = [client.writer]
        try:
            await self._serve(client, insp, faults, writers)
            await _close(writers)
        except asyncio.CancelledError:
            _abort(writers)
            raise
        except Exception as exc:
            # One broken session (bad bytes, resets, a bad certificate in the store) must
            # never take the lab's event loop or its other devices with it.
            logger.debug("%s/%s: session ended: %s", self._device.name, self._vip, type(exc).__name__)
            _abort(writers)

    async def _serve(
        self, client: _Leg, insp: Inspection, faults: Faults, writers: list[asyncio.StreamWriter]
    ) -> None:
        if insp.policyid is None:
            return  # no accept policy to this VIP: the connection goes nowhere
        terminates = insp.ssl_mode in ("replace", "resign")
        server = await self._connect_backend(tls=terminates and self._mode == "smtps")
        writers.append(server.writer)
        if terminates and self._mode == "smtps" and not await self._accept_tls(client, insp, faults):
            return
        if terminates and insp.utm and faults.banner_hold_on_utm:
            await _hold(client)
            return
        sessionid = next(self._session_ids)
        relay = _Relay(
            client,
            server,
            SmtpWatcher(opaque=self._mode == "smtps" and not terminates),
            on_message=partial(self._log, insp, sessionid, client.writer),
            on_starttls=(
                partial(self._upgrade, client, server, insp, faults)
                if terminates and self._mode == "starttls"
                else None
            ),
            blackhole=faults.blackhole_after_data and insp.proxy,
            spam=self._spam_session(insp, faults, client),
        )
        await relay.run()

    def _spam_session(self, insp: Inspection, faults: Faults, client: _Leg) -> SpamSession | None:
        """The email filter on this session, when the bound profile judges mail (``antispam.py``)."""
        spam = insp.spam_filter
        if spam is None or not spam.active or not insp.utm:
            return None
        listed = (faults.dnsbl_listed, faults.fortiguard_listed)
        listings = Listings(
            dnsbl=frozenset({listed[0]} if listed[0] else ()),
            fortiguard_ip=frozenset({listed[1]} if listed[1] else ()),
        )
        return SpamSession(spam, listings, _peer(client.writer, "peername")[0], smtps=self._mode == "smtps")

    async def _connect_backend(self, *, tls: bool) -> _Leg:
        port = self._backend.smtps_port if self._mode == "smtps" else self._backend.smtp_port
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                self._backend.host,
                port,
                ssl=self._backend_tls if tls else None,
                server_hostname=self._backend.hostname if tls else None,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls else None,
                limit=CHUNK,
            ),
            CONNECT_TIMEOUT,
        )
        return _Leg(reader, writer)

    def _client_context(self, insp: Inspection, faults: Faults) -> ssl.SSLContext:
        if insp.ssl_mode == "resign":
            return self._contexts.resigning(self._device.inspection_ca())
        if faults.wrong_cert or insp.server_cert is None:
            # A profile without a usable server certificate falls back to the factory one.
            return self._contexts.factory()
        return self._contexts.imported(insp.server_cert)

    async def _accept_tls(self, client: _Leg, insp: Inspection, faults: Faults) -> bool:
        """Be the TLS server on the client leg; False when the handshake did not happen."""
        if faults.tls_fail:
            await _reject_handshake(client)
            return False
        try:
            await client.writer.start_tls(
                self._client_context(insp, faults), ssl_handshake_timeout=HANDSHAKE_TIMEOUT
            )
        except OSError as exc:  # ssl.SSLError, resets and handshake timeouts alike
            logger.debug("%s/%s: client TLS failed: %s", self._device.name, self._vip, type(exc).__name__)
            return False
        return True

    async def _upgrade(
        self, client: _Leg, server: _Leg, insp: Inspection, faults: Faults, reply: bytes
    ) -> bool:
        """STARTTLS accepted by the server: TLS to it first, then be the TLS server to the client."""
        try:
            await server.writer.start_tls(
                self._backend_tls,
                server_hostname=self._backend.hostname,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except OSError:
            await _send(client, b"454 4.7.0 TLS not available due to temporary reason\r\n")
            return False
        await _send(client, reply)
        return await self._accept_tls(client, insp, faults)

    def _log(
        self,
        insp: Inspection,
        sessionid: int,
        writer: asyncio.StreamWriter,
        message: SeenMessage,
        verdict: Verdict | None = None,
    ) -> None:
        # A verdict is logged when the profile logs spam (``spam-log``), a clean message when
        # the policy logs all mail (``Inspection.logs_smtp``).
        spam = insp.spam_filter
        if verdict is not None and spam is not None:
            logged = spam.log
            action, profile = VERDICT_ACTIONS.get(spam.action, "blocked"), spam.profile
        else:
            logged, action, profile = insp.logs_smtp, "log-only", ""
        if not logged or insp.policyid is None:
            return
        record = emailfilter_log(
            message,
            policyid=insp.policyid,
            sessionid=sessionid,
            src=_peer(writer, "peername"),
            dst=(
                self._backend.host,
                self._backend.smtps_port if self._mode == "smtps" else self._backend.smtp_port,
            ),
            service="SMTPS" if self._mode == "smtps" else "SMTP",
            verdict=verdict,
            action=action,
            profile=profile,
        )
        if self._vdom is not None:
            record["vd"] = self._vdom
        self._device.log_emailfilter(record)


async def _send(leg: _Leg, data: bytes) -> None:
    leg.writer.write(data)
    await leg.writer.drain()
