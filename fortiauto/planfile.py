"""Saved plans: ``fortiauto plan SITE --out plan.json`` and ``fortiauto apply SITE --plan plan.json``.

Like Terraform's saved plan: ``save_plan`` writes each planned device's changes (every change
with its managed keys as read and as desired) beside the site file's SHA-256; ``load_plan``
reads one back for the same site file and refuses another or an edited one. During the apply,
the device transaction plans afresh and asks ``SavedPlan.drift`` whether that plan is the one
saved; a device whose state drifted since is refused before any write, naming what changed.
Applying the fresh plan when it equals the saved one is applying exactly the saved plan.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fortiauto.errors import InputError
from fortiauto.results import Change, Plan, RunResult

__all__ = ["FORMAT", "SavedPlan", "change_record", "load_plan", "save_plan", "site_digest"]

FORMAT = "fortiauto-plan/1"
_MAX_BYTES = 32 * 1024 * 1024  # a 2,000-device plan is a few MB


def site_digest(site_path: Path) -> str:
    return hashlib.sha256(site_path.read_bytes()).hexdigest()


def change_record(change: Change) -> dict[str, Any]:
    """A change as saved: what, where, and the managed keys before and after (JSON-normalised)."""
    record = {
        "task": change.task,
        "path": change.path,
        "mkey": change.mkey,
        "vdom": change.vdom,
        "action": change.action,
        "before": change.before,
        "after": change.after,
    }
    normalised: dict[str, Any] = json.loads(json.dumps(record, sort_keys=True, default=str))
    return normalised


def _plan_record(plan: Plan) -> dict[str, Any]:
    return {
        "version": plan.version,
        "rung": plan.rung,
        "changes": [change_record(c) for c in plan.changes],
    }


@dataclass(frozen=True)
class SavedPlan:
    """The plans of one site file's devices, as saved; devices without a plan are not in it."""

    path: Path
    site: str
    site_sha256: str
    created: str
    devices: dict[str, dict[str, Any]]
    left_out: dict[str, str]  # devices that had no plan when it was saved, and why

    def drift(self, device: str, fresh: Plan) -> str | None:
        """Why ``fresh`` is not the saved plan of ``device`` (what changed on it), or None."""
        saved = self.devices.get(device)
        if saved is None:
            return f"{device} is not in the saved plan {self.path}"
        return describe_drift(saved, _plan_record(fresh))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "site": self.site,
            "site_sha256": self.site_sha256,
            "created": self.created,
            "devices": self.devices,
            "left_out": self.left_out,
        }


def describe_drift(saved: dict[str, Any], fresh: dict[str, Any]) -> str | None:
    """The differences between two plan records, in words; None when they are the same plan."""
    problems: list[str] = []
    if saved.get("version") != fresh["version"]:
        problems.append(f"FortiOS was {saved.get('version')} when planned, now {fresh['version']}")
    if saved.get("rung") != fresh["rung"]:
        problems.append(f"planned for rung {saved.get('rung') or 'full'}, now {fresh['rung'] or 'full'}")
    before = {_key(c): c for c in saved.get("changes", [])}
    now = {_key(c): c for c in fresh["changes"]}
    for key, change in before.items():
        if key not in now:
            problems.append(f"{_title(change)} is no longer needed (someone made it since)")
        elif now[key] != change:
            problems.append(f"{_title(change)}: {_what_moved(change, now[key])}")
    problems.extend(
        f"{_title(c)} is needed now but was not planned" for k, c in now.items() if k not in before
    )
    return "; ".join(problems) or None


def _key(change: dict[str, Any]) -> tuple[str, str, str]:
    return (str(change.get("path")), str(change.get("mkey")), str(change.get("vdom")))


def _title(change: dict[str, Any]) -> str:
    return f"{change.get('action')} {change.get('path')}/{change.get('mkey')} (vdom {change.get('vdom')})"


def _what_moved(saved: dict[str, Any], fresh: dict[str, Any]) -> str:
    if saved.get("action") != fresh.get("action"):
        return f"was {_an(saved.get('action'))}, now {_an(fresh.get('action'))}"
    moved: list[str] = []
    for side in ("before", "after"):
        old, new = saved.get(side) or {}, fresh.get(side) or {}
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                label = "on the device" if side == "before" else "wanted"
                moved.append(f"{name} {label} was {_short(old.get(name))}, now {_short(new.get(name))}")
    return ", ".join(moved) or "changed"


def _an(action: Any) -> str:
    return f"{'an' if str(action)[:1] in 'aeiou' else 'a'} {action}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def save_plan(run: RunResult, site_path: Path, out: Path) -> SavedPlan:
    """Write the plan of every device that has one (0600, whole or not at all) and return it."""
    devices = {
        r.name: _plan_record(r.plan)
        for r in run.devices
        if r.plan is not None and r.ending in ("planned", "compliant")
    }
    left_out = {r.name: f"{r.status}: {r.reason}" for r in run.devices if r.name not in devices}
    saved = SavedPlan(
        path=out,
        site=str(site_path.resolve()),
        site_sha256=site_digest(site_path),
        created=datetime.now(UTC).isoformat(),
        devices=devices,
        left_out=left_out,
    )
    _write_whole(out, json.dumps(saved.to_json(), indent=2, sort_keys=True) + "\n")
    return saved


def _write_whole(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the plan: {exc.strerror or exc}") from None


def load_plan(path: Path, site_path: Path) -> SavedPlan:
    """Read a saved plan for ``site_path``; another site file's, or one saved before the site file
    was edited, is refused (``InputError``: exit 2, nothing contacted)."""
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise InputError(f"{path}: larger than {_MAX_BYTES // 1024 // 1024} MB; not a saved plan")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the plan: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a saved plan (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not a saved plan (format is not {FORMAT!r}); save one with plan --out")
    devices, left_out = data.get("devices"), data.get("left_out", {})
    if not isinstance(devices, dict) or not all(isinstance(v, dict) for v in devices.values()):
        raise InputError(f"{path}: devices: not a mapping of device plans")
    if str(data.get("site")) != str(site_path.resolve()):
        raise InputError(f"{path}: saved for {data.get('site')}, not for {site_path.resolve()}")
    if data.get("site_sha256") != site_digest(site_path):
        raise InputError(
            f"{path}: {site_path} changed since the plan was saved ({data.get('created')}); "
            "plan again with --out"
        )
    return SavedPlan(
        path=path,
        site=str(data["site"]),
        site_sha256=str(data["site_sha256"]),
        created=str(data.get("created")),
        devices=devices,
        left_out={str(k): str(v) for k, v in (left_out if isinstance(left_out, dict) else {}).items()},
    )
