"""The mock FortiManager's faults: an install that fails half-way, a lock another admin holds, a stuck task.

Set with ``start_fortimanager(faults=...)`` or ``POST /__lab__/faults`` on the FortiManager's
port: a list such as ``install-fail-after=2,lock-held-by=jdoe`` or a JSON object
``{"task-stuck": true}``; ``{}`` clears them.

  install-fail-after=N  an install carries out N changes on the device, then its task ends in error
  lock-held-by=USER     another administrator holds the ADOM workspace lock (lock and writes refused)
  task-stuck            install tasks stay at 10 % "running" and never touch the device
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fortiauto_lab.errors import LabInputError

__all__ = ["FmgFaults", "parse_fmg_faults"]


@dataclass(frozen=True)
class FmgFaults:
    install_fail_after: int | None = None
    lock_held_by: str | None = None
    task_stuck: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.install_fail_after is not None:
            out["install-fail-after"] = self.install_fail_after
        if self.lock_held_by:
            out["lock-held-by"] = self.lock_held_by
        if self.task_stuck:
            out["task-stuck"] = True
        return out


def _one(faults: dict[str, Any], name: str, arg: Any) -> None:
    if name == "install-fail-after":
        try:
            faults["install_fail_after"] = int(arg)
        except (TypeError, ValueError):
            raise LabInputError("install-fail-after needs a whole number (install-fail-after=2)") from None
        if faults["install_fail_after"] < 0:
            raise LabInputError("install-fail-after needs a number >= 0")
    elif name == "lock-held-by":
        if not isinstance(arg, str) or not arg.strip():
            raise LabInputError("lock-held-by needs the other admin's name, e.g. lock-held-by=jdoe")
        faults["lock_held_by"] = arg.strip()
    elif name == "task-stuck":
        faults["task_stuck"] = arg in (None, True, "true", "1", "on")
    else:
        raise LabInputError(
            f"unknown FortiManager fault {name!r}; known: install-fail-after, lock-held-by, task-stuck"
        )


def parse_fmg_faults(spec: str | dict[str, Any] | bytes) -> FmgFaults:
    """``"a=1,b"``, its JSON string, or a JSON object; raises ``LabInputError`` for a bad one."""
    if isinstance(spec, bytes):
        spec = spec.decode("utf-8", "replace")
    if isinstance(spec, str):
        text = spec.strip()
        try:
            loaded = json.loads(text) if text else {}
        except ValueError:
            loaded = text
        spec = loaded
    faults: dict[str, Any] = {}
    if isinstance(spec, dict):
        for name, arg in spec.items():
            _one(faults, str(name), arg)
    elif isinstance(spec, str):
        for item in filter(None, (p.strip() for p in spec.split(","))):
            name, _, arg = item.partition("=")
            _one(faults, name.strip(), arg.strip() or None)
    else:
        raise LabInputError("FortiManager faults must be a fault list or a JSON object")
    return FmgFaults(**faults)
