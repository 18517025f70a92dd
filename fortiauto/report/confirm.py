"""What a change board reads before saying yes: the plan's totals and the summary at the prompt.

Pure text from the site and a check-mode preview (``RunResult``): how many devices and objects
change, the order (canary, batches, halt rule), the change window and the time left, each
probe and where it starts, and how long mail may be broken through a VIP if the probe after
the change fails (the probe's own timeouts and retries, then the undo). ``cli.py`` prints it on
stderr before ``Apply these changes?``; ``plan`` ends with ``totals_line``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fortiauto.fleet.schedule import estimate_seconds, schedule
from fortiauto.fleet.window import window_text
from fortiauto.report.safe import one_line
from fortiauto.results import DeviceResult, RunResult
from fortiauto.site import Device, Site

__all__ = ["Totals", "confirmation_lines", "duration_text", "outage_seconds", "plan_totals", "totals_line"]

# A stalled probe attempt waits on about four step timeouts (connect/banner, EHLO, TLS, the
# final dot) before it is given up: the same reckoning as ``fleet.schedule.estimate_seconds``.
_STEP_TIMEOUTS_PER_ATTEMPT = 4
_SECONDS_PER_UNDO_WRITE = 1.0  # one re-read and one write, ~0.5 s each (bench/RESULTS.md)
_NAMES_SHOWN = 6


@dataclass(frozen=True)
class Totals:
    to_change: int
    compliant: int
    refused: int
    failed: int
    create: int
    update: int
    delete: int

    def to_json(self) -> dict[str, int]:
        return {
            "devices_to_change": self.to_change,
            "devices_compliant": self.compliant,
            "devices_refused": self.refused,
            "devices_failed": self.failed,
            "objects_to_create": self.create,
            "objects_to_update": self.update,
            "objects_to_delete": self.delete,
        }


def _would_be_refused(result: DeviceResult) -> bool:
    warnings = result.plan.warnings if result.plan is not None else ()
    return any(w.startswith("apply would be refused") for w in warnings)


def plan_totals(run: RunResult) -> Totals:
    """Devices to change / already compliant / refused (or skipped) / failed; objects by action."""
    kinds: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for result in run.devices:
        if result.ending == "planned" and not _would_be_refused(result):
            kinds["change"] += 1
            actions.update("create" if c.action == "import" else c.action for c in result.changes)
        elif result.ending == "compliant":
            kinds["compliant"] += 1
        elif result.status == "failed":
            kinds["failed"] += 1
        else:
            kinds["refused"] += 1
    return Totals(
        kinds["change"],
        kinds["compliant"],
        kinds["refused"],
        kinds["failed"],
        actions["create"],
        actions["update"],
        actions["delete"],
    )


def totals_line(totals: Totals) -> str:
    failed = f", {totals.failed} failed" if totals.failed else ""
    return (
        f"Plan: {totals.to_change} device(s) to change, {totals.compliant} already compliant, "
        f"{totals.refused} refused{failed}; objects: {totals.create} to create, "
        f"{totals.update} to update, {totals.delete} to delete"
    )


def duration_text(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 5 min``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def outage_seconds(device: Device, writes: int) -> float:
    """Worst case mail through this device's VIPs is broken when the probe after the change fails:
    every attempt of the slowest mail server's probe stalls, then the writes are undone."""
    probe = max(
        (
            ms.probe.retries * ms.probe.timeout * _STEP_TIMEOUTS_PER_ATTEMPT
            + (ms.probe.retries - 1) * ms.probe.retry_delay
            for ms in device.mail_servers
        ),
        default=0.0,
    )
    return probe + writes * _SECONDS_PER_UNDO_WRITE


def _names(devices: Sequence[Device]) -> str:
    names = [d.name for d in devices]
    if len(names) <= _NAMES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[: _NAMES_SHOWN - 1])}, ... {names[-1]} ({len(names)})"


def _order_lines(site: Site, devices: Sequence[Device]) -> list[str]:
    plan = schedule(devices, site.rollout)
    rollout = site.rollout
    lines: list[str] = []
    groups = list(plan.groups)
    if plan.canary:
        lines.append(f"  canary: {_names(groups.pop(0))} (alone; the run halts if it fails)")
    for number, group in enumerate(groups, 1):
        lines.append(f"  batch {number}: {_names(group)}")
    lines.append(
        f"  up to {rollout.concurrency} device(s) at once; the rest halts after "
        f"{plan.allowed_failures} failed device(s) (max_failures {rollout.max_failures})"
    )
    return lines


def _window_line(site: Site, devices: Sequence[Device], now: datetime, *, wait: bool, ignore: bool) -> str:
    window = site.change_window
    if window is None:
        return "Change window: none set in the site file"
    longest = max((estimate_seconds(d) for d in devices), default=0.0)
    need = f"each device needs up to {duration_text(longest)}"
    if now < window.start:
        opens = f"opens in {duration_text((window.start - now).total_seconds())}"
        how = "; --wait waits for it" if wait else ("; --ignore-window: starting now" if ignore else "")
        return f"Change window: {window_text(window)}, {opens}{how} ({need})"
    if now >= window.end:
        return f"Change window: {window_text(window)}, closed (--ignore-window: starting anyway)"
    left = duration_text((window.end - now).total_seconds())
    return f"Change window: {window_text(window)}, closes in {left} ({need})"


def _probe_lines(devices: Sequence[Device]) -> list[str]:
    """One line per kind of probe (mode, vantage, delivery), with an example and how many more use it."""
    kinds: dict[str, list[str]] = {}
    for device in devices:
        for ms in device.mail_servers:
            spec = ms.probe
            vantage = f"from {spec.via.label}" if spec.via is not None else "from this machine"
            delivery = "; delivery confirmed in the mailbox" if spec.confirm_delivery is not None else ""
            kind = f"{spec.mode} {vantage}{delivery}"
            kinds.setdefault(kind, []).append(f"{device.name}/{ms.name} -> {spec.host}:{spec.port}")
    lines = []
    for kind, targets in kinds.items():
        example = targets[0] + (f" and {len(targets) - 1} more" if len(targets) > 1 else "")
        lines.append(f"  {kind}: {example}")
    return lines


def confirmation_lines(
    site: Site,
    devices: Sequence[Device],
    preview: RunResult,
    now: datetime,
    *,
    wait: bool = False,
    ignore_window: bool = False,
) -> list[str]:
    """The summary printed before ``Apply these changes?`` (one line each, never markup)."""
    changing = {r.name: len(r.changes) for r in preview.devices if r.changes}
    order = [d for d in devices if d.name in changing] or list(devices)
    outages = [outage_seconds(d, changing.get(d.name, 0)) for d in order]
    lines = [
        totals_line(plan_totals(preview)),
        f"Order ({len(devices)} device(s); compliant ones only read and probe):",
        *_order_lines(site, devices),
        _window_line(site, devices, now, wait=wait, ignore=ignore_window),
        "Probes (a baseline before the change, the same probe pinned to the mail server's own "
        "certificate after it):",
        *_probe_lines(order),
        "If a probe after the change fails: mail through that VIP may be broken for up to "
        f"{duration_text(max(outages, default=0.0))} per device (every probe attempt timing out, "
        "then the undo), until the rollback is verified; the run then halts by the rule above",
    ]
    return [one_line(line) for line in lines]
