"""Runs built by hand for the report tests: a fleet with a changed, a fallback and a rolled-back device.

Built without the engine so each report's handling of every field can be shown exactly, with
every probe, the phase timeline and the failure that caused a rollback or a fallback. The
``probes``/``timeline``/``policy_name`` fields are carried by a subclass, so these runs look the
same to the reports whether or not ``DeviceResult`` itself has those fields yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fortiauto import results
from fortiauto.results import Change, DeviceResult, Plan, ProbeResult, ProbeStep, RunResult

RUN_ID = "20261124T221503Z-1a2b3c"
WHEN = datetime(2026, 11, 24, 22, 15, 3, tzinfo=UTC)

# Every trick a name, reason or server text can play on a report format.
HOSTILE = (
    "evil\n## forged heading\n| forged | row |\n[bold]bold[/bold] [http 500, error -1] "
    '<script>alert(1)</script><img src="http://203.0.113.9/x.png"> `code` ]]> &amp; \x1b[31mred\u202e'
)


@dataclass(frozen=True)
class _Probe:
    stage: str
    mail_server: str
    result: ProbeResult
    rung: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "mail_server": self.mail_server, "rung": self.rung}


@dataclass(frozen=True)
class _Mark:
    phase: str
    ms: float
    rung: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "ms": self.ms, "rung": self.rung}


# results.py's own types once it has them; stand-ins with the same attributes before.
Probe: Any = getattr(results, "StageProbe", _Probe)
Mark: Any = getattr(results, "TimelineMark", _Mark)


@dataclass(frozen=True)
class Result(DeviceResult):
    """A DeviceResult with the fields the reports read (whether or not results.py has them)."""

    probes: tuple[Any, ...] = ()
    timeline: tuple[Any, ...] = ()
    policy_name: str | None = None
    effect_evidence: dict[str, Any] | None = None


def passed(mode: str = "starttls") -> ProbeResult:
    return ProbeResult(
        passed=True,
        mode=mode,
        steps=(
            ProbeStep("connect", 1.2, True),
            ProbeStep("banner", 3.4, True, "220 mx1 ESMTP"),
            ProbeStep("ehlo", 0.8, True),
            ProbeStep("starttls", 12.5, True),
        ),
        transcript=("<- 220 mx1 ESMTP", "-> EHLO fortiauto", "<- 250-STARTTLS"),
    )


def banner_timeout(banner: str = "") -> ProbeResult:
    return ProbeResult(
        passed=False,
        mode="starttls",
        failure_class="F4 banner-timeout",
        attempts=3,
        steps=(ProbeStep("connect", 1.1, True), ProbeStep("banner", 10000.0, False, "no 220 in 10 s")),
        transcript=(f"<- {banner}" if banner else "(connected, no banner)",),
        warnings=("the banner arrived after the timeout on 2 of 3 attempts",),
    )


def _policy_change(name: str | None = None) -> Change:
    before = {"inspection-mode": "flow", "ssl-ssh-profile": "certificate-inspection"}
    if name:
        before["name"] = name
    return Change(
        task="policy",
        path="firewall/policy",
        mkey=1,
        action="update",
        before=before,
        after={**before, "inspection-mode": "proxy", "ssl-ssh-profile": "protect-mx1"},
    )


def _profile_change(comment: str = "fortiauto: log all inbound mail for mx1") -> Change:
    return Change(
        task="emailfilter",
        path="emailfilter/profile",
        mkey="mail-inbound",
        action="create",
        before=None,
        after={"name": "mail-inbound", "comment": comment, "spam-log": "enable"},
    )


def plan_for(device: str, *, rung: str | None = None, comment: str | None = None) -> Plan:
    profile = _profile_change() if comment is None else _profile_change(comment)
    return Plan(device=device, version="7.0.15", changes=(profile, _policy_change()), rung=rung)


def changed(name: str, *, reason: str = "applied and probe passed") -> Result:
    plan = plan_for(name)
    return Result(
        name=name,
        status="changed",
        reason=reason,
        changes=plan.changes,
        plan=plan,
        probe=passed(),
        baseline=passed(),
        effect="logged",
        policy_name="inbound-smtp",
        probes=(Probe("baseline", "mx1", passed()), Probe("after", "mx1", passed())),
        timeline=(
            Mark("connect", 0),
            Mark("baseline", 40),
            Mark("plan", 90),
            Mark("apply", 130),
            Mark("verify", 480),
            Mark("commit", 620),
            Mark("done", 700),
        ),
        effect_evidence={
            "time": "2026-11-24 22:15:04",
            "subject": f"fortiauto probe {RUN_ID}-{name}",
            "policyid": 1,
            "action": "log-only",
        },
    )


def fallback(name: str) -> Result:
    plan = plan_for(name, rung="certificate-inspection")
    return Result(
        name=name,
        status="changed",
        reason="applied and probe passed on fallback rung certificate-inspection",
        changes=plan.changes,
        plan=plan,
        probe=passed(),
        baseline=passed(),
        effect="not_logged",
        fallback_used="certificate-inspection",
        mttr_ms=41200.0,
        probes=(
            Probe("baseline", "mx1", passed()),
            Probe("after", "mx1", banner_timeout()),
            Probe("confirm", "mx1", passed()),
            Probe("after", "mx1", passed(), rung="certificate-inspection"),
        ),
        timeline=(
            Mark("connect", 0),
            Mark("baseline", 30),
            Mark("plan", 80),
            Mark("apply", 120),
            Mark("verify", 400),
            Mark("rollback", 30600),
            Mark("plan", 41400, "certificate-inspection"),
            Mark("apply", 41500, "certificate-inspection"),
            Mark("verify", 41800, "certificate-inspection"),
            Mark("commit", 42000, "certificate-inspection"),
            Mark("done", 42100),
        ),
    )


def rolled_back(name: str, *, reason: str | None = None, banner: str = "") -> Result:
    plan = plan_for(name)
    return Result(
        name=name,
        status="rolled_back",
        reason=reason
        or "probe failed after change (full: F4 banner-timeout); rolled back, pre-change state verified",
        changes=plan.changes,
        plan=None,  # the engine keeps only the changes of a rolled-back device
        probe=banner_timeout(banner),
        baseline=passed(),
        mttr_ms=38000.0,
        exit_code=3,
        probes=(
            Probe("baseline", "mx1", passed()),
            Probe("after", "mx1", banner_timeout(banner)),
            Probe("confirm", "mx1", passed()),
        ),
        timeline=(
            Mark("connect", 0),
            Mark("baseline", 30),
            Mark("plan", 80),
            Mark("apply", 120),
            Mark("verify", 400),
            Mark("rollback", 30500),
            Mark("done", 38200),
        ),
    )


def run_of(*devices: DeviceResult, exit_code: int = 0, notes: tuple[str, ...] = ()) -> RunResult:
    return RunResult(
        run_id=RUN_ID, started=WHEN, finished=WHEN, devices=devices, exit_code=exit_code, notes=notes
    )


def fleet() -> RunResult:
    """Three alike devices changed, one on a fallback rung, one rolled back."""
    return run_of(
        changed("fgt-001"),
        changed("fgt-002"),
        changed("fgt-003"),
        fallback("fgt-004"),
        rolled_back("fgt-005"),
        exit_code=3,
    )
