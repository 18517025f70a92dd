"""render_probe: verdict line, transcript, one line per step, warnings."""

from __future__ import annotations

from fortiauto.report.probe_text import render_probe
from fortiauto.results import ProbeResult, ProbeStep


def test_failed_probe_renders_verdict_transcript_steps_and_warnings() -> None:
    result = ProbeResult(
        passed=False,
        mode="starttls",
        failure_class="F4 banner-timeout",
        attempts=3,
        steps=(
            ProbeStep("connect", 0.42, True, "127.0.0.1:2525"),
            ProbeStep("banner", 500.04, False, "no reply within 0.5 s"),
        ),
        transcript=("=== Trying 127.0.0.1:2525...", "=== Connected to 127.0.0.1.", "*** banner: no reply"),
        warnings=("slow banner: 2500 ms, baseline 100 ms",),
    )

    lines = render_probe(result).splitlines()

    assert lines[0] == "=== probe (starttls): FAIL F4 banner-timeout after 3 attempts"
    assert lines[1:4] == list(result.transcript)
    assert lines[4] == "--- steps"
    assert lines[5] == "connect       0.4 ms  ok    127.0.0.1:2525"
    assert lines[6] == "banner      500.0 ms  FAIL  no reply within 0.5 s"
    assert lines[-1] == "!!! slow banner: 2500 ms, baseline 100 ms"


def test_passing_probe_shows_certificate_and_message() -> None:
    result = ProbeResult(
        passed=True,
        mode="smtps",
        peer_cert_sha256="ab" * 32,
        peer_issuer="Example CA",
        message_id="<fortiauto-probe-1@fortiauto.invalid>",
        subject="fortiauto probe t1",
        banner_ms=12.0,
    )

    text = render_probe(result)

    assert text.startswith("=== probe (smtps): PASS after 1 attempt\n")
    assert "--- steps" not in text
    assert f"=== certificate sha256 {'ab' * 32}, issuer Example CA" in text
    assert "=== message <fortiauto-probe-1@fortiauto.invalid>, subject 'fortiauto probe t1'" in text
    assert "=== banner after 12.0 ms" in text
    assert text.endswith("\n")
