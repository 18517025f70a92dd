"""Who the probe says it is (EHLO, MAIL FROM), and a probe the email filter judged as spam (F18).

The servers are real (aiosmtpd, scripted sockets); what they received is asserted, not only
what the probe reports.
"""

from __future__ import annotations

import email
import socket

import pytest

from fortiauto.probe import FailureClass, run_probe
from fortiauto.probe.classify import log_verdict, mail_flows, spam_reply, spam_tag
from fortiauto.probe.sender import ehlo_name, envelope_sender, reserved_name
from fortiauto.site import ProbeSpec, ProbeTransaction
from fortiauto.site.models import ProbeVia
from tests.unit.probe.conftest import SpecFactory
from tests.unit.probe.servers import Mailbox, Tls, aiosmtpd_server, banner_then, scripted


class Helo(Mailbox):
    """Mailbox that remembers the EHLO names it was given and the envelope senders."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.senders: list[str] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.names.append(hostname)
        return await super().handle_EHLO(server, session, envelope, hostname, responses)

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.senders.append(address)
        envelope.mail_from = address
        return "250 OK"


def _spec(**values) -> ProbeSpec:
    return ProbeSpec(host="127.0.0.1", **values)


@pytest.mark.parametrize(
    ("name", "reserved"),
    [
        ("gw.probe-site.net", False),
        ("mail.example.co.uk", False),
        ("probe.fortiauto.invalid", True),
        ("mx.example.test", True),
        ("localhost", True),
        ("vm", True),
        ("host.local", True),
        ("relay.example.com", True),
        ("203.0.113.5", True),
        ("[203.0.113.5]", True),
    ],
)
def test_reserved_names_are_the_ones_public_dns_never_answers(name, reserved):
    assert (reserved_name(name) is not None) is reserved


def test_ehlo_prefers_the_site_then_the_ssh_vantage_then_this_machine_then_the_sender_domain(tmp_path):
    via = ProbeVia(ssh="probe@outside.probe-site.net:22", key=tmp_path / "k", known_hosts=tmp_path / "kh")
    by_ip = ProbeVia(ssh="probe@198.51.100.7", key=tmp_path / "k", known_hosts=tmp_path / "kh")
    sender = ProbeTransaction(mail_from="probe@senders.net", rcpt_to="postmaster@mx-site.net")

    assert (
        ehlo_name(_spec(ehlo="mine.probe-site.net", via=via), machine_fqdn="a.b.net") == "mine.probe-site.net"
    )
    assert ehlo_name(_spec(via=via), machine_fqdn="a.b.net") == "outside.probe-site.net"
    assert ehlo_name(_spec(via=by_ip), machine_fqdn="build7.ops.net") == "build7.ops.net"
    assert ehlo_name(_spec(transaction=sender), machine_fqdn="localhost") == "senders.net"
    assert ehlo_name(_spec(), machine_fqdn="localhost") == "localhost"  # nothing better: warned


def test_the_envelope_sender_is_derived_in_the_recipients_domain():
    assert (
        envelope_sender(ProbeTransaction(rcpt_to="postmaster@mx-site.net")) == "fortiauto-probe@mx-site.net"
    )
    given = ProbeTransaction(mail_from="ops@senders.net", rcpt_to="postmaster@mx-site.net")
    assert envelope_sender(given) == "ops@senders.net"


async def test_the_server_sees_the_chosen_ehlo_and_sender_and_reserved_ones_are_warned(
    make_spec: SpecFactory, mx_tls: Tls
) -> None:
    helo = Helo()
    transaction = ProbeTransaction(rcpt_to="postmaster@mx-site.net")
    async with aiosmtpd_server(helo, starttls=mx_tls) as port:
        chosen = await run_probe(make_spec(port, transaction=transaction))
        reserved = await run_probe(
            make_spec(
                port,
                ehlo="probe.fortiauto.invalid",
                transaction=ProbeTransaction(
                    mail_from="probe@example.test", rcpt_to="postmaster@mx-site.net"
                ),
            )
        )

    expected = ehlo_name(make_spec(port, transaction=transaction), machine_fqdn=socket.getfqdn())
    assert chosen.passed, chosen.transcript
    assert reserved.passed, reserved.transcript
    # EHLO in clear and again under TLS, for each probe.
    assert helo.names == [expected, expected, "probe.fortiauto.invalid", "probe.fortiauto.invalid"]
    assert helo.senders == ["fortiauto-probe@mx-site.net", "probe@example.test"]
    assert any("HELO DNS lookup" in w for w in reserved.warnings)
    assert any("return-email DNS check" in w and "example.test" in w for w in reserved.warnings)
    assert not any("return-email" in w for w in chosen.warnings)
    assert b"From: <fortiauto-probe@mx-site.net>" in helo.messages[0]
    assert b"http" not in helo.messages[0].lower()  # nothing for the URL check to match


TRANSACTION = ProbeTransaction(mail_from="probe@senders.net", rcpt_to="postmaster@mx-site.net")
FORTIOS_SPAM = "554 5.7.1 This email has been blocked. The email message is detected as spam."
PLAIN_EHLO = b"250-mx.test\r\n250 8BITMIME\r\n"


def _after_dot(reply: str):
    return lambda: aiosmtpd_server(Mailbox(data_reply=reply))


def _dialogue(replies: dict[str, bytes], banner: bytes = b"220 mx.test ESMTP\r\n"):
    return lambda: scripted(
        banner_then({"EHLO": PLAIN_EHLO, "QUIT": b"221 bye\r\n", **replies}, banner=banner)
    )


@pytest.mark.parametrize(
    ("server", "step", "expected"),
    [
        (_after_dot(FORTIOS_SPAM), "dot", FailureClass.SPAM_REJECTED),
        (_dialogue({"RCPT": b"550 5.7.1 Client host rejected: listed in DNSBL zen\r\n"}), "rcpt",
         FailureClass.SPAM_REJECTED),
        (_dialogue({"MAIL": b"553 5.7.1 Sender rejected: return path domain has no DNS record\r\n"}), "mail",
         FailureClass.SPAM_REJECTED),
        (_dialogue({"EHLO": b"550 5.7.1 HELO/EHLO domain is invalid\r\n"}), "ehlo",
         FailureClass.SPAM_REJECTED),
        (_dialogue({}, b"554 5.7.1 Mail from this IP address is not allowed and has been blocked\r\n"),
         "banner", FailureClass.SPAM_REJECTED),
        (_dialogue({"RCPT": b"550 5.1.1 mailbox unavailable\r\n"}), "rcpt", FailureClass.ENVELOPE_REJECTED),
        (_after_dot("554 5.6.0 message refused"), "dot", FailureClass.AFTER_DOT),
    ],
)  # fmt: skip
async def test_a_spam_verdict_is_its_own_class_not_a_mail_outage(
    make_spec: SpecFactory, server, step, expected
) -> None:
    async with server() as port:
        result = await run_probe(make_spec(port, mode="plain", transaction=TRANSACTION, retries=3))

    assert result.failure_class == expected, result.transcript
    assert result.steps[-1].step == step
    if expected == FailureClass.SPAM_REJECTED:
        assert "rejected as spam by the email filter" in result.steps[-1].detail
        assert mail_flows(result.failure_class) is True  # the path works; the probe's identity does not
        assert result.attempts == 1  # a 5xx verdict is final: no retries
    else:
        assert mail_flows(result.failure_class) is False


async def test_a_transient_spam_verdict_is_retried(make_spec: SpecFactory) -> None:
    connections = 0
    script = banner_then({"RCPT": b"451 4.7.1 Greylisted: spam score too high, try later\r\n"})

    async def counted(reader, writer) -> None:
        nonlocal connections
        connections += 1
        await script(reader, writer)

    async with scripted(counted) as port:
        result = await run_probe(make_spec(port, mode="plain", transaction=TRANSACTION, retries=2))

    assert result.failure_class == FailureClass.SPAM_REJECTED
    assert connections == 2


def test_spam_reply_needs_a_failure_code():
    assert spam_reply(550, "blocked: SPAM")
    assert not spam_reply(250, "ok, spam score 0.1")
    assert not spam_reply(550, "mailbox full")


def test_a_tag_in_the_delivered_subject_or_headers_is_recognised():
    sent = "fortiauto probe run1-fgt1-mx1"
    tagged = email.message_from_string(f"Subject: Spam {sent}\n\nbody\n")
    header = email.message_from_string(f"Subject: {sent}\nX-FEAS-SPAMINFO: FortiGuard-AntiSpam ip\n\nbody\n")
    clean = email.message_from_string(f"Subject: {sent}\nX-Mailer: x\n\nbody\n")

    assert spam_tag(sent, tagged) == "subject tagged 'Spam'"
    assert spam_tag(sent, header) == "header X-FEAS-SPAMINFO: FortiGuard-AntiSpam ip"
    assert spam_tag(sent, clean) is None


def test_mail_flows_tells_outages_from_vantage_and_spam_verdicts():
    assert mail_flows(None) is True
    assert mail_flows(FailureClass.SPAM_TAGGED) is True
    assert mail_flows(FailureClass.VANTAGE_FAILED) is None
    assert mail_flows(FailureClass.BANNER_TIMEOUT) is False
    assert mail_flows(FailureClass.NOT_DELIVERED) is False


def test_the_log_entry_of_the_probe_tells_a_clean_message_from_a_verdict():
    clean = {
        "action": "log-only",
        "msg": "general email log",
        "eventtype": "smtp",
        "subject": "fortiauto probe x",
    }
    tagged = {"action": "tagged", "msg": "HELO/EHLO domain lookup failed", "eventtype": "smtp"}
    silent = {"action": "blocked"}

    assert log_verdict(clean) is None
    assert log_verdict({"action": "exempted"}) is None
    assert log_verdict(tagged) == "tagged: HELO/EHLO domain lookup failed"
    assert log_verdict(silent) == "blocked: no reason logged"
