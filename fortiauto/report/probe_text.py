"""A ProbeResult as swaks-like text: verdict, the SMTP transcript, then one timed line per step.

Used by ``fortiauto probe`` and embedded in the console, JUnit and Markdown reports. Pure
formatting of data the probe already scrubbed (no AUTH secret ever reaches a transcript). What
the server sent is shown one line per entry (``safe.one_line``): a banner cannot forge lines.
"""

from __future__ import annotations

from fortiauto.report.safe import one_line
from fortiauto.results import ProbeResult

__all__ = ["render_probe"]


def _verdict(result: ProbeResult) -> str:
    outcome = "PASS" if result.passed else f"FAIL {result.failure_class or '?'}"
    tries = f"{result.attempts} attempt" + ("" if result.attempts == 1 else "s")
    return f"=== probe ({result.mode}): {outcome} after {tries}"


def _facts(result: ProbeResult) -> list[str]:
    facts = []
    if result.banner_ms is not None:
        facts.append(f"banner after {result.banner_ms:.1f} ms")
    if result.starttls_advertised is not None:
        facts.append("STARTTLS " + ("advertised" if result.starttls_advertised else "not advertised"))
    lines = [f"=== {', '.join(facts)}"] if facts else []
    if result.peer_cert_sha256:
        lines.append(f"=== certificate sha256 {result.peer_cert_sha256}, issuer {result.peer_issuer or '?'}")
    if result.message_id:
        lines.append(f"=== message {result.message_id}, subject {result.subject!r}")
    return lines


def _steps(result: ProbeResult) -> list[str]:
    width = max((len(step.step) for step in result.steps), default=4)
    return [
        f"{step.step:<{width}} {step.ms:9.1f} ms  {'ok  ' if step.ok else 'FAIL'}  {step.detail}".rstrip()
        for step in result.steps
    ]


def render_probe(result: ProbeResult) -> str:
    """Render one probe result (the last attempt's transcript) as plain text, newline-terminated."""
    lines = [_verdict(result), *result.transcript]
    vantage = getattr(result, "vantage", None)  # issue 15: where the probe connected from
    if vantage:
        lines.insert(1, f"=== via {vantage}")
    if result.steps:
        lines.append("--- steps")
        lines.extend(_steps(result))
    lines.extend(_facts(result))
    lines.extend(f"!!! {warning}" for warning in result.warnings)
    return "\n".join(one_line(line) for line in lines) + "\n"
