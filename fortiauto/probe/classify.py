"""The probe's failure taxonomy (F1-F17 of reference/smtp-probe.md) and which failures deserve a retry.

The probe (``probe/smtp.py``) names every failure with one of these strings; the engine
decides rollback on ``ProbeResult.failure_class`` and reports show it verbatim, so the
strings are a contract. ``F17`` (accepted but never delivered) is decided by the engine
against the backend's mailbox; it is defined here so every class lives in one place.

Three classes say "not a mail outage": ``F0 vantage-failed`` (the SSH host or SOCKS5 proxy
the probe starts from could not be used: nothing was learned about mail), ``F18
spam-rejected`` and ``F18 spam-tagged`` (the path works and the email filter judged the
probe's own message: its sender identity, see probe/sender.py). ``mail_flows`` tells them
apart for the engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from email.message import Message
from enum import StrEnum

from fortiauto.results import ProbeResult, ProbeStep

__all__ = [
    "FailureClass",
    "against_baseline",
    "is_permanent",
    "judged_in_log",
    "log_verdict",
    "mail_flows",
    "spam_reply",
    "spam_tag",
]

_SLOW_BANNER_MS = 1000.0


class FailureClass(StrEnum):
    """Exact ``failure_class`` strings; a ``StrEnum`` so members compare equal to the text."""

    VANTAGE_FAILED = "F0 vantage-failed"  # not in the sheet: the probe's own start (probe.via) failed
    DNS = "F1 dns"
    REFUSED = "F2 refused"
    CONNECT_TIMEOUT = "F3 connect-timeout"
    BANNER_TIMEOUT = "F4 banner-timeout"
    CLOSED_BEFORE_BANNER = "F5 closed-before-banner"
    BAD_BANNER = "F6 bad-banner"
    EHLO_REJECTED = "F7 ehlo-rejected"
    AUTH_REJECTED = "F7 auth-rejected"  # not in the F1-F17 sheet: AUTH sits between EHLO and MAIL (swaks 28)
    STARTTLS_MISSING = "F8 starttls-missing"
    STARTTLS_REFUSED = "F9 starttls-refused"
    TLS_FAILED = "F10 tls-failed"
    STARTTLS_INJECTION = "F10 starttls-injection"
    CERTIFICATE_INVALID = "F11 certificate-invalid"
    CHAIN_UNTRUSTED = "F11 chain-untrusted"  # probe.verify_chain: the sent chain leads to no trusted CA
    CERTIFICATE_MISMATCH = "F12 certificate-mismatch"
    POST_TLS_EHLO = "F13 post-tls-ehlo"
    ENVELOPE_REJECTED = "F14 envelope-rejected"
    DATA_REJECTED = "F15 data-rejected"
    AFTER_DOT = "F16 after-dot"
    NOT_DELIVERED = "F17 not-delivered"
    # Not in the sheet: the email filter judged the probe's message (reference §4.3, §5.2 F14).
    SPAM_REJECTED = "F18 spam-rejected"
    SPAM_TAGGED = "F18 spam-tagged"


# What the server *presents* does not change between two connections a second apart: a
# stripped STARTTLS, injected bytes or the wrong certificate. Retrying those only delays
# the rollback. Timeouts, resets and refusals are what a flap looks like, so they retry.
_DETERMINISTIC = frozenset(
    {
        FailureClass.STARTTLS_MISSING,
        FailureClass.STARTTLS_INJECTION,
        FailureClass.CERTIFICATE_INVALID,
        FailureClass.CERTIFICATE_MISMATCH,
        FailureClass.CHAIN_UNTRUSTED,
    }
)
_NOT_OUTAGES = frozenset({FailureClass.SPAM_REJECTED, FailureClass.SPAM_TAGGED})
# Email filter log actions of a message no check flagged ("exempted": an allow list matched).
_CLEAN_ACTIONS = frozenset({"", "log-only", "pass", "passthrough", "exempted"})

# Reply texts of spam verdicts: FortiOS's replacement messages ("... blocked ... spam"), and
# the wording DNSBL/HELO/sender checks use in MTAs generally. A reply must also be 4xx/5xx.
_SPAM_TEXT = re.compile(
    r"\bspam|\bdnsbl\b|\b[ro]?rbl\b|\bordbl\b|block ?list(ed)?\b|black ?list(ed)?\b|\breputation\b"
    r"|\b(helo|ehlo)(/ehlo)? (dns|lookup|domain|name)|return[- ]path|return[- ]e?-?mail"
    r"|ip address is not allowed|\bfortiguard\b|email ?filter",
    re.IGNORECASE,
)
# Headers a spam verdict adds: FortiOS ``tag-type header|spaminfo`` (X-FEAS-*), common filters.
_SPAM_HEADER = re.compile(r"^x-(feas|spam|fortinet|fortiguard)", re.IGNORECASE)


def is_permanent(failure: FailureClass, reply_code: int | None = None) -> bool:
    """True when another attempt cannot change the outcome.

    A 5xx reply is the server's permanent answer (RFC 5321 §4.2.1) and a 4xx a transient
    one, whatever the step; without a reply, only deterministic presentation failures are
    permanent.
    """
    if reply_code is not None:
        return 500 <= reply_code < 600
    return failure in _DETERMINISTIC


def mail_flows(failure_class: str | None) -> bool | None:
    """Does this result show that mail flows? True: passed or judged as spam; None: unknown (F0).

    The engine must not roll back on ``None`` as if mail broke, nor commit as if it passed;
    ``False`` is a real mail failure.
    """
    if failure_class is None:
        return True
    if failure_class == FailureClass.VANTAGE_FAILED:
        return None
    return failure_class in _NOT_OUTAGES


def spam_reply(code: int, text: str) -> bool:
    """True when a 4xx/5xx reply reads like the email filter's spam verdict."""
    return 400 <= code < 600 and _SPAM_TEXT.search(text) is not None


def spam_tag(sent_subject: str, delivered: Message) -> str | None:
    """How the email filter tagged the delivered probe message, or ``None`` when it did not.

    For whoever reads the delivered message (the IMAP or lab confirmation): FortiOS's
    ``action tag`` with ``tag-type subject`` puts ``tag-msg`` around the subject, with
    ``header`` or ``spaminfo`` it adds a header (``set tag-msg`` / ``X-FEAS-SPAMINFO``).
    """
    subject = str(delivered.get("Subject", "") or "")
    if sent_subject and sent_subject in subject and subject.strip() != sent_subject.strip():
        added = subject.replace(sent_subject, "", 1).strip()
        return f"subject tagged {added!r}"
    for name, value in delivered.items():
        if _SPAM_HEADER.match(name):
            return f"header {name}: {str(value)[:80]}"
    return None


def log_verdict(entry: Mapping[str, object]) -> str | None:
    """The email filter's verdict on the probe's message, read from its log entry; ``None``: clean.

    For the effect check, which finds the probe's entry by subject: FortiOS logs a message no
    check flagged as ``action="log-only"`` with ``msg="general email log"`` (FortiOS 7.4 log
    message reference, email filter log, logid 0508020503); any other action is a verdict
    (tagged, blocked, ...) whose ``msg`` names the check that fired. A verdict is
    ``F18 spam-tagged``: the path works, the probe's identity does not pass.
    """
    action = str(entry.get("action") or "").strip().lower()
    if action in _CLEAN_ACTIONS:
        return None
    check = str(entry.get("msg") or entry.get("eventtype") or "no reason logged")
    return f"{action}: {check}"


def judged_in_log(result: ProbeResult, verdict: str) -> ProbeResult:
    """A probe that passed, whose message the email filter log shows judged as spam: ``F18 spam-tagged``.

    The message arrived (tagged) and was logged, so mail flows; the verdict (``log_verdict``:
    the action and the check that fired) is the last step, as a reply-time verdict is.
    """
    step = ProbeStep(step="log", ms=0.0, ok=False, detail=f"the email filter log says {verdict}")
    return replace(
        result,
        passed=False,
        failure_class=FailureClass.SPAM_TAGGED.value,
        steps=(*result.steps, step),
        transcript=(*result.transcript, f"*** {step.detail}"),
    )


def against_baseline(result: ProbeResult, baseline: ProbeResult | None) -> ProbeResult:
    """Judge ``result`` against the probe taken before the change.

    STARTTLS advertised then and missing now is a downgrade (an on-path box stripped it):
    a failure even where plain text would pass. A banner more than twice as slow and over a
    second is only a warning: greet-pause and tarpits are legitimate (reference §5.2).
    """
    if baseline is None:
        return result
    warnings = list(result.warnings)
    if (
        result.banner_ms is not None
        and baseline.banner_ms is not None
        and result.banner_ms > 2 * baseline.banner_ms
        and result.banner_ms > _SLOW_BANNER_MS
    ):
        warnings.append(f"slow banner: {result.banner_ms:.0f} ms, baseline {baseline.banner_ms:.0f} ms")
    if baseline.peer_issuer and result.peer_issuer and baseline.peer_issuer != result.peer_issuer:
        warnings.append(f"certificate issuer changed: {baseline.peer_issuer} -> {result.peer_issuer}")
    if result.passed and baseline.starttls_advertised and result.starttls_advertised is False:
        detail = "STARTTLS was advertised in the baseline and is missing now (downgrade)"
        return replace(
            result,
            passed=False,
            failure_class=FailureClass.STARTTLS_MISSING.value,
            steps=(*result.steps, ProbeStep(step="baseline", ms=0.0, ok=False, detail=detail)),
            transcript=(*result.transcript, f"*** {detail}"),
            warnings=tuple(warnings),
        )
    return replace(result, warnings=tuple(warnings))
