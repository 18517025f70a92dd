"""Human output: a plan as a readable diff, one line per event, and a summary table (rich).

Implements the ``events.Reporter`` protocol; on a TTY it also shows a live status table. All
text is built from result objects, which hold no secrets. Nothing here is rich markup: text from
a device or a file goes into ``rich.text.Text`` objects (never parsed), one line each
(``safe.one_line``), so ``[http 500, error -1]`` shows literally and a newline cannot forge a line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import IO, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from fortiauto.events import NullReporter
from fortiauto.report.probe_text import render_probe
from fortiauto.report.safe import one_line
from fortiauto.report.story import AFTER_STAGES, failure, outage_text, probe_summary, revision_text
from fortiauto.results import Change, DeviceResult, Plan, ProbeResult, RunResult

__all__ = [
    "STATUS_STYLE",
    "ConsoleReporter",
    "change_title",
    "device_line",
    "make_console",
    "render_change",
    "render_failure",
    "render_plan",
    "render_summary",
]

# Without a terminal (a pipe, a CI log, a file) there is no width to respect: rich's default of
# 80 columns would wrap a table's reasons one word per line. Tables are not expanded, so they
# take their natural width; COLUMNS, when set, still wins.
_NO_TERMINAL_WIDTH = 10_000

STATUS_STYLE = {
    "unchanged": "green",
    "changed": "bold green",
    "unproven": "yellow",  # mail flows, the fix is in place, but its effect is not in the log
    "fallback": "yellow",  # mail flows on a fallback rung, not with the full fix
    "rolled_back": "yellow",
    "refused": "cyan",
    "skipped": "cyan",
    "failed": "bold red",
}


class _PipeSafeConsole(Console):
    """A console that goes quiet when its reader is gone, where rich would exit the process (1).

    A closed pipe (``| head``) or terminal must never end a run that is still changing or
    rolling back a firewall; the run's own exit code stands.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True


def make_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """The CLI's console: no markup, no emoji codes, no highlighting, full width when not a terminal.

    rich would otherwise turn ``:cd:`` in a fingerprint (``93:CD:C0``) or a name into an emoji.
    """
    console = _PipeSafeConsole(
        stderr=stderr, file=file, highlight=False, soft_wrap=True, markup=False, emoji=False
    )
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        console.width = _NO_TERMINAL_WIDTH
    return console


def _value(value: Any) -> str:
    return one_line(json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value)


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


def _policy_name(change: Change) -> str | None:
    """The policy's name when the data has it (a ``policy_name`` field, else the object's name)."""
    if change.path != "firewall/policy":
        return None
    name = getattr(change, "policy_name", None)
    for body in (change.before, change.after):
        if name is None and body:
            name = body.get("name")
    return None if name in (None, "") else str(name)


def change_title(change: Change) -> str:
    """``update firewall/policy/1 "inbound-smtp" (vdom root)``: what, where, and the policy's name."""
    name = _policy_name(change)
    label = f" {json.dumps(one_line(name))}" if name is not None else ""
    return one_line(f"{change.action} {change.path}/{change.mkey}{label} (vdom {change.vdom})")


def render_change(change: Change) -> list[str]:
    title = f"  {change_title(change)}"
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
    lines = [one_line(f"{plan.device} (FortiOS {plan.version}){rung}")]
    if plan.empty:
        lines.append("  no changes")
    for change in plan.changes:
        lines.extend(render_change(change))
    lines.extend(one_line(f"  = {label}: {reason}") for label, reason in plan.noop_reasons.items())
    lines.extend(one_line(f"  ! warning: {w}") for w in plan.warnings)
    return "\n".join(lines)


def _status(status: str) -> Text:
    return Text(one_line(status), style=STATUS_STYLE.get(status, ""))


def render_summary(run: RunResult) -> Group:
    """The summary table, then for each rolled-back or fallen-back device the failure that caused it."""
    table = Table(title=Text(one_line(f"run {run.run_id}: exit {run.exit_code}")))
    for column in ("device", "status", "changes", "probe", "effect", "fallback", "outage", "reason"):
        table.add_column(column)
    for result in run.devices:
        table.add_row(
            Text(one_line(result.name)),
            _status(result.status),
            str(len(result.changes)),
            Text(one_line(probe_summary(result))),
            Text(one_line(result.effect)),
            Text(one_line(result.fallback_used or "-")),
            "-" if result.mttr_ms is None else f"{result.mttr_ms:.0f} ms",
            Text(one_line(result.reason)),
        )
    return Group(table, *(block for r in run.devices if (block := render_failure(r)) is not None))


def render_failure(result: DeviceResult) -> Text | None:
    """Why a device rolled back or fell back: the failed probe (steps, timings, transcript), the outage."""
    cause = failure(result)
    if cause is None or cause.stage not in AFTER_STAGES:
        return None
    outage = outage_text(result)
    head = one_line(
        f"{result.name}: {cause.result.failure_class or 'failed'} at the {cause.label} probe"
        + (f"; outage window: {outage}" if outage else "")
    )
    body = "".join(f"  {line}\n" for line in render_probe(cause.result).splitlines())
    return Text.assemble((head, STATUS_STYLE.get(result.status, "")), "\n", body.rstrip("\n"))


def device_line(result: DeviceResult) -> Text:
    """``fgt-1: changed - applied and probe passed``, the status in its colour."""
    return Text.assemble(one_line(result.name), ": ", _status(result.status), " - ", one_line(result.reason))


def unseen_warnings(result: DeviceResult, shown: Iterable[str]) -> list[str]:
    """The device's warnings a human has not seen on the console yet, as ``  ! warning:`` lines.

    Warnings that arise after the plan was shown (a kept certificate still referenced, a
    changed certificate issuer, a revision that was not saved), and every warning when no plan
    was shown (``apply --yes`` with the live view), must not live in the report files only.
    """
    seen = set(shown)
    warnings = result.plan.warnings if result.plan is not None else ()
    return [one_line(f"  ! warning: {w}") for w in dict.fromkeys(warnings) if w not in seen]


class ConsoleReporter(NullReporter):
    """One plain line per event (stderr when stdout carries JSON)."""

    def __init__(self, console: Console, *, show_plans: bool = True, show_diff: bool = True) -> None:
        self.console = console
        self.show_plans = show_plans
        self.show_diff = show_diff
        self._shown: dict[str, set[str]] = {}  # per device, the warnings already printed

    def _line(self, text: Text | str) -> None:
        self.console.print(text if isinstance(text, Text) else Text(one_line(text)), highlight=False)

    def device_started(self, device: str) -> None:
        self._line(Text.assemble((one_line(device), "bold"), ": started"))

    def change_planned(self, device: str, plan: Plan) -> None:
        if self.show_plans:
            if self.show_diff:
                self.console.print(Text(render_plan(plan)), highlight=False)
                self._shown.setdefault(device, set()).update(plan.warnings)
            else:
                self._line(f"{device}: {len(plan.changes)} change(s)")

    def change_applied(self, device: str, change: Change) -> None:
        self._line(f"{device}: {change.action} {change.path}/{change.mkey} ok")

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None:
        verdict = "passed" if result.passed else f"FAILED {result.failure_class}"
        self._line(f"{device}: {stage} probe {verdict} ({result.mode}, {result.attempts} attempt(s))")

    def device_finished(self, result: DeviceResult) -> None:
        self._line(device_line(result))
        revision = revision_text(result)
        if revision is not None and result.status != "changed":
            # After a rollback or a failure, the way back FortiOS offers is worth a line.
            self._line(f"  = {revision}")
        for line in unseen_warnings(result, self._shown.pop(result.name, set())):
            self._line(line)
