"""The email filter on the data plane: FortiOS's SMTP anti-spam checks acted out on relayed mail.

Real SMTP sessions (Python's smtplib in a thread, swaks where installed) go through a VIP in
front of a real backend that writes a Maildir, so what was delivered is read back byte for
byte; the email filter log lines are the fake device's.
"""

from __future__ import annotations

import asyncio
import email
import mailbox
import shutil
import smtplib
from collections.abc import AsyncIterator
from dataclasses import replace
from email.policy import default as default_policy
from pathlib import Path

import pytest
from dataplane_support import Certs, FakeDevice, SmtpClient, no_verify, token

from fortiauto_lab import dataplane
from fortiauto_lab.antispam import GTUBE, SpamFilter
from fortiauto_lab.dataplane import EMAILFILTER_LOGID, SPAM_LOGID, VipListener
from fortiauto_lab.faults import Faults
from fortiauto_lab.smtp_backend import MailBackend
from fortiauto_lab.view import Inspection

CHECKS = ("spamfsip", "spamfsurl", "spamfschksum", "spamhelodns", "spamraddrdns", "spamrbl")
GOOD_HELO = "gw.probe-site.net"
GOOD_FROM = "fortiauto-probe@probe-site.net"
RCPT = "postmaster@example.net"
SMTP_TIMEOUT = 10.0  # bounds a broken relay so the test fails instead of hanging


def _filtering(**spam: object) -> Inspection:
    settings = SpamFilter(checks=CHECKS, action="tag", profile="fortiauto-mx1")
    settings = replace(settings, **spam)  # type: ignore[arg-type]
    return Inspection(
        policyid=7,
        proxy=True,
        utm=True,
        logs_smtp=True,
        spam_checks=settings.checks,
        spam_filter=settings,
    )


@pytest.fixture
async def maildir_backend(certs: Certs, tmp_path: Path) -> AsyncIterator[tuple[MailBackend, Path]]:
    box = tmp_path / "Maildir"
    server = MailBackend(cert_pem=certs.backend.cert, key_pem=certs.backend.key, maildir=box)
    await server.start()
    yield server, box
    await server.stop()


@pytest.fixture
async def vip(device: FakeDevice, maildir_backend: tuple[MailBackend, Path]) -> AsyncIterator[int]:
    listener = VipListener(device, "vip-mx1", maildir_backend[0], mode="starttls")
    port = await listener.start()
    yield port
    await listener.stop()


def _message(subject: str, body: str = "A plain line.\r\n.A line that starts with a dot.\r\n") -> str:
    head = (
        f"From: {GOOD_FROM}\r\nTo: {RCPT}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@probe-site.net>\r\n"
    )
    return f"{head}\r\n{body}"


def _send(port: int, subject: str, *, helo: str = GOOD_HELO, sender: str = GOOD_FROM, body: str | None = None,
          starttls: bool = False) -> tuple[int, bytes]:  # fmt: skip
    """One message with smtplib; ``(code, text)`` of the final reply."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=SMTP_TIMEOUT) as client:
        client.ehlo()
        if starttls:
            client.starttls(context=no_verify())
            client.ehlo()
        client.mail(sender)
        client.rcpt(RCPT)
        code, text = client.data(_message(subject, *(() if body is None else (body,))).encode())
        assert client.noop()[0] == 250  # the session goes on after a verdict
        return code, text


async def send(port: int, subject: str, **kwargs: object) -> tuple[int, bytes]:
    return await asyncio.to_thread(_send, port, subject, **kwargs)  # type: ignore[arg-type]


def _delivered(box: Path, subject_token: str) -> list[email.message.EmailMessage]:
    found = []
    for raw in mailbox.Maildir(box, create=False).values():
        message = email.message_from_bytes(raw.as_bytes(), policy=default_policy)
        if subject_token in str(message["Subject"]):
            found.append(message)
    return found


def _logged(device: FakeDevice, subject: str) -> list[dict[str, str]]:
    return [record for record in device.logs if record["subject"] == subject]


async def test_an_identity_that_passes_every_check_is_delivered_untouched_and_logged_clean(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.insp = _filtering()
    subject = token()
    code, _ = await send(vip, subject)

    assert code == 250
    (message,) = _delivered(maildir_backend[1], subject)
    assert message["Subject"] == subject
    assert message["X-FEAS-SPAMINFO"] is None
    assert (
        message.get_content() == "A plain line.\n.A line that starts with a dot.\n"
    )  # held and replayed intact
    (record,) = _logged(device, subject)
    assert (record["logid"], record["action"], record["msg"]) == (
        EMAILFILTER_LOGID,
        "log-only",
        "general email log",
    )


async def test_an_unresolvable_helo_is_tagged_and_delivered_when_the_action_is_tag(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.insp = _filtering(action="tag")
    subject = token()
    code, _ = await send(vip, subject, helo="probe.fortiauto.invalid")

    assert code == 250
    (message,) = _delivered(maildir_backend[1], subject)
    assert message["Subject"] == f"Spam {subject}"
    assert message["X-FEAS-SPAMINFO"] == "helo-dns"
    assert message.get_content() == "A plain line.\n.A line that starts with a dot.\n"
    (record,) = _logged(device, subject)  # the subject as the client sent it
    assert (record["logid"], record["level"]) == (SPAM_LOGID, "notice")
    assert (record["action"], record["msg"], record["profile"]) == ("tagged", "helo-dns", "fortiauto-mx1")
    assert (record["type"], record["subtype"], record["eventtype"]) == ("utm", "emailfilter", "smtp")


async def test_an_unresolvable_helo_is_rejected_with_the_spam_reply_when_the_action_is_discard(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.insp = _filtering(action="discard")
    subject = token()
    code, text = await send(vip, subject, helo="probe.fortiauto.invalid")

    assert code == 554
    assert text == b"5.7.1 This email has been blocked. The HELO/EHLO domain is invalid."
    assert _delivered(maildir_backend[1], subject) == []
    assert maildir_backend[0].messages == []  # the server's transaction was reset, nothing queued
    (record,) = _logged(device, subject)
    assert (record["action"], record["msg"]) == ("blocked", "helo-dns")


async def test_a_listed_client_address_is_judged_by_the_dnsbl_check(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.insp = _filtering(checks=("spamrbl",))
    device.faults = Faults(dnsbl_listed="127.0.0.9")  # another address: nothing happens
    clean = token()
    assert (await send(vip, clean))[0] == 250
    assert _logged(device, clean)[0]["action"] == "log-only"

    device.faults = Faults(dnsbl_listed="127.0.0.1")  # where this client connects from
    subject = token()
    assert (await send(vip, subject))[0] == 250
    (message,) = _delivered(maildir_backend[1], subject)
    assert message["X-FEAS-SPAMINFO"] == "dnsbl, path block/allow ip 127.0.0.1"
    assert _logged(device, subject)[0]["msg"] == "dnsbl, path block/allow ip 127.0.0.1"


async def test_the_first_check_to_fire_decides_when_two_would(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.faults = Faults(fortiguard_listed="127.0.0.1")
    device.insp = _filtering(action="discard")
    subject = token()
    code, text = await send(vip, subject, helo="probe.fortiauto.invalid", sender="x@nowhere.invalid")

    # FortiGuard's IP check comes before the HELO lookup and the return-email check.
    assert code == 554
    assert b"FortiGuard AntiSpam block list" in text
    assert _logged(device, subject)[0]["msg"] == "FortiGuard-AntiSpam ip, path block/allow ip 127.0.0.1"

    device.faults = Faults()
    second = token()
    code, text = await send(vip, second, helo="probe.fortiauto.invalid", sender="x@nowhere.invalid")
    assert (code, _logged(device, second)[0]["msg"]) == (554, "helo-dns")


async def test_content_checks_read_the_body_the_client_sent(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.insp = _filtering(tag_type=("header",), tag_msg="X-Spam-Flag: YES")
    subject = token()
    body = "Test message:\r\n" + GTUBE.decode() + "\r\n"
    assert (await send(vip, subject, body=body))[0] == 250

    (message,) = _delivered(maildir_backend[1], subject)
    assert message["Subject"] == subject  # tag-type header only
    assert message["X-Spam-Flag"] == "YES"
    assert _logged(device, subject)[0]["msg"] == "FortiGuard-AntiSpam ase, email checksum"


async def test_spam_log_off_tags_but_logs_nothing(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.insp = _filtering(log=False)
    subject = token()
    assert (await send(vip, subject, helo="localhost"))[0] == 250
    assert _delivered(maildir_backend[1], subject)[0]["Subject"] == f"Spam {subject}"
    assert _logged(device, subject) == []


async def test_mail_the_device_cannot_read_is_never_judged(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    # Certificate inspection: STARTTLS goes through end to end, the filter sees ciphertext only.
    device.insp = replace(_filtering(action="discard"), ssl_mode="certificate")
    subject = token()
    assert (await send(vip, subject, helo="probe.fortiauto.invalid", starttls=True))[0] == 250
    assert _delivered(maildir_backend[1], subject)[0]["Subject"] == subject
    assert _logged(device, subject) == []


async def test_resign_mode_judges_mail_after_starttls(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    # Deep inspection terminates TLS: the EHLO that counts is the one after STARTTLS.
    device.insp = replace(_filtering(action="discard"), ssl_mode="resign")
    subject = token()
    code, _ = await send(vip, subject, helo="probe.fortiauto.invalid", starttls=True)
    assert code == 554
    assert _logged(device, subject)[0]["msg"] == "helo-dns"


SWAKS = shutil.which("swaks")


@pytest.mark.skipif(SWAKS is None, reason="swaks is not installed (apt-get install swaks)")
async def test_swaks_sees_the_spam_reply(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    device.insp = _filtering(action="discard")
    device.faults = Faults(dnsbl_listed="127.0.0.1")
    subject = token()
    process = await asyncio.create_subprocess_exec(
        str(SWAKS), "--server", "127.0.0.1", "--port", str(vip), "--from", GOOD_FROM, "--to", RCPT,
        "--helo", GOOD_HELO, "--header", f"Subject: {subject}", "--timeout", "5s",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    text = output.decode()
    assert process.returncode == 26, text  # swaks(1): 26 = the server rejected the message after DATA
    assert "<** 554 5.7.1 This email has been blocked. The sender's IP address 127.0.0.1 is listed" in text
    assert _delivered(maildir_backend[1], subject) == []
    assert _logged(device, subject)[0]["action"] == "blocked"


async def test_a_message_too_large_to_scan_goes_on_unscanned(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FortiOS scans up to oversize-limit and passes larger mail unscanned by default.
    monkeypatch.setattr(dataplane, "MAX_SCANNED", 4096)
    device.insp = _filtering(action="discard")
    subject = token()
    body = "".join(f"line {n:05d} of a long message\r\n" for n in range(400)) + GTUBE.decode() + "\r\n"
    code, _ = await send(vip, subject, helo="probe.fortiauto.invalid", body=body)

    assert code == 250
    (message,) = _delivered(maildir_backend[1], subject)
    assert message.get_content().replace("\n", "\r\n") == body
    (record,) = _logged(device, subject)
    assert record["action"] == "log-only"


class _RefusingServer:
    """An MTA that takes the envelope but refuses DATA (a full queue), and records every command."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.server: asyncio.Server | None = None
        self.host, self.hostname, self.smtp_port, self.smtps_port = (
            "127.0.0.1",
            "mx.refusing.example.net",
            0,
            0,
        )

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies = dict.fromkeys(("EHLO", "MAIL", "RCPT", "RSET", "NOOP"), b"250 ok\r\n")
        replies |= {"DATA": b"452 4.3.1 Insufficient system storage\r\n", "QUIT": b"221 bye\r\n"}
        writer.write(b"220 mx ESMTP\r\n")
        while line := await reader.readline():
            verb = line.decode().split(" ", 1)[0].strip().upper()
            self.commands.append(verb)
            writer.write(replies.get(verb, b"502 what\r\n"))
            await writer.drain()
            if verb == "QUIT":
                break
        writer.close()

    async def __aenter__(self) -> _RefusingServer:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.smtp_port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_a_server_that_refuses_the_held_message_is_heard_at_the_dot(device: FakeDevice) -> None:
    device.insp = _filtering()
    async with _RefusingServer() as mta:
        listener = VipListener(device, "vip-mx1", mta, mode="starttls")
        port = await listener.start()
        try:
            code, text = await send(port, token())
        finally:
            await listener.stop()

    # The device answered DATA itself; the server's refusal of its DATA is the client's answer.
    assert (code, text) == (452, b"4.3.1 Insufficient system storage")
    assert mta.commands[:4] == ["EHLO", "MAIL", "RCPT", "DATA"]
    assert "RSET" not in mta.commands[:5]
    assert device.logs == []  # nothing was accepted, nothing is logged


async def test_a_client_that_pipelines_data_is_relayed_unjudged(
    device: FakeDevice, maildir_backend: tuple[MailBackend, Path], vip: int
) -> None:
    # The device could not answer DATA before the replies to MAIL and RCPT: it relays the message.
    device.insp = _filtering(action="discard")
    subject = token()
    client = await SmtpClient.connect(vip)
    try:
        assert (await client.reply())[0] == 220
        assert (await client.cmd("EHLO probe.fortiauto.invalid"))[0] == 250
        client.writer.write(f"MAIL FROM:<{GOOD_FROM}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode())
        codes = [(await client.reply())[0] for _ in range(3)]
        client.writer.write(_message(subject).replace("\r\n.A", "\r\n..A").encode() + b".\r\n")
        codes.append((await client.reply())[0])
        assert (await client.cmd("QUIT"))[0] == 221
    finally:
        await client.close()

    assert codes == [250, 250, 354, 250]
    assert _delivered(maildir_backend[1], subject)[0]["Subject"] == subject
