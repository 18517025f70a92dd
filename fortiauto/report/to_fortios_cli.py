"""The FortiOS CLI equivalent of a plan, and of its rollback: what an admin would type.

For change records and for admins who want to see the change the way they know FortiOS.
Certificates are shown by name and source file; the private key is never printed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fortiauto.fortios.normalise import MULTI_VALUE_KEYS
from fortiauto.report.safe import one_line
from fortiauto.results import Change, Plan

__all__ = ["plan_to_cli", "rollback_to_cli"]

_INDENT = "    "


def _config_path(path: str) -> str:
    return path.replace(".", " ").replace("/", " ")


def _quote(value: Any) -> str:
    text = one_line(value)
    return f'"{text}"' if text == "" or any(c in text for c in ' "\t') else text


def _set_lines(body: dict[str, Any], depth: int) -> list[str]:
    pad = _INDENT * depth
    lines: list[str] = []
    for key, value in body.items():
        if key in ("name", "policyid"):
            continue
        if isinstance(value, dict):
            lines.append(f"{pad}config {key}")
            lines.extend(_set_lines(value, depth + 1))
            lines.append(f"{pad}end")
        elif isinstance(value, list):
            names = [one_line(v.get("name")) if isinstance(v, dict) else one_line(v) for v in value]
            lines.append(
                f"{pad}set {key} " + " ".join(f'"{n}"' for n in names) if names else f"{pad}unset {key}"
            )
        elif value is None:
            lines.append(f"{pad}unset {key}")
        elif key in MULTI_VALUE_KEYS:
            lines.append(f"{pad}set {key} {value}")
        else:
            lines.append(f"{pad}set {key} {_quote(value)}")
    return lines


def _change_lines(change: Change, *, undo: bool) -> list[str]:
    head = f"config {_config_path(change.path)}"
    mkey = _quote(change.mkey) if isinstance(change.mkey, str) else str(change.mkey)
    if change.action == "import" and not undo:
        return [
            f"# import certificate {change.mkey} (mail server certificate + private key; key not shown)",
            "# REST: POST /api/v2/monitor/vpn-certificate/local/import type=regular",
            head,
            f"{_INDENT}edit {mkey}",
            f'{_INDENT * 2}set certificate "<PEM of the mail server certificate, sha256 {_sha(change)}>"',
            f"{_INDENT * 2}set private-key <private key, not shown>",
            f"{_INDENT}next",
            "end",
        ]
    if undo and change.action in ("create", "import"):
        return [head, f"{_INDENT}delete {mkey}", "end"]
    if change.action == "delete" and not undo:
        return [head, f"{_INDENT}delete {mkey}", "end"]
    if change.action == "delete":
        # A rotated-out certificate: its private key was never stored, so only the files can restore it.
        return [f"# re-import certificate {change.mkey} from the previous certificate and key files"]
    body = change.before if undo else change.after
    return [head, f"{_INDENT}edit {mkey}", *_set_lines(body or {}, 2), f"{_INDENT}next", "end"]


def _sha(change: Change) -> str:
    return str((change.after or {}).get("sha256", "?"))[:16]


def _wrap_vdoms(changes: Iterable[Change], *, undo: bool) -> list[str]:
    lines: list[str] = []
    current_vdom: str | None = None
    for change in changes:
        if change.vdom != current_vdom:
            if current_vdom is not None:
                lines.append("end")
            lines.extend(["config vdom", f"edit {change.vdom}"])
            current_vdom = change.vdom
        lines.extend(_change_lines(change, undo=undo))
    if current_vdom is not None:
        lines.append("end")
    return lines


def plan_to_cli(plan: Plan) -> str:
    """The change, in the order fortiauto applies it."""
    if plan.empty:
        return one_line(f"# {plan.device}: nothing to change") + "\n"
    header = [
        one_line(f"# {plan.device} (FortiOS {plan.version}): the change")
        + (f", rung {plan.rung}" if plan.rung else "")
    ]
    return "\n".join(header + _wrap_vdoms(plan.changes, undo=False)) + "\n"


def rollback_to_cli(plan: Plan) -> str:
    """The undo, newest change first: un-bind, then delete what the change created."""
    if plan.empty:
        return one_line(f"# {plan.device}: nothing to roll back") + "\n"
    header = [one_line(f"# {plan.device} (FortiOS {plan.version}): the rollback")]
    return "\n".join(header + _wrap_vdoms(reversed(plan.changes), undo=True)) + "\n"
