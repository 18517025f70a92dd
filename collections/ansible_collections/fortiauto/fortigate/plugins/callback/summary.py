# Copyright: fortiauto developers
# Apache License 2.0 (see the fortiauto repository's LICENSE)
"""Callback plugin: the fortiauto run summary, printed at the end of every ansible-playbook run.

A summary play would be skipped exactly when it matters (a ``max_fail_percentage`` abort or a
wholly failed batch ends the playbook; a ``--limit`` without localhost skips localhost plays), so
the summary lives here: this plugin sees every result of ``fortiauto.fortigate.smtp_inspection``
and, at the end of the run whatever happened, prints one line per status, the devices that
never got a result, the run id and the undo command; optionally it writes the same as JSON.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: summary
type: aggregate
short_description: The fortiauto run summary (status per device, run id, undo command), always printed
version_added: "0.1.0"
description:
  - Collects the result of every C(fortiauto.fortigate.smtp_inspection) task and prints, at the end
    of the run whatever stopped it (C(max_fail_percentage), a failed batch, an error), the devices
    per status, the devices targeted that never got a result, the run id and the command that undoes
    the run. A result without a fortiauto status (an argument error, an exception) counts as failed.
  - In check mode it prints the compliance report instead - compliant, drift, unknown.
  - Enable it with C(callbacks_enabled = fortiauto.fortigate.summary) in C(ansible.cfg).
requirements:
  - enable in configuration
author:
  - fortiauto developers (@fortiauto)
options:
  report_file:
    description:
      - Also write the summary as JSON to this file on the controller.
      - The extra var C(fortiauto_report_file) (C(-e fortiauto_report_file=PATH)) sets it too.
    type: path
    env:
      - name: FORTIAUTO_REPORT_FILE
    ini:
      - section: fortiauto
        key: report_file
"""

import json
import os
from typing import Any

from ansible import context
from ansible.plugins.callback import CallbackBase

ACTIONS = frozenset({"fortiauto.fortigate.smtp_inspection", "smtp_inspection"})
ORDER = ("changed", "unchanged", "fallback", "unproven", "rolled_back", "refused", "skipped", "failed")
_OK = frozenset({"changed", "unchanged"})


def _of(result: Any) -> tuple[str, Any, dict[str, Any]]:
    """Host name, task and result dict of a callback result (ansible-core 2.19 names, then older ones)."""
    host = getattr(result, "host", None) or result._host
    task = getattr(result, "task", None) or result._task
    data = getattr(result, "result", None)
    if data is None:
        data = result._result
    return host.get_name(), task, dict(data)


def _ours(task: Any) -> bool:
    return bool({getattr(task, "action", None), getattr(task, "resolved_action", None)} & ACTIONS)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fortiauto.fortigate.summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._play: Any = None
        self._playbook: str | None = None
        self._targets: list[str] = []
        self._results: dict[str, dict[str, Any]] = {}
        self._check = False
        self._report_file: str | None = None

    # -- collecting ------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._playbook = getattr(playbook, "_file_name", None)

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play
        extra = play.get_variable_manager().extra_vars
        self._report_file = extra.get("fortiauto_report_file") or self._report_file

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        if not _ours(task) or self._play is None:
            return
        self._check = self._check or bool(context.CLIARGS.get("check")) or task.check_mode is True
        for host in self._play_hosts(self._play):
            if host not in self._targets:
                self._targets.append(host)

    @staticmethod
    def _play_hosts(play: Any) -> list[str]:
        """The play's hosts after --limit (all its batches), as Ansible's ansible_play_hosts_all."""
        try:
            found = play.get_variable_manager().get_vars(play=play).get("ansible_play_hosts_all", [])
        except Exception:
            return []
        return [str(h) for h in found]

    def _collect(self, result: Any, fallback_status: str) -> None:
        host, task, data = _of(result)
        if not _ours(task):
            return
        if not isinstance(data.get("status"), str):
            # An argument error before the plugin ran, fortiauto missing, an exception: no device status.
            why = str(data.get("msg") or data.get("exception") or "no result").splitlines()[0]
            data = {
                "status": fallback_status,
                "reason": f"no fortiauto result: {why}",
                "run_id": None,
                "journal": None,
            }
        self._results[host] = data
        if host not in self._targets:
            self._targets.append(host)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._collect(result, "failed")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._collect(result, "failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._collect(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        host, task, _ = _of(result)
        if _ours(task) and host not in self._results:
            self._results[host] = {
                "status": "skipped",
                "reason": "skipped by Ansible (when:)",
                "run_id": None,
            }

    # -- the summary -------------------------------------------------------------------------

    def v2_playbook_on_stats(self, stats: Any) -> None:
        if not self._targets:
            return
        summary = self._summary()
        for line in self._lines(summary):
            self._display.display(line)
        path = self._report_file or self.get_option("report_file")
        if path:
            self._write(os.path.expanduser(str(path)), summary)

    def _summary(self) -> dict[str, Any]:
        by_status: dict[str, list[str]] = {status: [] for status in ORDER}
        for host in self._targets:
            status = str(self._results.get(host, {}).get("status", ""))
            if host in self._results:
                by_status.setdefault(status, []).append(host)
        run_ids = sorted({str(r["run_id"]) for r in self._results.values() if r.get("run_id")})
        journals = sorted({str(r["journal"]) for r in self._results.values() if r.get("journal")})
        undoing = any(_state(r) == "rolled_back" for r in self._results.values())
        written = [r["run_id"] for r in self._results.values() if r.get("journal") and r.get("run_id")]
        return {
            "run_ids": run_ids,
            "check_mode": self._check,
            "rollback": undoing,
            "devices": {
                host: {k: r.get(k) for k in ("status", "reason", "exit_code", "run_id", "journal")}
                | {"changes": len(r.get("changes") or [])}
                for host, r in self._results.items()
            },
            "by_status": by_status,
            "no_result": [h for h in self._targets if h not in self._results],
            "compliant": by_status["unchanged"],
            "drift": by_status["changed"] if self._check else [],
            "unknown": [h for h in self._targets if h not in by_status["unchanged"] + by_status["changed"]],
            "changes": {h: len(r.get("changes") or []) for h, r in self._results.items()},
            "journals": journals,
            "undo": None if self._check or undoing or not written else self._undo(sorted(set(written))),
        }

    def _undo(self, run_ids: list[str]) -> list[str]:
        here = os.path.dirname(self._playbook) if self._playbook else ""
        rollback = os.path.join(here, "rollback.yml")
        if not os.path.exists(rollback):
            return [f"fortiauto.fortigate.smtp_inspection state=rolled_back run_id={r}" for r in run_ids]
        return [
            f"ansible-playbook {rollback} -e fortiauto_run_id={r} (same inventory and --limit)"
            for r in run_ids
        ]

    def _lines(self, summary: dict[str, Any]) -> list[str]:
        ids = ", ".join(summary["run_ids"]) or "none"
        total = len(self._targets)
        if summary["check_mode"] and not summary["rollback"]:
            head = f"fortiauto compliance (run {ids}, check mode: nothing written)"
            lines = [
                head,
                f"  compliant {len(summary['compliant'])} of {total}; drift: "
                f"{', '.join(summary['drift']) or 'none'}; "
                f"unknown: {', '.join(summary['unknown']) or 'none'}",
            ]
        else:
            verb = "rollback of" if summary["rollback"] else "run"
            note = " (check mode: nothing written)" if summary["check_mode"] else ""
            lines = [f"fortiauto {verb} {ids}{note}: {total} device(s)"]
        for status, hosts in summary["by_status"].items():
            if not hosts:
                continue
            lines.append(f"  {status} {len(hosts)}: {', '.join(hosts)}")
            if status not in _OK:
                lines += [f"    {h}: {self._results[h].get('reason', '')}" for h in hosts]
        if summary["no_result"]:
            lines.append(
                f"  no result {len(summary['no_result'])}: {', '.join(summary['no_result'])} "
                "(not started: the play stopped before them, e.g. max_fail_percentage or a failed batch)"
            )
        for command in summary["undo"] or []:
            lines.append(f"  undo: {command}")
        return lines

    def _write(self, path: str, summary: dict[str, Any]) -> None:
        try:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(summary, handle, indent=2, sort_keys=True)
                handle.write("\n")
        except OSError as exc:
            self._display.warning(f"fortiauto summary: cannot write {path}: {exc}")


def _state(result: dict[str, Any]) -> str:
    args = (result.get("invocation") or {}).get("module_args") or {}
    return str(args.get("state") or "present")
