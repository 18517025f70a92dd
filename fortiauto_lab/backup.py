"""A mock FortiGate's configuration as FortiOS CLI text: what ``monitor/system/config/backup`` returns.

The header is the one real backups start with (``#config-version=<MODEL>-<x.y.z>-FW-build<NNNN>-<date>:...``,
``#conf_file_ver=``, ``#buildno=``, ``#global_vdom=1``); the body is ``config global`` then
one ``config vdom / edit <vdom>`` block per vdom, each object showing only the attributes
that differ from their defaults, as ``show`` does. Secrets appear as ``ENC`` masks only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fortiauto_lab.fields import Field, ObjectSpec, defaults, mask_secret

if TYPE_CHECKING:
    from fortiauto_lab.device import LabDevice

__all__ = ["render_backup"]

_INDENT = "    "


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(spec: Field, value: Any) -> str:
    if spec.kind == "secret":
        return mask_secret(str(value))
    if spec.kind == "names":
        return " ".join(_quote(v["name"]) for v in value)
    if spec.kind == "ports":
        return " ".join(str(p) for p in value)
    if spec.kind in ("option", "multi", "integer", "ipmask", "ip", "iprange", "uuid"):
        return str(value)
    return _quote(str(value))


def _attributes(
    fields: Mapping[str, Field], obj: Mapping[str, Any], depth: int, skip: str | None
) -> list[str]:
    pad = _INDENT * depth
    base = defaults(fields)
    lines: list[str] = []
    for attr, spec in fields.items():
        value = obj.get(attr)
        if attr == skip or value is None or value == base.get(attr):
            continue
        if spec.kind == "container":
            inner = _attributes(spec.fields, value, depth + 1, None)
            if inner:
                lines += [f"{pad}config {attr}", *inner, f"{pad}end"]
        elif spec.kind == "table":
            lines += [f"{pad}config {attr}"]
            for row in value:
                key = row[spec.mkey]
                lines.append(f"{pad}{_INDENT}edit {key if spec.mkey_int else _quote(str(key))}")
                lines += _attributes(spec.fields, row, depth + 2, spec.mkey)
                lines.append(f"{pad}{_INDENT}next")
            lines.append(f"{pad}end")
        else:
            lines.append(f"{pad}set {attr} {_value(spec, value)}")
    return lines


def _section(device: LabDevice, spec: ObjectSpec, vdom: str) -> list[str]:
    store = device.store
    head = f"config {spec.path.replace('.', ' ').replace('/', ' ')}"
    if spec.category == "complex":
        return [head, *_attributes(spec.fields, store.singleton(vdom, spec.path), 1, None), "end"]
    lines = [head]
    for obj in store.members(vdom, spec.path):
        assert spec.mkey is not None
        key = obj[spec.mkey]
        lines.append(f"{_INDENT}edit {key if spec.mkey_int else _quote(str(key))}")
        lines += _attributes(spec.fields, obj, 2, spec.mkey)
        lines.append(f"{_INDENT}next")
    lines.append("end")
    return lines


def render_backup(device: LabDevice, *, vdom: str | None = None) -> str:
    """The full configuration (``vdom`` None) or one vdom's, as backup text."""
    store = device.store
    user = device.username
    build = f"{device.build:04d}"
    header = [
        f"#config-version={device.model.code}-{device.version}-FW-build{build}-240101:opmode=0:vdom=1:user={user}",
        f"#conf_file_ver={int(store.revision[:12], 16)}",
        f"#buildno={build}",
        "#global_vdom=1",
    ]
    specs = list(store.schema.objects.values())
    body: list[str] = []
    if vdom is None:
        body += ["config vdom", *[line for v in store.vdoms for line in (f"edit {v}", "next")], "end"]
        body += ["config global"]
        for spec in specs:
            if spec.scope == "global":
                body += _section(device, spec, store.vdoms[0])
        body += ["end"]
    for name in store.vdoms if vdom is None else (vdom,):
        body += ["config vdom", f"edit {name}"]
        for spec in specs:
            if spec.scope == "vdom":
                body += _section(device, spec, name)
        body += ["end"]
    return "\n".join(header + body) + "\n"
