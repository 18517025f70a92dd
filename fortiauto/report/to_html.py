"""The run as one self-contained HTML page: per device a timeline, the probes, the diff, the evidence.

Rendered with Jinja2 from ``templates/reports/run-report.html.j2`` with autoescape on, so a name,
reason or transcript from a device is text, never markup. The page carries its CSS inline and a
Content-Security-Policy of ``default-src 'none'``: it loads nothing, runs nothing, and opens
the same from a mail attachment, a ticket or a file share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fortiauto import __version__
from fortiauto.report.assets import report_environment
from fortiauto.report.console import render_plan
from fortiauto.report.probe_text import render_probe
from fortiauto.report.story import (
    Mark,
    StageProbeView,
    attempted_plan,
    effect_evidence,
    failure,
    outage_window,
    policy_label,
    probe_summary,
    revision_text,
    rollback_command,
    stage_probes,
    timeline,
    warnings,
)
from fortiauto.report.to_fortios_cli import rollback_to_cli
from fortiauto.results import DeviceResult, RunResult

__all__ = ["CONTENT_SECURITY_POLICY", "run_to_html"]

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True)
class _Bar:
    """A segment of a device's timeline bar, as percentages of the device's total time."""

    label: str
    left: float
    width: float
    kind: str
    title: str


@dataclass
class _DeviceView:
    result: DeviceResult
    anchor: str
    policy: str | None
    plan_text: str | None
    rollback_text: str | None
    probes: list[StageProbeView]
    failure: StageProbeView | None
    marks: list[Mark]
    bars: list[_Bar] = field(default_factory=list)
    total_ms: float = 0.0
    outage: tuple[float | None, float] | None = None
    warnings: list[str] = field(default_factory=list)
    evidence: dict[str, Any] | None = None
    probe_summary: str = "-"
    revision: str | None = None


def _pct(value: float, total: float) -> float:
    return round(100.0 * value / total, 2) if total > 0 else 0.0


def _bars(marks: list[Mark], outage: tuple[float | None, float] | None) -> tuple[list[_Bar], float]:
    """Phase segments (and the outage window over them), scaled to the device's whole run."""
    ends = [m.until_ms if m.until_ms is not None else m.ms for m in marks]
    if outage is not None and outage[0] is not None:
        ends.append(outage[0] + outage[1])
    total = max(ends, default=0.0)
    bars = [
        _Bar(
            m.phase,
            _pct(m.ms, total),
            _pct(m.duration_ms or 0.0, total),
            "rollback" if m.phase == "rollback" else "phase",
            f"{m.phase}"
            + (f" (rung {m.rung})" if m.rung else "")
            + f" at {m.ms:.0f} ms"
            + ("" if m.duration_ms is None else f" for {m.duration_ms:.0f} ms"),
        )
        for m in marks
    ]
    start, length = outage if outage is not None else (None, 0.0)
    if start is not None:
        bars.append(
            _Bar(
                "outage",
                _pct(start, total),
                _pct(length, total),
                "outage",
                f"mail broken for {length:.0f} ms",
            )
        )
    return bars, total


def _device_view(result: DeviceResult, index: int) -> _DeviceView:
    plan = attempted_plan(result)
    marks = timeline(result)
    outage = outage_window(result)
    bars, total = _bars(marks, outage)
    return _DeviceView(
        result=result,
        anchor=f"device-{index}",
        policy=policy_label(result),
        plan_text=None if plan is None else render_plan(plan),
        rollback_text=None if plan is None or plan.empty else rollback_to_cli(plan),
        probes=stage_probes(result),
        failure=failure(result),
        marks=marks,
        bars=bars,
        total_ms=total,
        outage=outage,
        warnings=warnings(result),
        evidence=effect_evidence(result),
        probe_summary=probe_summary(result),
        revision=revision_text(result),
    )


def _step_width(ms: float, probe: StageProbeView) -> float:
    longest = max((s.ms for s in probe.result.steps), default=0.0)
    return _pct(ms, longest)


def run_to_html(run: RunResult, *, journal_dir: str | None = None) -> str:
    """The whole page as a string (UTF-8 when written)."""
    env = report_environment(html=True)
    counts: dict[str, int] = {}
    for device in run.devices:
        counts[device.status] = counts.get(device.status, 0) + 1
    return env.get_template("run-report.html.j2").render(
        run=run,
        counts=counts,
        devices=[_device_view(d, i) for i, d in enumerate(run.devices, start=1)],
        csp=CONTENT_SECURITY_POLICY,
        version=__version__,
        backout=rollback_command(run, journal_dir),
        render_probe=render_probe,
        step_width=_step_width,
    )
