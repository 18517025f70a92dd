"""What every report tells about one device: its probes, the failure that mattered, its timeline.

The report formats (console, JUnit, Markdown, HTML) read a ``DeviceResult`` through this module
only, so they tell the same story: every probe by stage, the probe whose failure caused a
rollback or a fallback (class, steps with timings, transcript), the outage window, the phases
with their timings, the plan that was attempted, the warnings and the effect evidence.

The result fields that arrive with the transaction rework (``probes``, ``timeline``,
``failed_probe``, ``policy_name``, ``effect_evidence``, a probe's ``vantage``, the run's
``journal_dir``) are read with ``getattr``: from a result without them the story falls back to
the baseline and the last probe, and shows nothing it does not have.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fortiauto.results import Change, DeviceResult, Plan, ProbeResult

__all__ = [
    "AFTER_STAGES",
    "Mark",
    "StageProbeView",
    "attempted_plan",
    "effect_evidence",
    "evidence_text",
    "failure",
    "outage_text",
    "outage_window",
    "plan_key",
    "policy_label",
    "probe_summary",
    "revision_text",
    "rollback_command",
    "stage_probes",
    "timeline",
    "warnings",
]

# The log entry's facts in the order an admin reads them; other keys follow alphabetically.
_EVIDENCE_ORDER = ("time", "policy_id", "policyid", "action", "source", "logid", "subject")
_EVIDENCE_LABEL = {"policy_id": "policy", "policyid": "policy", "source": "log", "logid": "log id"}

AFTER_STAGES = ("after", "delivery")  # a failure at these stages triggers a rollback or fallback


@dataclass(frozen=True)
class StageProbeView:
    """One probe: at which stage, of which mail server, on which rung, and its result."""

    stage: str
    result: ProbeResult
    mail_server: str | None = None
    rung: str | None = None

    @property
    def label(self) -> str:
        server = f" {self.mail_server}" if self.mail_server else ""
        rung = f" (rung {self.rung})" if self.rung else ""
        return f"{self.stage}{server}{rung}"

    @property
    def vantage(self) -> str | None:
        """Where the probe connected from (``probe.via``), or None for here."""
        where = getattr(self.result, "vantage", None)
        return None if not where else str(where)


@dataclass(frozen=True)
class Mark:
    """A phase the device entered, ``ms`` after it started; ``until_ms`` when the next began."""

    phase: str
    ms: float
    until_ms: float | None = None
    rung: str | None = None

    @property
    def duration_ms(self) -> float | None:
        return None if self.until_ms is None else max(self.until_ms - self.ms, 0.0)


def _view(item: Any) -> StageProbeView | None:
    result = getattr(item, "result", None)
    if not isinstance(result, ProbeResult):
        return None
    server = getattr(item, "mail_server", None)
    rung = getattr(item, "rung", None)
    return StageProbeView(
        stage=str(getattr(item, "stage", "?")),
        result=result,
        mail_server=None if server is None else str(server),
        rung=None if rung is None else str(rung),
    )


def stage_probes(device: DeviceResult) -> list[StageProbeView]:
    """Every probe of the device in order; from an older result, the baseline and the last one."""
    recorded = [v for v in map(_view, getattr(device, "probes", ()) or ()) if v is not None]
    if recorded:
        return recorded
    views = []
    if device.baseline is not None:
        views.append(StageProbeView("baseline", device.baseline))
    if device.probe is not None and device.probe is not device.baseline:
        views.append(StageProbeView("after", device.probe, rung=device.fallback_used))
    return views


def failure(device: DeviceResult) -> StageProbeView | None:
    """The probe whose failure caused the rollback or the fallback, or None."""
    chosen = _view(getattr(device, "failed_probe", None))
    if chosen is not None:
        return chosen
    failed = [v for v in stage_probes(device) if not v.result.passed]
    after = next((v for v in failed if v.stage in AFTER_STAGES), None)
    if after is not None:
        return after
    # A baseline that failed is why a device was skipped: that is its failure too.
    return failed[0] if failed else None


def timeline(device: DeviceResult) -> list[Mark]:
    """The phases with their start and end (ms after the device started), oldest first."""
    raw = [
        (str(getattr(m, "phase", "?")), float(getattr(m, "ms", 0.0)), getattr(m, "rung", None))
        for m in getattr(device, "timeline", ()) or ()
    ]
    marks = []
    for index, (phase, ms, rung) in enumerate(raw):
        until = raw[index + 1][1] if index + 1 < len(raw) else None
        marks.append(Mark(phase, ms, until, None if rung is None else str(rung)))
    return marks


def outage_window(device: DeviceResult) -> tuple[float | None, float] | None:
    """(start ms or None when unknown, length ms) of the time mail was broken by the change."""
    if device.mttr_ms is None:
        return None
    marks = timeline(device)
    start = next((m.ms for m in marks if m.phase == "apply"), None)
    return start, device.mttr_ms


def attempted_plan(device: DeviceResult) -> Plan | None:
    """The plan as applied, or for a rolled-back device what was attempted (its changes)."""
    if device.plan is not None:
        return device.plan
    if device.changes:
        return Plan(device=device.name, version="?", changes=device.changes, rung=device.fallback_used)
    return None


def plan_key(plan: Plan) -> str:
    """Equal for two devices whose plans are the same apart from the device's name."""
    return json.dumps(
        {
            "version": plan.version,
            "rung": plan.rung,
            "changes": [c.to_json() for c in plan.changes],
            "noop": plan.noop_reasons,
            "warnings": list(plan.warnings),
        },
        sort_keys=True,
        default=str,
    )


def _policy_changes(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.path == "firewall/policy"]


def policy_label(device: DeviceResult) -> str | None:
    """``"inbound-smtp" (id 1)``, or ``id 1`` when only the id is known; None without a policy."""
    plan = attempted_plan(device)
    changes = _policy_changes(plan.changes if plan is not None else device.changes)
    ids = sorted({str(c.mkey) for c in changes})
    name = getattr(device, "policy_name", None)
    for change in changes:
        for body in (change.before, change.after):
            if name is None and body and body.get("name"):
                name = body["name"]
    if not ids:
        return None if name is None else f'"{name}"'
    id_text = "id " + ", ".join(ids)
    return id_text if name is None else f'"{name}" ({id_text})'


def warnings(device: DeviceResult) -> list[str]:
    """The plan's warnings, then every probe's, without repeats."""
    plan = attempted_plan(device)
    found = list(plan.warnings) if plan is not None else []
    for view in stage_probes(device):
        found.extend(f"{view.label} probe: {w}" for w in view.result.warnings)
    return list(dict.fromkeys(found))


def evidence_text(device: DeviceResult) -> str | None:
    """``time 2026-11-24 22:15:04, subject ..., policyid 1, action log-only``, when known."""
    evidence = effect_evidence(device)
    known = {k: v for k, v in (evidence or {}).items() if v not in (None, "")}
    if not known:
        return None
    if str(known.get("token", "")) in str(known.get("subject", "")):
        known.pop("token", None)  # the subject already shows it
    order = sorted(known, key=lambda k: (_EVIDENCE_ORDER.index(k) if k in _EVIDENCE_ORDER else 99, k))
    return ", ".join(f"{_EVIDENCE_LABEL.get(key, key.replace('_', ' '))} {known[key]}" for key in order)


def effect_evidence(device: DeviceResult) -> dict[str, Any] | None:
    """The log entry that proved the effect (time, subject token, policy id, action), when known."""
    evidence = getattr(device, "effect_evidence", None) or getattr(device, "evidence", None)
    if isinstance(evidence, dict):
        return evidence
    to_json = getattr(evidence, "to_json", None)
    if callable(to_json):
        data = to_json()
        return data if isinstance(data, dict) else None
    return None


def rollback_command(run: Any, journal_dir: str | None = None) -> str:
    """The back-out command, with the journal directory so it works from any directory."""
    directory = journal_dir or getattr(run, "journal_dir", None)
    words = ["fortiauto", "rollback", "--run", str(run.run_id)]
    if directory:
        words += ["--journal-dir", str(directory)]
    return shlex.join(words)


def revision_text(device: DeviceResult) -> str | None:
    """Where FortiOS's own snapshot from before the first write is, when one was saved."""
    revision = getattr(device, "config_revision", None)
    if not revision:
        return None
    return (
        f"configuration revision {revision} was saved on the unit before the first write; "
        "FortiOS can restore it too (System > Configuration > Revisions)"
    )


def outage_text(device: DeviceResult) -> str | None:
    """``mail broken for 41200 ms, from 812 ms (first write)``, or None without an outage."""
    window = outage_window(device)
    if window is None:
        return None
    start, length = window
    since = "" if start is None else f", from {start:.0f} ms (first write)"
    return f"mail broken for {length:.0f} ms{since} until the probe passed again"


def probe_summary(device: DeviceResult) -> str:
    """``pass``, ``F4 banner-timeout``, or ``pass after F4 banner-timeout (full)`` for a fallback."""
    views = stage_probes(device)
    cause = failure(device)
    last = next((v for v in reversed(views) if v.stage in AFTER_STAGES), views[-1] if views else None)
    if last is None:
        return "-"
    verdict = "pass" if last.result.passed else (last.result.failure_class or "failed")
    if cause is not None and last.result.passed and cause is not last:
        return f"{verdict} after {cause.result.failure_class or 'a failure'} ({cause.rung or 'full'})"
    if cause is not None and not last.result.passed:
        return cause.result.failure_class or "failed"
    return verdict
