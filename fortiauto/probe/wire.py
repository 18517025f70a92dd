"""The probe's byte level: one TCP connection as an asyncio protocol that yields SMTP replies.

``probe/smtp.py`` drives the SMTP dialogue; this module only turns bytes into reply lines
and back, and upgrades the connection to TLS in place. It is hand-written rather than
built on ``StreamReader`` because the probe must see what is still buffered when the
STARTTLS ``220`` arrives (``StreamReader`` keeps that private and ``start_tls`` leaves it
in place: the STARTTLS injection class of bugs, reference/smtp-probe.md §3.4).
"""

from __future__ import annotations

import _ssl  # the certificate chain on Python < 3.13, see Wire.peer_chain
import asyncio
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BadReply", "ConnectionClosed", "Reply", "Wire"]

# RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets; allow slack for chatty servers but
# never buffer without bound for a peer that streams bytes with no newline.
_MAX_LINE = 8192
_REPLY_LINE = re.compile(r"^(\d{3})([ -]|$)(.*)$")


class ConnectionClosed(Exception):
    """The peer closed or reset the connection while a reply was awaited."""


class BadReply(Exception):
    """The peer sent something that is not an SMTP reply."""


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: its code and the text of each line (after ``250-`` / ``250 ``)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.lines[0] if self.lines else ""

    def __str__(self) -> str:
        return f"{self.code} {self.text}".rstrip()


class Wire(asyncio.Protocol):
    """A connection's receive buffer plus the transport it came on (plain, then maybe TLS)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._closed: str | None = None  # why reading can't go on: "closed by peer", "reset ..."
        self._waiter: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._closed = self._closed or "connection closed by the server"
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._closed = f"connection lost: {exc.__class__.__name__}: {exc}"
        self._closed = self._closed or "connection closed by the server"
        self._wake()
        if not self._lost.done():
            self._lost.set_result(None)

    # -- reading ---------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_line(self) -> str:
        """The next line without its CRLF; raises ``ConnectionClosed`` or ``BadReply``."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                raw = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if len(self._buffer) > _MAX_LINE:
                raise BadReply(f"line longer than {_MAX_LINE} bytes")
            if self._closed is not None:
                partial = f" after {bytes(self._buffer)[:60]!r}" if self._buffer else ""
                raise ConnectionClosed(self._closed + partial)
            await self._wait()

    async def read_reply(self, heard: Callable[[str], None]) -> Reply:
        """Read one (possibly multi-line ``250-``) reply; ``heard`` sees every raw line."""
        code: int | None = None
        lines: list[str] = []
        while True:
            line = await self.read_line()
            heard(line)
            match = _REPLY_LINE.match(line)
            if match is None:
                raise BadReply(f"not an SMTP reply: {line[:80]!r}")
            code = code if code is not None else int(match.group(1))
            lines.append(match.group(3))
            if match.group(2) != "-":
                return Reply(code, tuple(lines))

    def pending(self) -> bytes:
        """Bytes received but not yet read (after a STARTTLS 220 this must be empty)."""
        return bytes(self._buffer)

    # -- writing, TLS, closing -------------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None, "connection_made not called"
        return self._transport

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def start_tls(
        self, context: ssl.SSLContext, *, server_hostname: str | None, timeout: float
    ) -> None:
        """Upgrade in place; this protocol then receives the decrypted bytes."""
        tls = await self._loop.start_tls(
            self.transport,
            self,
            context,
            server_hostname=server_hostname,
            ssl_handshake_timeout=timeout,
        )
        if tls is None:
            raise ConnectionClosed("connection closed during the TLS handshake")
        self._transport = tls

    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self.transport.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    def peer_chain(self) -> list[bytes]:
        """The certificates the peer sent in its handshake, leaf first, as DER (unverified).

        Python 3.13 has ``SSLObject.get_unverified_chain``; 3.11 and 3.12 have the same
        OpenSSL call (``SSL_get_peer_cert_chain``) only on the private ``_sslobj``.
        """
        obj = self.ssl_object()
        if obj is None:
            return []
        public = getattr(obj, "get_unverified_chain", None)
        if public is not None:
            return [bytes(der) for der in public()]
        inner = getattr(obj, "_sslobj", None)
        chain = getattr(inner, "get_unverified_chain", lambda: None)()
        if chain is None:
            return []
        return [cert.public_bytes(_ssl.ENCODING_DER) for cert in chain]

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def close(self, *, timeout: float) -> None:
        """Close cleanly (TLS close_notify included); abort a peer that won't let go."""
        if self._transport is None or self._lost.done():
            return
        self._transport.close()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._lost)
        except TimeoutError:
            self._transport.abort()
