"""The probe against well-behaved servers: every mode, AUTH, a transaction, DNS; no secret in any output."""

from __future__ import annotations

import json
import re

import trustme

from fortiauto.probe import probe_once, run_probe
from fortiauto.report.probe_text import render_probe
from fortiauto.results import ProbeResult
from fortiauto.site import ProbeTransaction
from tests.unit.probe.conftest import SpecFactory
from tests.unit.probe.servers import (
    SERVER_NAME,
    Authenticator,
    Mailbox,
    Tls,
    aiosmtpd_server,
    banner_then,
    issue,
    scripted,
)

TRANSACTION = ProbeTransaction(mail_from="probe@example.test", rcpt_to="postmaster@example.test")
PASSWORD = "s3cret-Pa55word"  # looked for in every output below


def step_names(result: ProbeResult) -> list[str]:
    return [step.step for step in result.steps]


async def test_plain_mode_talks_in_clear_and_records_starttls_offer(
    make_spec: SpecFactory, mx_tls: Tls
) -> None:
    async with aiosmtpd_server(Mailbox(), starttls=mx_tls) as port:
        result = await run_probe(make_spec(port, mode="plain"))

    assert result.passed, result.transcript
    assert result.failure_class is None
    assert step_names(result) == ["connect", "banner", "ehlo", "quit"]
    assert result.starttls_advertised is True
    assert result.peer_cert_sha256 is None
    assert result.transcript[0] == f"=== Trying 127.0.0.1:{port}..."
    assert not any(line.startswith(("<~", " ~>")) for line in result.transcript)
    assert result.banner_ms is not None


async def test_starttls_transaction_delivers_a_message_with_a_unique_id(
    make_spec: SpecFactory, mx_tls: Tls
) -> None:
    mailbox = Mailbox()
    async with aiosmtpd_server(mailbox, starttls=mx_tls, require_starttls=True) as port:
        spec = make_spec(port, transaction=TRANSACTION, ehlo="gw.probe-site.net")
        first = await run_probe(spec, pin_sha256=mx_tls.sha256, subject_token="run1-fgt1-mx1")
        second = await probe_once(spec, pin_sha256=mx_tls.sha256)

    assert first.passed, first.transcript
    assert step_names(first) == [
        "connect", "banner", "ehlo", "starttls", "tls", "ehlo-tls", "mail", "rcpt", "data", "dot", "quit",
    ]  # fmt: skip
    assert first.peer_cert_sha256 == mx_tls.sha256
    assert first.starttls_advertised is True
    assert first.subject == "fortiauto probe run1-fgt1-mx1"
    # The Message-ID is in the envelope sender's domain, like a real MTA's.
    assert re.fullmatch(r"<fortiauto-probe-[0-9a-f]{32}@example\.test>", first.message_id or "")
    assert second.message_id != first.message_id
    assert second.message_id is not None
    assert second.subject == f"fortiauto probe {second.message_id[17:49]}"  # the uuid when no token
    assert len(mailbox.messages) == 2
    assert f"Message-ID: {first.message_id}".encode() in mailbox.messages[0]
    assert b"Subject: fortiauto probe run1-fgt1-mx1" in mailbox.messages[0]
    # Everything after the STARTTLS 220 is marked as inside TLS, as swaks does.
    tls_start = first.transcript.index("<-  220 Ready to start TLS")
    assert " ~> EHLO gw.probe-site.net" in first.transcript[tls_start:]
    assert all(not line.startswith(("<- ", " -> ")) for line in first.transcript[tls_start + 1 :])
    assert "<~  250 OK queued as probe" in first.transcript


async def test_smtps_handshakes_before_the_banner(make_spec: SpecFactory, mx_tls: Tls) -> None:
    async with aiosmtpd_server(Mailbox(), implicit_tls=mx_tls) as port:
        result = await run_probe(make_spec(port, mode="smtps"), pin_sha256=mx_tls.sha256.upper())

    assert result.passed, result.transcript
    assert step_names(result) == ["connect", "tls", "banner", "ehlo", "quit"]
    assert any(line.startswith("<~  220 ") for line in result.transcript)
    assert result.starttls_advertised is None


async def test_opportunistic_uses_tls_when_offered_and_plain_otherwise(
    make_spec: SpecFactory, mx_tls: Tls
) -> None:
    async with aiosmtpd_server(Mailbox(), starttls=mx_tls) as port:
        with_tls = await run_probe(make_spec(port, mode="opportunistic"))
    async with aiosmtpd_server(Mailbox()) as port:
        without = await run_probe(make_spec(port, mode="opportunistic"))

    assert with_tls.passed
    assert "tls" in step_names(with_tls)
    assert without.passed, without.transcript
    assert without.starttls_advertised is False
    assert "tls" not in step_names(without)
    assert "=== STARTTLS not advertised; continuing in plain text (opportunistic)" in without.transcript


async def test_wildcard_certificate_covers_the_server_name(make_spec: SpecFactory, ca: trustme.CA) -> None:
    wildcard = issue(ca, "*.example.test")
    async with aiosmtpd_server(Mailbox(), starttls=wildcard) as port:
        result = await run_probe(make_spec(port, server_name=SERVER_NAME))

    assert result.passed, result.transcript


async def test_auth_plain_and_login_never_show_the_password(make_spec: SpecFactory, mx_tls: Tls) -> None:
    results = []
    for exclude in (["LOGIN"], ["PLAIN"]):
        async with aiosmtpd_server(
            Mailbox(),
            starttls=mx_tls,
            authenticator=Authenticator("submit", PASSWORD),
            auth_exclude_mechanism=exclude,
        ) as port:
            spec = make_spec(port, username="submit", password=PASSWORD, transaction=TRANSACTION)
            results.append(await run_probe(spec))

    plain, login = results
    assert plain.passed, plain.transcript
    assert login.passed, login.transcript
    assert " ~> AUTH PLAIN ***" in plain.transcript
    assert " ~> AUTH LOGIN" in login.transcript
    assert login.transcript.count(" ~> ***") == 2
    for result in results:
        assert "auth" in step_names(result)
        shown = "\n".join(
            [render_probe(result), repr(result), json.dumps(result.to_json()), *result.transcript]
        )
        assert PASSWORD not in shown
        assert "s3cret" not in shown


async def test_dns_step_only_for_names(make_spec: SpecFactory) -> None:
    async with aiosmtpd_server(Mailbox()) as port:
        named = await run_probe(make_spec(port, host="localhost", mode="plain"))
        literal = await run_probe(make_spec(port, mode="plain"))

    assert named.passed, named.transcript
    assert named.steps[0].step == "dns"
    assert named.steps[0].ok
    assert "127.0.0.1" in named.steps[0].detail
    assert "dns" not in step_names(literal)


async def test_multiline_banner_is_read_whole(make_spec: SpecFactory) -> None:
    script = banner_then({}, banner=b"220-mx.test ESMTP\r\n220-greetings\r\n220 ready\r\n")
    async with scripted(script) as port:
        result = await run_probe(make_spec(port, mode="plain"))

    assert result.passed, result.transcript
    assert [line for line in result.transcript if line.startswith("<-  220")] == [
        "<-  220-mx.test ESMTP",
        "<-  220-greetings",
        "<-  220 ready",
    ]


async def test_helo_fallback_passes_plain_with_a_warning(make_spec: SpecFactory) -> None:
    async with scripted(banner_then({"EHLO": b"502 5.5.1 EHLO not implemented\r\n"})) as port:
        result = await run_probe(make_spec(port, mode="plain"))

    assert result.passed, result.transcript
    ehlo, helo = result.steps[2], result.steps[3]
    assert (ehlo.step, ehlo.ok, helo.step, helo.ok) == ("ehlo", False, "helo", True)
    assert result.starttls_advertised is False
    assert any("HELO accepted" in warning for warning in result.warnings)
