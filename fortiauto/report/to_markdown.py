"""The change record a change board files: rendered with Jinja2 from ``templates/reports/``.

Devices whose plans are identical (apart from the name) share one plan section, so a fleet of
alike firewalls reads as one change; a rolled-back device shows the plan it attempted and the
probe failure that caused the rollback. Text from a device or a file passes through
``safe.md_text``/``md_cell`` (no forged rows, headings or links) and code blocks are fenced
longer than any backtick run they hold.
"""

from __future__ import annotations

import getpass
import socket
import string
from dataclasses import dataclass, replace

from fortiauto.report.assets import report_environment
from fortiauto.report.console import render_plan
from fortiauto.report.probe_text import render_probe
from fortiauto.report.safe import md_cell, md_code_fence, md_text
from fortiauto.report.story import (
    attempted_plan,
    evidence_text,
    failure,
    outage_text,
    plan_key,
    policy_label,
    probe_summary,
    revision_text,
    rollback_command,
    stage_probes,
    warnings,
)
from fortiauto.report.to_fortios_cli import plan_to_cli, rollback_to_cli
from fortiauto.results import DeviceResult, Plan, RunResult

__all__ = ["PlanGroup", "group_plans", "run_to_markdown"]


@dataclass(frozen=True)
class PlanGroup:
    """One distinct plan and the devices it is for (in run order)."""

    label: str
    plan: Plan
    devices: tuple[str, ...]


def _label(index: int) -> str:
    letters = string.ascii_uppercase
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = letters[rest] + label
    return f"Plan {label}"


def group_plans(devices: tuple[DeviceResult, ...]) -> tuple[list[PlanGroup], dict[str, str]]:
    """Distinct non-empty plans with their devices, and each device's plan label."""
    order: dict[str, list[DeviceResult]] = {}
    plans: dict[str, Plan] = {}
    for device in devices:
        plan = attempted_plan(device)
        if plan is None or plan.empty:
            continue
        key = plan_key(plan)
        order.setdefault(key, []).append(device)
        plans.setdefault(key, plan)
    groups: list[PlanGroup] = []
    labels: dict[str, str] = {}
    for index, (key, members) in enumerate(order.items()):
        label = _label(index)
        names = tuple(d.name for d in members)
        shown = names[0] if len(names) == 1 else label
        groups.append(PlanGroup(label, replace(plans[key], device=shown), names))
        labels.update((name, label) for name in names)
    return groups, labels


def _operator() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "unknown"


def _fenced(text: str, info: str = "") -> str:
    body = text if text.endswith("\n") else text + "\n"
    fence = md_code_fence(body)
    return f"{fence}{info}\n{body}{fence}"


def run_to_markdown(
    run: RunResult,
    *,
    window: str | None = None,
    operator: str | None = None,
    journal_dir: str | None = None,
) -> str:
    env = report_environment(html=False)
    env.filters.update(md=md_text, cell=md_cell, fenced=_fenced)
    counts: dict[str, int] = {}
    for device in run.devices:
        counts[device.status] = counts.get(device.status, 0) + 1
    groups, labels = group_plans(run.devices)
    return env.get_template("change-record.md.j2").render(
        run=run,
        counts=counts,
        window=window or run.window,
        operator=operator or _operator(),
        backout=rollback_command(run, journal_dir),
        undo=run.command == "rollback",
        groups=groups,
        labels=labels,
        render_plan=render_plan,
        render_probe=render_probe,
        plan_to_cli=plan_to_cli,
        rollback_to_cli=rollback_to_cli,
        probe_summary=probe_summary,
        failure=failure,
        outage_text=outage_text,
        policy_label=policy_label,
        stage_probes=stage_probes,
        evidence_text=evidence_text,
        revision_text=revision_text,
        warnings=warnings,
    )
