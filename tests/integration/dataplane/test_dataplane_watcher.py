"""SmtpWatcher (no I/O): pairing replies with commands and spotting accepted messages."""

from __future__ import annotations

import pytest

from fortiauto_lab.dataplane import (
    EMAILFILTER_LOGID,
    MAX_LINE,
    MAX_PENDING,
    ProtocolViolation,
    SeenMessage,
    SmtpWatcher,
    emailfilter_log,
)
from fortiauto_lab.view import Inspection


def _session(watcher: SmtpWatcher, script: list[tuple[str, bytes]]) -> list[object]:
    """Feed ``("C", line)`` / ``("S", line)`` pairs; collect the replies completed."""
    replies = []
    for side, line in script:
        if side == "C":
            watcher.client_line(line)
        else:
            reply = watcher.server_line(line)
            if reply is not None:
                replies.append(reply)
    return replies


ACCEPTED = [
    ("S", b"220 mx ESMTP\r\n"),
    ("C", b"EHLO probe\r\n"),
    ("S", b"250-mx\r\n"),
    ("S", b"250-STARTTLS\r\n"),
    ("S", b"250 HELP\r\n"),
    ("C", b"MAIL FROM:<a@example.test> SIZE=10\r\n"),
    ("S", b"250 OK\r\n"),
    ("C", b"RCPT TO:<b@example.test>\r\n"),
    ("S", b"250 OK\r\n"),
    ("C", b"RCPT TO:<nobody@example.test>\r\n"),
    ("S", b"550 no such user\r\n"),
    ("C", b"RCPT TO:c@example.test\r\n"),
    ("S", b"250 OK\r\n"),
    ("C", b"DATA\r\n"),
    ("S", b"354 go ahead\r\n"),
    ("C", b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"),
    ("C", b"..Message-ID: <stuffed@x>\r\n"),
    ("C", b"\r\n"),
    ("C", b"Subject: not a header, body text\r\n"),
    ("C", b".\r\n"),
    ("S", b"250 2.0.0 Ok: queued\r\n"),
]


def test_accepted_message_is_seen_with_envelope_and_decoded_headers():
    replies = _session(SmtpWatcher(), ACCEPTED)

    assert [(r.command, r.code) for r in replies] == [
        ("BANNER", 220),
        ("EHLO", 250),
        ("MAIL", 250),
        ("RCPT", 250),
        ("RCPT", 550),
        ("RCPT", 250),
        ("DATA", 354),
        (".", 250),
    ]
    assert replies[1].raw == b"250-mx\r\n250-STARTTLS\r\n250 HELP\r\n"
    assert replies[-1].message == SeenMessage(
        mail_from="a@example.test",
        rcpt_tos=("b@example.test", "c@example.test"),
        subject="café",
        message_id="",  # the dot-stuffed line is ".Message-ID", not a Message-ID header
        size=len(b"Subject: =?utf-8?q?caf=C3=A9?=\r\n..Message-ID: <stuffed@x>\r\n\r\n")
        + len(b"Subject: not a header, body text\r\n"),
    )


def test_rejected_after_the_dot_is_not_seen_as_accepted():
    script = [*ACCEPTED[:-1], ("S", b"554 5.7.1 rejected\r\n")]
    replies = _session(SmtpWatcher(), script)
    assert replies[-1].code == 554
    assert replies[-1].message is None


def test_rset_forgets_the_envelope():
    watcher = SmtpWatcher()
    script = [
        ("S", b"220 mx\r\n"),
        ("C", b"MAIL FROM:<old@example.test>\r\n"),
        ("S", b"250 OK\r\n"),
        ("C", b"RSET\r\n"),
        ("S", b"250 OK\r\n"),
        ("C", b"DATA\r\n"),
        ("S", b"354 go\r\n"),
        ("C", b".\r\n"),
        ("S", b"250 OK\r\n"),
    ]
    message = _session(watcher, script)[-1].message
    assert message is not None
    assert message.mail_from == ""
    assert message.rcpt_tos == ()


def test_local_answers_and_injected_commands():
    watcher = SmtpWatcher()
    _session(watcher, [("S", b"220 mx\r\n"), ("C", b"DATA\r\n")])
    assert watcher.answer_locally(354).command == "DATA"
    assert watcher.in_body
    assert watcher.client_line(b"hello\r\n") == "BODY"
    assert watcher.client_line(b".\r\n") == "."
    assert watcher.answer_locally(250).command == "."
    watcher.inject("RSET")
    reply = watcher.server_line(b"250 2.0.0 Ok\r\n")
    assert reply is not None
    assert reply.injected
    assert reply.command == "RSET"


def test_restart_after_tls_expects_no_banner():
    watcher = SmtpWatcher()
    _session(watcher, [("S", b"220 mx\r\n"), ("C", b"STARTTLS\r\n"), ("S", b"220 go ahead\r\n")])
    watcher.restart_after_tls()
    watcher.client_line(b"EHLO probe\r\n")
    reply = watcher.server_line(b"250 mx\r\n")
    assert reply is not None
    assert reply.command == "EHLO"


def test_unsolicited_reply_is_paired_with_nothing():
    watcher = SmtpWatcher()
    _session(watcher, [("S", b"220 mx\r\n")])
    reply = watcher.server_line(b"421 4.4.2 timeout\r\n")
    assert reply is not None
    assert (reply.command, reply.code) == ("", 421)


def test_a_client_that_never_reads_replies_is_cut_off():
    watcher = SmtpWatcher()
    for _ in range(MAX_PENDING - 1):  # the banner is already pending
        watcher.client_line(b"NOOP\r\n")
    with pytest.raises(ProtocolViolation):
        watcher.client_line(b"NOOP\r\n")


def test_endless_multiline_reply_is_cut_off():
    watcher = SmtpWatcher()
    line = b"250-" + b"x" * 1000 + b"\r\n"
    for _ in range(MAX_LINE // len(line)):
        assert watcher.server_line(line) is None
    with pytest.raises(ProtocolViolation):
        watcher.server_line(line)


def test_emailfilter_log_record():
    message = SeenMessage("a@example.test", ("b@example.test", "c@example.test"), "hi", "<m@x>", 42)
    record = emailfilter_log(
        message, policyid=12, sessionid=99, src=("192.0.2.1", 40000), dst=("10.0.0.25", 25), service="SMTP"
    )
    assert record["logid"] == EMAILFILTER_LOGID
    assert record["to"] == "b@example.test, c@example.test"
    assert record["policyid"] == "12"
    assert record["sessionid"] == "99"
    assert (record["srcip"], record["dstport"]) == ("192.0.2.1", "25")
    assert record["size"] == "42"
    assert len(record["date"]) == 10
    assert len(record["time"]) == 8
    assert all(isinstance(value, str) for value in record.values())


def test_inspection_repr_keeps_the_key_out():
    insp = Inspection(policyid=1, ssl_mode="replace", server_cert=("CERT", "-----BEGIN PRIVATE KEY-----"))
    assert "PRIVATE KEY" not in repr(insp)
