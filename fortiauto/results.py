"""Plain result data of the pipeline: Change, Plan, ProbeResult, DeviceResult, RunResult.

Frozen dataclasses with no I/O. The JSON contract (docs/design.md) is exactly
``RunResult.to_json()``; reporters and the Ansible module read these objects and never
the engine's internals. ``failed`` is a property, never ``__bool__``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from fortiauto.errors import FortiautoError

__all__ = [
    "Change",
    "DeviceResult",
    "DeviceStatus",
    "Effect",
    "Plan",
    "ProbeResult",
    "ProbeStep",
    "RequestCounts",
    "RunResult",
    "StageProbe",
    "TimelineMark",
]

Action = Literal["create", "update", "delete", "import"]
DeviceStatus = Literal[
    "unchanged", "changed", "unproven", "fallback", "rolled_back", "refused", "skipped", "failed"
]
Effect = Literal["logged", "not_logged", "unknown"]


@dataclass(frozen=True)
class Change:
    """One write a task wants: ``before`` is the managed keys as read, ``after`` as desired.

    ``before`` is ``None`` for a create/import, ``after`` is ``None`` for a delete. ``body``
    is the exact request body the task will send (no secrets for certificates: the key is
    attached at write time from the site, never stored in a Change).
    """

    task: str
    path: str
    mkey: str | int
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    vdom: str = "root"

    @property
    def diff(self) -> dict[str, dict[str, Any]]:
        """Per managed key: ``{"before": old, "after": new}``, only keys that differ."""
        before = self.before or {}
        after = self.after or {}
        out: dict[str, dict[str, Any]] = {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                out[key] = {"before": before.get(key), "after": after.get(key)}
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "path": self.path,
            "mkey": self.mkey,
            "vdom": self.vdom,
            "action": self.action,
            "diff": self.diff,
        }


@dataclass(frozen=True)
class Plan:
    """The ordered changes for one device, and why each task that wants nothing is content."""

    device: str
    version: str
    changes: tuple[Change, ...]
    noop_reasons: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    rung: str | None = None  # None: the full recommended configuration; else a fallback rung

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "version": self.version,
            "rung": self.rung,
            "changes": [c.to_json() for c in self.changes],
            "noop_reasons": dict(self.noop_reasons),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ProbeStep:
    """One step of an SMTP probe: ``connect``, ``banner``, ``ehlo``, ``starttls``, ``tls``, ..."""

    step: str
    ms: float
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "ms": round(self.ms, 1), "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of a probe (after retries): the last attempt's steps and what was learned."""

    passed: bool
    mode: str
    failure_class: str | None = None  # e.g. "F4 banner-timeout"; None when passed
    steps: tuple[ProbeStep, ...] = ()
    attempts: int = 1
    transcript: tuple[str, ...] = ()  # swaks-like lines: "<- 220 ...", "-> EHLO ...", "~> ..." in TLS
    warnings: tuple[str, ...] = ()
    message_id: str | None = None  # set when a message was sent (transaction configured)
    subject: str | None = None
    peer_cert_sha256: str | None = None  # lowercase hex of the served leaf certificate
    peer_issuer: str | None = None
    starttls_advertised: bool | None = None
    banner_ms: float | None = None
    vantage: str | None = None  # where the connection started (probe.via): "ssh probe@host:22"; None: here

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "mode": self.mode,
            "failure_class": self.failure_class,
            "attempts": self.attempts,
            "steps": [s.to_json() for s in self.steps],
            "warnings": list(self.warnings),
            "message_id": self.message_id,
            "peer_cert_sha256": self.peer_cert_sha256,
            "vantage": self.vantage,
        }


@dataclass(frozen=True)
class RequestCounts:
    total: int = 0
    writes: int = 0

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "writes": self.writes}


@dataclass(frozen=True)
class StageProbe:
    """One probe of one mail server at one stage (``baseline``, ``after``, ``delivery``, ``confirm``)."""

    stage: str
    mail_server: str
    result: ProbeResult
    rung: str | None = None  # the fallback rung being tried (None: the full fix)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "mail_server": self.mail_server,
            "rung": self.rung,
            **self.result.to_json(),
            # A failed probe keeps its transcript: the report must show why mail broke.
            "transcript": [] if self.result.passed else list(self.result.transcript),
        }


@dataclass(frozen=True)
class TimelineMark:
    """A phase the transaction entered, ``ms`` after the device started."""

    phase: str
    ms: float
    rung: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "ms": round(self.ms, 1), "rung": self.rung}


@dataclass(frozen=True)
class DeviceResult:
    """What happened to one device. A failure here is data, never an exception to the fleet.

    Built only by ``transaction.outcome.conclude`` (which sets ``status``, ``exit_code`` and
    ``ending`` together from one table); reporters and tests may build one to render it.
    """

    name: str
    status: DeviceStatus
    reason: str = ""
    exit_code: int = 0
    ending: str = ""
    changes: tuple[Change, ...] = ()
    requests: RequestCounts = RequestCounts()
    probe: ProbeResult | None = None
    baseline: ProbeResult | None = None
    effect: Effect = "unknown"
    fallback_used: str | None = None
    mttr_ms: float | None = None
    plan: Plan | None = None
    error: FortiautoError | None = field(default=None, compare=False)
    left_over: tuple[str, ...] = ()  # for "failed": exactly what could not be restored
    forced: bool = False
    probes: tuple[StageProbe, ...] = ()  # every probe of the run, in order (reports keep failures)
    timeline: tuple[TimelineMark, ...] = ()
    policy_name: str | None = None
    effect_evidence: dict[str, Any] | None = None  # the log entry that proved the effect
    config_revision: str | None = None  # the revision saved on the unit before the first write

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rolled_back")

    @property
    def failed_probe(self) -> StageProbe | None:
        """The probe whose failure caused a rollback or a fallback (the first failed after-change one)."""
        return next(
            (p for p in self.probes if not p.result.passed and p.stage in ("after", "delivery")), None
        )

    @property
    def changed(self) -> bool:
        return self.status == "changed"

    def raise_for_status(self) -> DeviceResult:
        if self.error is not None and self.failed:
            raise self.error
        return self

    def to_json(self) -> dict[str, Any]:
        probe = self.probe or self.baseline
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "changes": [c.to_json() for c in self.changes],
            "requests": self.requests.to_json(),
            "probe": _probe_json(probe),
            "effect": self.effect,
            "fallback_used": self.fallback_used,
            "mttr_ms": None if self.mttr_ms is None else round(self.mttr_ms, 1),
            "left_over": list(self.left_over),
            "forced": self.forced,
            "noop_reasons": dict(self.plan.noop_reasons) if self.plan is not None else {},
            "warnings": list(self.plan.warnings) if self.plan is not None else [],
            "exit_code": self.exit_code,
            "policy_name": self.policy_name,
            "config_revision": self.config_revision,
            "evidence": self.effect_evidence,
            "probes": [p.to_json() for p in self.probes],
            "failure": None if self.failed_probe is None else self.failed_probe.to_json(),
            "timeline": [m.to_json() for m in self.timeline],
        }


def _probe_json(probe: ProbeResult | None) -> dict[str, Any]:
    if probe is None:
        return {"passed": None, "mode": None, "failure_class": None, "steps": []}
    return probe.to_json()


@dataclass(frozen=True)
class RunResult:
    run_id: str
    started: datetime
    finished: datetime
    devices: tuple[DeviceResult, ...]
    exit_code: int
    command: str = "apply"
    notes: tuple[str, ...] = ()
    window: str | None = None  # the change window, as "start - end", when the site sets one
    journal_dir: str | None = None  # where the run's journal is (for the back-out command)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "window": self.window,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "exit_code": self.exit_code,
            "notes": list(self.notes),
            "journal_dir": self.journal_dir,
            "devices": [d.to_json() for d in self.devices],
        }
