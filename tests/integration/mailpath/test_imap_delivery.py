"""ImapDelivery against a real Dovecot: found and deleted, late, never, TLS, credentials, secrets.

The mailbox is looked at behind fortiauto's back: the Maildir's files and Dovecot's own log.
A misbehaving stand-in (a server without STARTTLS) checks that no credential is ever sent in
clear text.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from fortiauto.probe.delivery import ImapDelivery, SiteDelivery, delivery_for_spec
from fortiauto.probe.imap import find_and_delete
from fortiauto.site.models import ImapConfirm
from tests.e2e.clikit import wait_until
from tests.integration.mailpath.mailkit import (
    Dovecot,
    MailStore,
    binary,
    dovecot,
    imap_spec,
    mail_server_with,
    probe_id,
)

FAST = ImapDelivery(poll=0.1)


async def test_found_over_imaps_then_deleted_alone(
    imap_server: Dovecot, store: MailStore, deliver: Callable[[str], None]
) -> None:
    other, wanted = probe_id(), probe_id()
    deliver(other)
    deliver(wanted)
    device, server = mail_server_with(imap_spec(imap_server))

    assert await FAST(device, server, wanted) is True

    assert store.holding(wanted) == []
    assert len(store.holding(other)) == 1, "a message that is not the probe's must stay"
    wait_until(lambda: imap_server.logins() >= 1, 10, "Dovecot's login record")
    assert imap_server.logins() == 1
    # Dovecot logs the session's summary as it ends, a moment after our LOGOUT.
    wait_until(lambda: "expunged=1" in imap_server.log.read_text(), 10, "Dovecot's expunge record")


async def test_found_over_starttls(
    imap_server: Dovecot, store: MailStore, deliver: Callable[[str], None]
) -> None:
    wanted = probe_id()
    deliver(wanted)
    device, server = mail_server_with(imap_spec(imap_server, url=imap_server.url(implicit=False)))

    assert await FAST(device, server, wanted) is True
    assert store.holding(wanted) == []
    # Dovecot logs "TLS" for a session that upgraded; never a plain-text login.
    wait_until(lambda: imap_server.logins() >= 1, 10, "Dovecot's login record")
    login_lines = [line for line in imap_server.log.read_text().splitlines() if "Login: user=<probe>" in line]
    assert len(login_lines) == 1
    assert "TLS" in login_lines[0]


async def test_message_that_arrives_while_waiting(
    imap_server: Dovecot, store: MailStore, deliver: Callable[[str], None]
) -> None:
    wanted = probe_id()
    device, server = mail_server_with(imap_spec(imap_server, timeout=10))
    check = asyncio.create_task(FAST(device, server, wanted))
    await asyncio.sleep(0.8)
    assert not check.done()
    deliver(wanted)

    assert await asyncio.wait_for(check, 15) is True
    assert store.holding(wanted) == []


async def test_never_delivered_is_false(imap_server: Dovecot, deliver: Callable[[str], None]) -> None:
    deliver(probe_id())  # something else is in the mailbox
    device, server = mail_server_with(imap_spec(imap_server, timeout=1.0))

    assert await FAST(device, server, probe_id()) is False
    wait_until(lambda: imap_server.logins() >= 1, 10, "Dovecot's login record")
    assert imap_server.logins() == 1


async def test_untrusted_server_certificate_is_unknown_and_gets_no_password(
    imap_server: Dovecot, deliver: Callable[[str], None], caplog: pytest.LogCaptureFixture
) -> None:
    wanted = probe_id()
    deliver(wanted)
    device, server = mail_server_with(imap_spec(imap_server, verify_tls=True))  # system CAs only
    caplog.set_level(logging.INFO, logger="fortiauto")

    assert await FAST(device, server, wanted) is None
    assert imap_server.logins() == 0
    assert "TLS verification of the IMAP server" in caplog.text
    assert "verify_tls" in caplog.text


async def test_verification_off_is_honoured(imap_server: Dovecot, deliver: Callable[[str], None]) -> None:
    wanted = probe_id()
    deliver(wanted)
    device, server = mail_server_with(imap_spec(imap_server, verify_tls=False))
    assert await FAST(device, server, wanted) is True


async def test_wrong_password_is_unknown_and_never_logged(
    imap_server: Dovecot,
    deliver: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wanted = probe_id()
    deliver(wanted)
    wrong = "wrong-pw-CANARY-91f3"
    # imaplib's module-wide debug level, as a user chasing a problem might set it.
    monkeypatch.setattr(imaplib, "Debug", 5)
    caplog.set_level(logging.DEBUG)
    device, server = mail_server_with(imap_spec(imap_server, password=wrong))

    assert await FAST(device, server, wanted) is None

    out, err = capfd.readouterr()
    plain = base64.b64encode(f"\0probe\0{wrong}".encode()).decode()
    for text in (caplog.text, out, err):
        assert wrong not in text
        assert plain not in text
    assert "IMAP login as 'probe' refused" in caplog.text


async def test_debug_output_never_shows_the_right_password(
    imap_server: Dovecot,
    deliver: Callable[[str], None],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wanted = probe_id()
    deliver(wanted)
    monkeypatch.setattr(imaplib, "Debug", 5)
    spec = imap_spec(imap_server)

    answer = await asyncio.to_thread(find_and_delete, spec, wanted, poll=0.1)

    assert answer.found is True
    assert answer.deleted
    out, err = capfd.readouterr()
    assert imap_server.password not in out + err
    assert base64.b64encode(f"\0probe\0{imap_server.password}".encode()).decode() not in out + err
    assert spec.password.get_secret_value() not in repr(answer)


async def test_dispatch_by_spec(
    imap_server: Dovecot, store: MailStore, deliver: Callable[[str], None]
) -> None:
    wanted = probe_id()
    deliver(wanted)
    device, server = mail_server_with(imap_spec(imap_server))
    _, unconfirmed = mail_server_with(None)

    assert isinstance(delivery_for_spec(server.probe), ImapDelivery)
    assert delivery_for_spec(unconfirmed.probe) is None
    check = SiteDelivery()
    assert await check(device, unconfirmed, wanted) is None
    assert await check(device, server, wanted) is True
    assert store.holding(wanted) == []


# -- a stand-in that offers no STARTTLS ------------------------------------------------


class _NoStartTls:
    """Speaks just enough IMAP to greet and list capabilities; records every byte it gets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.received = bytearray()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] stand-in ready\r\n")
            try:
                while data := conn.recv(4096):
                    self.received += data
                    for line in data.split(b"\r\n"):
                        tag = line.split(b" ", 1)[0]
                        if b"CAPABILITY" in line.upper():
                            conn.sendall(
                                b"* CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN\r\n" + tag + b" OK done\r\n"
                            )
                        elif b"LOGOUT" in line.upper():
                            conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                            return
                        elif line:
                            conn.sendall(tag + b" OK whatever\r\n")
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        self._thread.join(5)


@pytest.fixture
def no_starttls() -> Iterator[_NoStartTls]:
    server = _NoStartTls()
    yield server
    server.close()


async def test_imap_without_starttls_never_sends_credentials(
    no_starttls: _NoStartTls, caplog: pytest.LogCaptureFixture
) -> None:
    spec = ImapConfirm(
        url=f"imap://127.0.0.1:{no_starttls.port}",
        username="probe",
        password=SecretStr("standin-pw-CANARY-55aa"),
        timeout=5,
    )
    device, server = mail_server_with(spec)
    caplog.set_level(logging.INFO, logger="fortiauto")

    assert await FAST(device, server, probe_id()) is None
    assert b"standin-pw" not in no_starttls.received
    assert b"AUTHENTICATE" not in no_starttls.received.upper()
    assert b"LOGIN " not in no_starttls.received.upper()
    assert "offers no STARTTLS" in caplog.text


async def test_missing_mailbox_is_unknown(
    imap_server: Dovecot, deliver: Callable[[str], None], caplog: pytest.LogCaptureFixture
) -> None:
    wanted = probe_id()
    deliver(wanted)
    device, server = mail_server_with(imap_spec(imap_server, mailbox="No Such Folder"))
    caplog.set_level(logging.INFO, logger="fortiauto")

    assert await FAST(device, server, wanted) is None
    assert "cannot open mailbox 'No Such Folder'" in caplog.text


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word (a firewall eating the session)."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


async def test_server_that_never_greets_is_unknown_within_the_timeout(
    silent_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    spec = ImapConfirm(
        url=f"imaps://127.0.0.1:{silent_server}", username="probe", password=SecretStr("x-pw"), timeout=1
    )
    device, server = mail_server_with(spec)
    caplog.set_level(logging.INFO, logger="fortiauto")

    assert await asyncio.wait_for(FAST(device, server, probe_id()), 10) is None
    assert "timed out" in caplog.text


async def test_server_with_sasl_login_only_gets_it_and_no_trace_of_it(
    store: MailStore,
    deliver: Callable[[str], None],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only AUTH=LOGIN on offer (Dovecot then also refuses the LOGIN command: LOGINDISABLED)."""
    if binary("dovecot") is None:
        pytest.skip("dovecot is not installed (Debian: dovecot-imapd)")
    monkeypatch.setattr(imaplib, "Debug", 5)
    with dovecot(store, mechanisms="login") as server:
        wanted = probe_id()
        deliver(wanted)
        device, mail_server = mail_server_with(imap_spec(server))

        assert await FAST(device, mail_server, wanted) is True

        # Dovecot's record of how we logged in.
        wait_until(lambda: "method=LOGIN" in server.log.read_text(), 10, "Dovecot's login record")
    out, err = capfd.readouterr()
    assert server.password not in out + err


async def test_waiting_checks_leave_the_default_executor_free(imap_server: Dovecot) -> None:
    """A fleet's worth of checks waiting for mail must not hold the pool name lookups run on."""
    loop = asyncio.get_running_loop()
    device, server = mail_server_with(imap_spec(imap_server, timeout=4))
    # More than the default executor's workers here (cores + 4), fewer than Dovecot's
    # mail_max_userip_connections (10).
    checks = [asyncio.create_task(FAST(device, server, probe_id())) for _ in range(8)]
    await asyncio.sleep(0.5)  # every check is connected and polling by now

    await loop.getaddrinfo("localhost", 25)  # runs on the default executor

    assert not any(check.done() for check in checks), "the lookup had to wait for the checks"
    assert await asyncio.gather(*checks) == [False] * 8


async def test_cancelled_check_ends_its_thread(imap_server: Dovecot) -> None:
    device, server = mail_server_with(imap_spec(imap_server, timeout=60))
    check = asyncio.create_task(FAST(device, server, probe_id()))
    for _ in range(100):
        if imap_server.logins() >= 1:
            break
        await asyncio.sleep(0.1)
    assert imap_server.logins() == 1
    check.cancel()
    with pytest.raises(asyncio.CancelledError):
        await check

    def imap_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "fortiauto-imap"]

    for _ in range(100):
        if not imap_threads():
            break
        await asyncio.sleep(0.1)
    assert imap_threads() == [], "the worker stops at its next poll, not after the 60 s timeout"
