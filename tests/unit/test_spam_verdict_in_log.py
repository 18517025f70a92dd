"""A probe message the email filter log shows judged as spam: F18, the check named, not a proven effect.

The log lines are FortiOS ``raw`` text as the log API serves it (and as the lab writes it);
``find_evidence`` reads them through a stand-in log reader that answers like a FortiGate.
"""

from __future__ import annotations

from typing import Any

from fortiauto.probe.classify import FailureClass, judged_in_log, mail_flows
from fortiauto.probe.evidence import find_evidence
from fortiauto.results import ProbeResult, ProbeStep
from fortiauto.transaction.outcome import Ending, success

TOKEN = "run1-fgt-001-mx1-abc123"
CLEAN = (
    'date=2026-12-01 time=12:00:00 logid="0508020503" type="utm" subtype="emailfilter" eventtype="smtp" '
    'level="information" policyid=1 action="log-only" msg="general email log" '
    f'subject="fortiauto probe {TOKEN}"'
)
TAGGED = CLEAN.replace('action="log-only" msg="general email log"', 'action="tagged" msg="helo-dns"')


class LogOnly:
    """The FortiOS log API for one memory log: ``raw`` lines, filtered by subject as FortiOS does."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    async def get(self, path: str, **_: Any) -> list[dict[str, Any]]:
        return []

    async def log_get(self, path: str, *, vdom: str, params: dict[str, str]) -> str:
        wanted = params["filter"].removeprefix("subject=@")
        return "\n".join(line for line in self.lines if wanted in line)


def _passed() -> ProbeResult:
    steps = (ProbeStep("banner", 1.0, True), ProbeStep("dot", 1.0, True, "250 2.0.0 Ok: queued"))
    return ProbeResult(passed=True, mode="starttls", steps=steps, subject=f"fortiauto probe {TOKEN}")


async def test_a_clean_entry_has_no_verdict_and_a_judged_one_names_its_check() -> None:
    clean = await find_evidence(LogOnly([CLEAN]), "root", TOKEN, sources=["memory"])
    tagged = await find_evidence(LogOnly([TAGGED]), "root", TOKEN, sources=["memory"])

    assert clean is not None
    assert clean.verdict is None
    assert "verdict" not in clean.to_json()
    assert tagged is not None
    assert tagged.verdict == "tagged: helo-dns"
    assert tagged.to_json()["verdict"] == "tagged: helo-dns"


def test_a_probe_judged_in_the_log_is_spam_tagged_and_mail_still_flows() -> None:
    judged = judged_in_log(_passed(), "tagged: helo-dns")

    assert judged.failure_class == FailureClass.SPAM_TAGGED
    assert not judged.passed
    assert mail_flows(judged.failure_class) is True
    assert judged.steps[-1].step == "log"
    assert judged.steps[-1].detail == "the email filter log says tagged: helo-dns"
    assert judged.steps[:-1] == _passed().steps


def test_the_outcome_is_unproven_with_the_check_in_the_reason() -> None:
    ending, reason = success(
        rung=None, effect="logged", changed=True, probes=[judged_in_log(_passed(), "tagged: helo-dns")]
    )
    assert ending == Ending.UNPROVEN
    assert "(F18 spam-tagged: the email filter log says tagged: helo-dns)" in reason

    ending, reason = success(rung=None, effect="logged", changed=True, probes=[_passed()])
    assert (ending, reason) == (Ending.APPLIED, "applied and probe passed")
