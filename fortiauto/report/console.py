"""Human output: a plan as a readable diff, one line per event, and a summary table (rich).

Implements the ``events.Reporter`` protocol; on a TTY it also shows a live status table. All
text is built from result objects, which hold no secrets.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from fortiauto.events import NullReporter
from fortiauto.results import Change, DeviceResult, Plan, ProbeResult, RunResult

__all__ = ["STATUS_STYLE", "ConsoleReporter", "render_change", "render_plan", "render_summary"]

STATUS_STYLE = {
    "unchanged": "green",
    "changed": "bold green",
    "rolled_back": "yellow",
    "skipped": "cyan",
    "failed": "bold red",
}


def _value(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _flat(diff: dict[str, dict[str, Any]], prefix: str = "") -> list[tuple[str, Any, Any]]:
    rows: list[tuple[str, Any, Any]] = []
    for key, pair in diff.items():
        before, after = pair["before"], pair["after"]
        if isinstance(before, dict) or isinstance(after, dict):
            sub_before = before if isinstance(before, dict) else {}
            sub_after = after if isinstance(after, dict) else {}
            keys = sorted(set(sub_before) | set(sub_after))
            nested = {k: {"before": sub_before.get(k), "after": sub_after.get(k)} for k in keys}
            rows.extend(_flat(nested, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", before, after))
    return rows


def render_change(change: Change) -> list[str]:
    title = f"  {change.action} {change.path}/{change.mkey} (vdom {change.vdom})"
    lines = [title]
    if change.action == "delete":
        return [*lines, "      - (removed)"]
    for key, before, after in _flat(change.diff):
        if change.action in ("create", "import"):
            lines.append(f"      + {key}: {_value(after)}")
        else:
            lines.append(f"      ~ {key}: {_value(before)} -> {_value(after)}")
    return lines


def render_plan(plan: Plan) -> str:
    rung = f" [fallback rung {plan.rung}]" if plan.rung else ""
    lines = [f"{plan.device} (FortiOS {plan.version}){rung}"]
    if plan.empty:
        lines.append("  no changes")
    for change in plan.changes:
        lines.extend(render_change(change))
    lines.extend(f"  = {label}: {reason}" for label, reason in plan.noop_reasons.items())
    lines.extend(f"  ! warning: {w}" for w in plan.warnings)
    return "\n".join(lines)


def render_summary(run: RunResult) -> Table:
    table = Table(title=f"run {run.run_id}: exit {run.exit_code}")
    for column in ("device", "status", "changes", "probe", "effect", "fallback", "reason"):
        table.add_column(column)
    for result in run.devices:
        probe = result.probe or result.baseline
        table.add_row(
            result.name,
            f"[{STATUS_STYLE.get(result.status, '')}]{result.status}[/]",
            str(len(result.changes)),
            "-" if probe is None else ("pass" if probe.passed else str(probe.failure_class)),
            result.effect,
            result.fallback_used or "-",
            result.reason,
        )
    return table


class ConsoleReporter(NullReporter):
    """One plain line per event (stderr when stdout carries JSON)."""

    def __init__(self, console: Console, *, show_plans: bool = True, show_diff: bool = True) -> None:
        self.console = console
        self.show_plans = show_plans
        self.show_diff = show_diff

    def device_started(self, device: str) -> None:
        self.console.print(f"[bold]{device}[/]: started", highlight=False)

    def change_planned(self, device: str, plan: Plan) -> None:
        if self.show_plans:
            self.console.print(
                render_plan(plan) if self.show_diff else f"{device}: {len(plan.changes)} change(s)"
            )

    def change_applied(self, device: str, change: Change) -> None:
        self.console.print(f"{device}: {change.action} {change.path}/{change.mkey} ok", highlight=False)

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None:
        verdict = "passed" if result.passed else f"FAILED {result.failure_class}"
        self.console.print(
            f"{device}: {stage} probe {verdict} ({result.mode}, {result.attempts} attempt(s))",
            highlight=False,
        )

    def device_finished(self, result: DeviceResult) -> None:
        style = STATUS_STYLE.get(result.status, "")
        self.console.print(f"{result.name}: [{style}]{result.status}[/] - {result.reason}", highlight=False)
