"""One real misbehaving peer per failure class the probe can see (reference/smtp-probe.md §5.3).

Each case names the peer, the spec it is probed with, the expected ``failure_class`` and the
step that fails. Timeouts are 0.5 s so the whole table stays fast; nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from fortiauto.probe import FailureClass, probe_once
from fortiauto.site import ProbeTransaction
from tests.unit.probe.conftest import SpecFactory
from tests.unit.probe.servers import (
    EHLO_STARTTLS,
    Authenticator,
    Mailbox,
    Script,
    Tls,
    aiosmtpd_server,
    banner_then,
    closed_port,
    full_backlog,
    issue,
    scripted,
    wait_for_hangup,
)

TRANSACTION = ProbeTransaction(mail_from="probe@example.test", rcpt_to="postmaster@example.test")
Peer = Callable[[trustme.CA, Tls], AbstractAsyncContextManager[int]]


@asynccontextmanager
async def _sync(manager: contextlib.AbstractContextManager[int]) -> AsyncIterator[int]:
    with manager as port:
        yield port


async def _say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await wait_for_hangup(reader)


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    return None


def _send_and_close(line: bytes) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(line)
        await writer.drain()

    return script


async def _garbage_instead_of_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)  # the ClientHello has started
    writer.write(b"this is not a TLS record\r\n")
    await writer.drain()


def _tls_then_silence(tls: Tls) -> Script:
    async def then(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 go ahead\r\n")
        await writer.drain()
        await writer.start_tls(tls.context)
        await reader.readline()  # EHLO under TLS, never answered: the proxy is stuck
        await wait_for_hangup(reader)

    return then


async def _swallow_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"354 go ahead\r\n")
    await writer.drain()
    while await reader.readline() not in (b".\r\n", b""):
        pass
    await wait_for_hangup(reader)  # buffering "for AV scanning", forever


STARTTLS_DIALOGUE: dict[str, bytes | None] = {"EHLO": EHLO_STARTTLS}


def _starttls_peer(after: Script) -> AbstractAsyncContextManager[int]:
    """Offer STARTTLS, say 220 to it, then run ``after`` instead of a TLS handshake."""

    async def then(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 go ahead\r\n")
        await writer.drain()
        await after(reader, writer)

    return scripted(banner_then({**STARTTLS_DIALOGUE, "STARTTLS": None}, then=then))


@dataclass(frozen=True)
class Case:
    peer: Peer
    failure: FailureClass
    step: str
    spec: dict[str, Any] = field(default_factory=dict)
    pinned: bool = False  # probe with the real certificate's pin
    detail: str = ""  # expected in the failing step's detail


def _script(script: Script) -> Peer:
    return lambda ca, tls: scripted(script)


CASES: dict[str, Case] = {
    "dns": Case(
        lambda ca, tls: _sync(closed_port()), FailureClass.DNS, "dns", {"host": "a" * 64 + ".invalid"}
    ),
    "refused": Case(lambda ca, tls: _sync(closed_port()), FailureClass.REFUSED, "connect"),
    "connect-timeout": Case(
        lambda ca, tls: _sync(full_backlog()), FailureClass.CONNECT_TIMEOUT, "connect", {"timeout": 0.5}
    ),
    "banner-timeout": Case(_script(_say_nothing), FailureClass.BANNER_TIMEOUT, "banner", {"timeout": 0.5}),
    "closed-before-banner": Case(_script(_hang_up), FailureClass.CLOSED_BEFORE_BANNER, "banner"),
    "banner-554": Case(
        _script(_send_and_close(b"554 no service here\r\n")), FailureClass.BAD_BANNER, "banner"
    ),
    "banner-421": Case(_script(_send_and_close(b"421 too busy\r\n")), FailureClass.BAD_BANNER, "banner"),
    "banner-not-smtp": Case(
        _script(_send_and_close(b"HTTP/1.1 400 Bad Request\r\n")), FailureClass.BAD_BANNER, "banner"
    ),
    "banner-without-end": Case(
        _script(_send_and_close(b"220 " + b"x" * 10_000)),
        FailureClass.BAD_BANNER,
        "banner",
        detail="line longer than",
    ),
    "ehlo-and-helo-rejected": Case(
        _script(banner_then({"EHLO": b"550 go away\r\n", "HELO": b"550 go away\r\n"})),
        FailureClass.EHLO_REJECTED,
        "helo",
    ),
    "ehlo-421": Case(_script(banner_then({"EHLO": b"421 closing\r\n"})), FailureClass.EHLO_REJECTED, "ehlo"),
    "starttls-missing": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox()), FailureClass.STARTTLS_MISSING, "starttls"
    ),
    "starttls-454": Case(
        _script(banner_then({**STARTTLS_DIALOGUE, "STARTTLS": b"454 TLS not available\r\n"})),
        FailureClass.STARTTLS_REFUSED,
        "starttls",
    ),
    "tls-garbage": Case(
        lambda ca, tls: _starttls_peer(_garbage_instead_of_tls),
        FailureClass.TLS_FAILED,
        "tls",
        detail="handshake failed",
    ),
    "tls-stall": Case(
        lambda ca, tls: _starttls_peer(_say_nothing),
        FailureClass.TLS_FAILED,
        "tls",
        {"timeout": 0.5},
        detail="no handshake within",
    ),
    "smtps-on-a-plaintext-port": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox()),
        FailureClass.TLS_FAILED,
        "tls",
        {"mode": "smtps"},
        detail="WRONG_VERSION_NUMBER",
    ),
    "starttls-injection": Case(
        _script(banner_then({**STARTTLS_DIALOGUE, "STARTTLS": b"220 go ahead\r\n250-injected\r\n"})),
        FailureClass.STARTTLS_INJECTION,
        "starttls",
        detail="14 byte(s) sent after the 220",
    ),
    "pin-mismatch": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox(), starttls=issue(ca, "mx1.example.test")),
        FailureClass.CERTIFICATE_MISMATCH,
        "tls",
        pinned=True,
        detail="is not the pinned",
    ),
    "expired": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox(), starttls=issue(ca, "mx1.example.test", expired=True)),
        FailureClass.CERTIFICATE_INVALID,
        "tls",
        detail="expired on",
    ),
    "hostname-mismatch": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox(), starttls=issue(ca, "other.example.test")),
        FailureClass.CERTIFICATE_INVALID,
        "tls",
        detail="mx1.example.test is not in the certificate (other.example.test)",
    ),
    "post-tls-ehlo-hang": Case(
        lambda ca, tls: scripted(
            banner_then({**STARTTLS_DIALOGUE, "STARTTLS": None}, then=_tls_then_silence(tls))
        ),
        FailureClass.POST_TLS_EHLO,
        "ehlo-tls",
        {"timeout": 0.5},
    ),
    "auth-rejected": Case(
        lambda ca, tls: aiosmtpd_server(
            Mailbox(), starttls=tls, authenticator=Authenticator("submit", "right")
        ),
        FailureClass.AUTH_REJECTED,
        "auth",
        {"username": "submit", "password": "wrong"},
        detail="535",
    ),
    "credentials-without-tls": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox(), starttls=tls),
        FailureClass.STARTTLS_MISSING,
        "auth",
        {"mode": "plain", "username": "submit", "password": "secret"},
        detail="only ever sent inside TLS",
    ),
    "rcpt-550": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox(rcpt_reply="550 5.1.1 no such user"), starttls=tls),
        FailureClass.ENVELOPE_REJECTED,
        "rcpt",
        {"transaction": TRANSACTION},
    ),
    "data-554": Case(
        _script(banner_then({"DATA": b"554 5.7.1 no mail from you\r\n"})),
        FailureClass.DATA_REJECTED,
        "data",
        {"mode": "plain", "transaction": TRANSACTION},
    ),
    "rejected-after-the-dot": Case(
        lambda ca, tls: aiosmtpd_server(Mailbox(data_reply="554 5.7.1 virus found"), starttls=tls),
        FailureClass.AFTER_DOT,
        "dot",
        {"transaction": TRANSACTION},
    ),
    "timeout-after-the-dot": Case(
        _script(banner_then({"DATA": None}, then=_swallow_message)),
        FailureClass.AFTER_DOT,
        "dot",
        {"mode": "plain", "transaction": TRANSACTION, "timeout": 0.5},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_failure_class(name: str, make_spec: SpecFactory, ca: trustme.CA, mx_tls: Tls) -> None:
    case = CASES[name]
    async with case.peer(ca, mx_tls) as port:
        pin = mx_tls.sha256 if case.pinned else None
        result = await probe_once(make_spec(port, **case.spec), pin_sha256=pin)

    assert not result.passed
    assert result.failure_class == case.failure.value, result.transcript
    failed = [step for step in result.steps if not step.ok]
    assert failed, "a failing probe names its failing step"
    assert failed[-1].step == case.step, result.steps
    assert failed[-1].detail
    assert case.detail in failed[-1].detail
    assert result.transcript[-1].startswith("*** "), result.transcript
