"""Real peers for the probe on 127.0.0.1:0: aiosmtpd when well-behaved, tiny scripted servers for the rest.

Each misbehaving server acts out one row of reference/smtp-probe.md §5.3 (hold the banner,
strip STARTTLS, inject bytes after the STARTTLS 220, hang after the dot ...). Every peer
is an async context manager yielding its port and closing every connection on exit, so no
test leaves a transport for the garbage collector to warn about.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

SERVER_NAME = "mx1.example.test"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# -- certificates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    """A server TLS context and the SHA-256 of the leaf it serves (what a site pins)."""

    context: ssl.SSLContext
    sha256: str


def issue(ca: trustme.CA, *names: str, expired: bool = False) -> Tls:
    now = datetime.now(UTC)
    dates: dict[str, Any] = {}
    if expired:
        dates = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}
    leaf = ca.issue_cert(*names, **dates)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode("ascii"))
    return Tls(context=context, sha256=hashlib.sha256(der).hexdigest())


def serving(leaf: trustme.LeafCert, tmp_path: Path, *, with_intermediates: bool = True) -> Tls:
    """A server context presenting ``leaf`` alone or with the CA certificates that signed it."""
    pems = leaf.cert_chain_pems if with_intermediates else leaf.cert_chain_pems[:1]
    chain = tmp_path / f"chain-{len(pems)}-{id(leaf)}.pem"
    chain.write_bytes(b"".join(p.bytes() for p in pems))
    key = tmp_path / f"key-{id(leaf)}.pem"
    key.write_bytes(leaf.private_key_pem.bytes())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    return Tls(context=context, sha256="")


# -- aiosmtpd ---------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """aiosmtpd handler: records delivered messages; optional canned rejections."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    strip_starttls: bool = False
    messages: list[bytes] = field(default_factory=list)

    async def handle_EHLO(  # aiosmtpd hook names
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.strip_starttls:  # what an on-path box doing a downgrade would do
            responses = [r for r in responses if "STARTTLS" not in r]
            responses[-1] = responses[-1].replace("250-", "250 ", 1)
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        content = envelope.content
        self.messages.append(content if isinstance(content, bytes) else str(content).encode())
        return "250 OK queued as probe"


class Authenticator:
    """aiosmtpd authenticator accepting exactly one user/password pair."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username.encode()
        self.password = password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = data.login == self.username and data.password == self.password
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


class _Session(SMTP):
    """aiosmtpd's SMTP that tells when its connection is really gone (TLS shutdown included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lost = asyncio.Event()
        self.made = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.lost.set()


class _HangUp(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


@asynccontextmanager
async def aiosmtpd_server(
    handler: Mailbox,
    *,
    starttls: Tls | None = None,
    implicit_tls: Tls | None = None,
    hang_up_first: int = 0,
    **smtp: Any,
) -> AsyncIterator[int]:
    """aiosmtpd on the test's own loop; ``hang_up_first`` connections are closed at once (a flap)."""
    loop = asyncio.get_running_loop()
    connections = 0
    sessions: list[_Session] = []

    def factory() -> asyncio.Protocol:
        nonlocal connections
        connections += 1
        if connections <= hang_up_first:
            return _HangUp()
        tls = starttls.context if starttls else None
        sessions.append(_Session(handler, hostname=SERVER_NAME, tls_context=tls, **smtp))
        return sessions[-1]

    ssl_context = implicit_tls.context if implicit_tls else None
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        # A session may still be closing (a TLS shutdown waiting on a tunnel, say): let it end,
        # then end the rest, so no live transport is left for the garbage collector to warn about.
        connected = [session.lost.wait() for session in sessions if session.made]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.gather(*connected)
        for session in sessions:
            if session.transport is not None:
                session.transport.abort()
        await asyncio.sleep(0)
        await server.wait_closed()


# -- scripted misbehaving servers -------------------------------------------------------------


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    """A raw TCP server running ``script`` per connection."""
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        current = asyncio.current_task()
        assert current is not None
        tasks.append(current)
        try:
            await script(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the probe hung up on a misbehaving server: expected
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        for writer in writers:
            writer.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


EHLO_STARTTLS = b"250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"


async def converse(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: Mapping[str, bytes | None]
) -> str:
    """Answer commands by verb (default ``250 ok``) until one mapped to ``None``; returns that verb."""
    while True:
        line = await reader.readline()
        if not line:
            return ""
        verb = line.split(b" ", 1)[0].strip().upper().decode()
        if verb in replies and replies[verb] is None:
            return verb
        writer.write(replies.get(verb) or b"250 ok\r\n")
        await writer.drain()
        if verb == "QUIT":
            return verb


async def wait_for_hangup(reader: asyncio.StreamReader) -> None:
    """Say nothing until the probe gives up."""
    await reader.read()


def banner_then(
    replies: Mapping[str, bytes | None],
    then: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] | None = None,
    *,
    banner: bytes = b"220 mx.test ESMTP\r\n",
) -> Script:
    """Send ``banner``, converse, and when a ``None`` verb comes, hand over to ``then``."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        if await converse(reader, writer, replies) not in ("", "QUIT") and then is not None:
            await then(reader, writer)

    return script


# -- sockets that never become SMTP -----------------------------------------------------------


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound then released): connecting is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield port


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listener that never accepts, its queue already full: further SYNs go unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.socket()
    filler.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        filler.connect(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        listener.close()
