"""The probe's failure taxonomy (F1-F17 of reference/smtp-probe.md) and which failures deserve a retry.

The probe (``probe/smtp.py``) names every failure with one of these strings; the engine
decides rollback on ``ProbeResult.failure_class`` and reports show it verbatim, so the
strings are a contract. ``F17`` (accepted but never delivered) is decided by the engine
against the backend's mailbox; it is defined here so every class lives in one place.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

from fortiauto.results import ProbeResult, ProbeStep

__all__ = ["FailureClass", "against_baseline", "is_permanent"]

_SLOW_BANNER_MS = 1000.0


class FailureClass(StrEnum):
    """Exact ``failure_class`` strings; a ``StrEnum`` so members compare equal to the text."""

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
    CERTIFICATE_MISMATCH = "F12 certificate-mismatch"
    POST_TLS_EHLO = "F13 post-tls-ehlo"
    ENVELOPE_REJECTED = "F14 envelope-rejected"
    DATA_REJECTED = "F15 data-rejected"
    AFTER_DOT = "F16 after-dot"
    NOT_DELIVERED = "F17 not-delivered"


# What the server *presents* does not change between two connections a second apart: a
# stripped STARTTLS, injected bytes or the wrong certificate. Retrying those only delays
# the rollback. Timeouts, resets and refusals are what a flap looks like, so they retry.
_DETERMINISTIC = frozenset(
    {
        FailureClass.STARTTLS_MISSING,
        FailureClass.STARTTLS_INJECTION,
        FailureClass.CERTIFICATE_INVALID,
        FailureClass.CERTIFICATE_MISMATCH,
    }
)


def is_permanent(failure: FailureClass, reply_code: int | None = None) -> bool:
    """True when another attempt cannot change the outcome.

    A 5xx reply is the server's permanent answer (RFC 5321 §4.2.1) and a 4xx a transient
    one, whatever the step; without a reply, only deterministic presentation failures are
    permanent.
    """
    if reply_code is not None:
        return 500 <= reply_code < 600
    return failure in _DETERMINISTIC


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
