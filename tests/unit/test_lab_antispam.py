"""The lab's email filter (fortiauto_lab/antispam.py): each check's verdict, FortiOS's order, tagging.

Pure functions, so every case is a message and a profile; the data plane tests drive the same
code through real SMTP sessions.
"""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest

from fortiauto_lab.antispam import (
    GTUBE,
    SPAMINFO_HEADER,
    SURBL_TEST_POINT,
    Listings,
    Mail,
    SpamFilter,
    judge,
    resolves,
    tagged,
)

ALL_CHECKS = (
    "spamfsip",
    "spamfsurl",
    "spamfschksum",
    "spamhelodns",
    "spamraddrdns",
    "spamrbl",
    "spamhdrcheck",
)
CLEAN = b"From: probe@mail.probe-site.net\r\nSubject: fortiauto probe tok-1\r\n\r\nA plain line.\r\n"
LISTED = "192.0.2.25"


def _mail(**changes: object) -> Mail:
    values: dict[str, object] = {
        "client_ip": "198.51.100.7",
        "helo": "gw.probe-site.net",
        "mail_from": "probe@probe-site.net",
        "content": CLEAN,
    }
    values.update(changes)
    return Mail(**values)  # type: ignore[arg-type]


def _lists(**changes: frozenset[str]) -> Listings:
    return Listings(**changes)


@pytest.mark.parametrize(
    ("name", "answers"),
    [
        ("gw.probe-site.net", True),
        ("MAIL.Example.CO.UK.", True),
        ("example.com", True),  # RFC 2606 second-level names do have records (IANA serves them)
        ("probe.fortiauto.invalid", False),
        ("mx1.example.test", False),
        ("host.example", False),
        ("localhost", False),
        ("box.localhost", False),
        ("printer.local", False),
        ("nas.home.arpa", False),
        ("db.corp.internal", False),
        ("x.onion", False),
        ("vm", False),
        ("203.0.113.5", False),
        ("[203.0.113.5]", False),
        ("[IPv6:2001:db8::1]", False),
        ("bad_name.example.net", False),
        ("-lead.example.net", False),
        ("", False),
        ("a." * 130 + "net", False),  # longer than 253
    ],
)
def test_the_lab_dns_answers_only_names_public_dns_would(name: str, answers: bool) -> None:
    assert resolves(name) is answers


def test_a_clean_probe_passes_every_check() -> None:
    assert judge(_mail(), SpamFilter(checks=ALL_CHECKS)) is None


def test_each_check_names_itself_and_its_fortios_texts() -> None:
    cases = [
        (_mail(client_ip=LISTED), ("spamrbl",), _lists(dnsbl=frozenset({LISTED})),
         f"dnsbl, path block/allow ip {LISTED}", "smtp-spam-dnsbl"),
        (_mail(client_ip=LISTED), ("spamfsip",), _lists(fortiguard_ip=frozenset({LISTED})),
         f"FortiGuard-AntiSpam ip, path block/allow ip {LISTED}", "smtp-spam-feip"),
        (_mail(helo="probe.fortiauto.invalid"), ("spamhelodns",), _lists(), "helo-dns", "smtp-spam-helo"),
        (_mail(mail_from="probe@mx.example.test"), ("spamraddrdns",), _lists(),
         "return-email, domain mx.example.test has neither MX nor A record", "reversedns"),
        (_mail(content=CLEAN + GTUBE + b"\r\n"), ("spamfschksum",), _lists(),
         "FortiGuard-AntiSpam ase, email checksum", "smtp-spam-ase"),
        (_mail(content=CLEAN + f"see http://www.{SURBL_TEST_POINT}/x\r\n".encode()), ("spamfsurl",), _lists(),
         f"FortiGuard-AntiSpam ase, url www.{SURBL_TEST_POINT}", "smtp-spam-ase"),
    ]  # fmt: skip
    for mail, checks, listings, spaminfo, replacemsg in cases:
        verdict = judge(mail, SpamFilter(checks=checks), listings)
        assert verdict is not None, checks
        assert (verdict.check, verdict.spaminfo, verdict.replacemsg) == (checks[0], spaminfo, replacemsg)
        assert verdict.smtp_reply.startswith(b"554 5.7.1 This email has been blocked.")
        assert verdict.smtp_reply.endswith(b"\r\n")
        # The same message passes when the profile does not perform that check.
        others = tuple(c for c in ALL_CHECKS if c != checks[0])
        assert judge(mail, SpamFilter(checks=others), listings) is None, checks


def test_a_check_fires_only_on_what_it_looks_at() -> None:
    listed = _lists(dnsbl=frozenset({LISTED}), fortiguard_ip=frozenset({LISTED}))
    # Another address, a resolvable name, a URL that only mentions the test point in a query.
    mail = _mail(content=CLEAN + f"http://safe.example.net/?ref={SURBL_TEST_POINT}\r\n".encode())
    assert judge(mail, SpamFilter(checks=ALL_CHECKS), listed) is None
    # A listed host also fires as a parent of the URL's host, never as a suffix of a longer label.
    near = _mail(content=CLEAN + f"http://not{SURBL_TEST_POINT}/\r\n".encode())
    assert judge(near, SpamFilter(checks=("spamfsurl",))) is None


def test_the_null_reverse_path_has_no_return_domain() -> None:
    verdict = judge(_mail(mail_from=""), SpamFilter(checks=("spamraddrdns",)))
    assert verdict is not None
    assert verdict.spaminfo == "return-email, domain name  has invalid syntax"
    literal = judge(_mail(mail_from="probe@[203.0.113.5]"), SpamFilter(checks=("spamraddrdns",)))
    assert literal is not None
    assert "invalid syntax" in literal.spaminfo


def test_helo_dns_is_not_checked_on_smtps() -> None:
    mail = _mail(helo="probe.fortiauto.invalid", smtps=True)
    assert judge(mail, SpamFilter(checks=("spamhelodns",))) is None
    assert judge(_mail(helo="probe.fortiauto.invalid"), SpamFilter(checks=("spamhelodns",))) is not None


def test_the_first_check_in_fortios_order_wins_whatever_the_profile_order() -> None:
    everything_wrong = _mail(
        client_ip=LISTED,
        helo="probe.fortiauto.invalid",
        mail_from="x@bad.invalid",
        content=CLEAN + GTUBE + f"\r\nhttp://{SURBL_TEST_POINT}/\r\n".encode(),
    )
    listed = _lists(dnsbl=frozenset({LISTED}), fortiguard_ip=frozenset({LISTED}))
    # FortiOS order: DNSBL, FortiGuard IP, HELO DNS, return-email DNS, checksum, URL.
    expected = ["spamrbl", "spamfsip", "spamhelodns", "spamraddrdns", "spamfschksum", "spamfsurl"]
    remaining = list(reversed(expected))  # the profile lists them backwards
    for want in expected:
        verdict = judge(everything_wrong, SpamFilter(checks=tuple(remaining)), listed)
        assert verdict is not None
        assert verdict.check == want
        remaining.remove(want)
    assert judge(everything_wrong, SpamFilter(checks=tuple(remaining)), listed) is None


def test_action_pass_turns_spam_filtering_off() -> None:
    spam = SpamFilter(checks=("spamhelodns",), action="pass")
    assert not spam.active
    assert judge(_mail(helo="x.invalid"), spam) is None
    assert not SpamFilter(checks=()).active


def _parsed(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=default_policy)


def test_tagging_prepends_the_subject_and_appends_spaminfo_keeping_the_body() -> None:
    verdict = judge(_mail(helo="x.invalid"), SpamFilter(checks=("spamhelodns",)))
    assert verdict is not None
    out = tagged(CLEAN, verdict, SpamFilter(checks=("spamhelodns",), action="tag"))
    message = _parsed(out)
    assert message["Subject"] == "Spam fortiauto probe tok-1"
    assert message[SPAMINFO_HEADER] == "helo-dns"
    assert out.endswith(b"\r\n\r\nA plain line.\r\n")
    assert b"\n" not in out.replace(b"\r\n", b"")  # line ends stay CRLF


def test_tag_types_and_messages_follow_the_profile() -> None:
    verdict = judge(_mail(helo="x.invalid"), SpamFilter(checks=("spamhelodns",)))
    assert verdict is not None
    only_header = SpamFilter(checks=("spamhelodns",), tag_type=("header",), tag_msg="X-Spam-Flag: YES")
    message = _parsed(tagged(CLEAN, verdict, only_header))
    assert message["X-Spam-Flag"] == "YES"
    assert message["Subject"] == "fortiauto probe tok-1"
    assert message[SPAMINFO_HEADER] is None
    bare = SpamFilter(checks=("spamhelodns",), tag_type=("subject", "header"), tag_msg="[SPAM]")
    message = _parsed(tagged(CLEAN, verdict, bare))
    assert message["Subject"] == "[SPAM] fortiauto probe tok-1"
    assert message["X-Spam-Tag"] == "[SPAM]"


def test_tagging_a_message_without_subject_or_body_stays_a_message() -> None:
    verdict = judge(_mail(helo="x.invalid"), SpamFilter(checks=("spamhelodns",)))
    assert verdict is not None
    out = tagged(b"From: a@b.example.net\r\n", verdict, SpamFilter(checks=("spamhelodns",)))
    message = _parsed(out)
    assert message["Subject"] == "Spam"
    assert message[SPAMINFO_HEADER] == "helo-dns"
    folded = b"Subject: a long\r\n subject\r\nFrom: a@b.example.net\r\n\r\nbody\r\n"
    assert (
        _parsed(tagged(folded, verdict, SpamFilter(checks=("spamhelodns",))))["Subject"]
        == "Spam a long subject"
    )
