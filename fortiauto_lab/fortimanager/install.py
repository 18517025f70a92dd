"""What installing a package sends to one lab device, and sending it: FortiManager's tunnel, emulated.

``plan_install`` compares what FortiManager holds for a device and vdom (its device DB
certificates, the policies of the package that installs there and the ADOM objects they use,
with Dynamic Local Certificates resolved for that device) with the device's configuration and
lists the steps that make the device match: create and update in dependency order, policies
last, then deletes of what FortiManager once put there and the package no longer uses, or
imported and the ADOM no longer has (policies first, certificates last). A change to an ADOM
object no policy of the package uses is not pending for the device.
``apply_steps`` carries them out on the device's in-process ``ConfigStore`` — not over its REST
API, so the device's ``/__lab__/requests`` shows only calls made to it, while the data plane and
the email filter log see the new configuration at the next connection. ``preview_cli`` renders
the steps as FortiOS CLI, as FortiManager's install preview does, with secrets masked.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fortiauto_lab.fields import CmdbError, Field, iter_refs
from fortiauto_lab.fortimanager.db import ADOM_NS, CERT_PATH, INSTALL_ORDER, POLICY_PATH, AdomDB, Package
from fortiauto_lab.rules import PROTOCOL_BLOCKS, inspects_all
from fortiauto_lab.store import ConfigStore

__all__ = ["InstallAborted", "Step", "apply_steps", "managed_paths", "plan_install", "preview_cli"]

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Step:
    """One change to the device: ``body`` is the whole object (create) or the attributes that differ."""

    action: Action
    path: str
    key: Any
    body: Mapping[str, Any]


class InstallAborted(Exception):
    """The install stopped after ``done`` steps (a device refusal or the lab's half-way fault)."""

    def __init__(self, done: int, reason: str) -> None:
        self.done = done
        self.reason = reason
        super().__init__(reason)


def managed_paths() -> tuple[str, ...]:
    """Every table an install owns on the device, in creation order."""
    return (CERT_PATH, *INSTALL_ORDER, POLICY_PATH)


def _without_uuid(obj: Mapping[str, Any]) -> dict[str, Any]:
    # Each device keeps its own object uuids; FortiManager's do not travel with the config here.
    return {k: v for k, v in obj.items() if k != "uuid"}


def _map_names(value: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(value, list):
        return [{**v, "name": rename(v["name"])} if isinstance(v, dict) else v for v in value]
    return rename(value) if isinstance(value, str) and value else value


def _resolve_certs(fields: Mapping[str, Field], obj: Mapping[str, Any], rename: Callable[[str], str]) -> Any:
    out = dict(obj)
    for attr, spec in fields.items():
        if attr not in out:
            continue
        if spec.kind in ("ref", "names") and CERT_PATH in spec.refs:
            out[attr] = _map_names(out[attr], rename)
        elif spec.kind == "container" and isinstance(out[attr], Mapping):
            out[attr] = _resolve_certs(spec.fields, out[attr], rename)
    return out


def _installable(path: str, obj: dict[str, Any]) -> dict[str, Any]:
    # FortiOS hides the per-protocol blocks of an SSL profile that inspects all ports (rules.py):
    # they are not part of what an install sets, and a strict unit refuses them there.
    if path == "firewall/ssl-ssh-profile" and inspects_all(obj):
        return {k: v for k, v in obj.items() if k not in PROTOCOL_BLOCKS}
    return obj


def _referenced(adom: AdomDB, policies: Iterable[Mapping[str, Any]]) -> dict[str, set[Any]]:
    """Per path, the ADOM objects the policies use, directly or through another (a group, a profile)."""
    schema = adom.store.schema
    used: dict[str, set[Any]] = {path: set() for path in INSTALL_ORDER}
    todo: list[tuple[str, Mapping[str, Any]]] = [(POLICY_PATH, policy) for policy in policies]
    while todo:
        path, obj = todo.pop()
        for ref_field, name in iter_refs(schema.spec(path).fields, obj):
            for target in ref_field.refs:
                if target in used and name not in used[target] and adom.store.exists(ADOM_NS, target, name):
                    used[target].add(name)
                    todo.append((target, adom.store.get(ADOM_NS, target, name)))
    return used


def _intended(adom: AdomDB, package: Package, device: str, vdom: str) -> dict[str, dict[Any, dict[str, Any]]]:
    """Per path, key -> the object FortiManager would put on ``device``/``vdom``.

    The package's policies and the ADOM objects they use (FortiManager installs what a package
    needs, so a change to an object no policy of this package uses is not pending here), and
    the device DB's certificates.
    """
    schema = adom.store.schema
    out: dict[str, dict[Any, dict[str, Any]]] = {CERT_PATH: {}}
    for name, cert in adom.certs(device, vdom).items():
        out[CERT_PATH][name] = copy.deepcopy(cert)
    used = _referenced(adom, package.policies.values())
    for path in (*INSTALL_ORDER, POLICY_PATH):
        spec = schema.spec(path)
        mkey = spec.mkey or "name"
        objects = package.policies.values() if path == POLICY_PATH else adom.store.members(ADOM_NS, path)
        out[path] = {}
        for obj in objects:
            if path != POLICY_PATH and obj[mkey] not in used[path]:
                continue
            resolved = _resolve_certs(spec.fields, obj, lambda n: adom.resolve_certificate(n, device, vdom))
            out[path][obj[mkey]] = _installable(path, _without_uuid(resolved))
    return out


def plan_install(
    adom: AdomDB,
    device: str,
    store: ConfigStore,
    vdom: str,
    known: set[tuple[str, Any]],
    *,
    imported: frozenset[tuple[str, Any]] | set[tuple[str, Any]],
) -> list[Step]:
    """The steps that make ``store``/``vdom`` match what FortiManager holds for ``device``.

    ``known`` is what FortiManager imported from or installed to the device, ``imported`` the
    first part; a device no package installs to gets nothing.
    """
    package = adom.package_of(device, vdom)
    if package is None:
        return []
    intended = _intended(adom, package, device, vdom)
    steps: list[Step] = []
    for path in managed_paths():
        for key, wanted in intended[path].items():
            if not store.exists(vdom, path, key):
                steps.append(Step("create", path, key, wanted))
                continue
            current = _without_uuid(store.get(vdom, path, key))
            differing = {k: v for k, v in wanted.items() if current.get(k) != v}
            if differing:
                steps.append(Step("update", path, key, differing))
    return steps + _deletes(adom, intended, store, vdom, known=known, imported=imported)


def _deletes(
    adom: AdomDB,
    intended: Mapping[str, Mapping[Any, Any]],
    store: ConfigStore,
    vdom: str,
    *,
    known: set[tuple[str, Any]],
    imported: frozenset[tuple[str, Any]] | set[tuple[str, Any]],
) -> list[Step]:
    """What FortiManager removes: policies of the vdom it does not hold, and objects it put there
    that the package no longer uses (or, for objects it imported, that the ADOM no longer has)."""
    steps: list[Step] = []
    for path in reversed(managed_paths()):
        spec = store.schema.spec(path)
        for obj in store.members(vdom, path):
            key = obj[spec.mkey or "name"]
            if key in intended[path] or obj.get("source") == "factory":
                continue
            if path == POLICY_PATH:
                steps.append(Step("delete", path, key, {}))
                continue
            in_adom = path != CERT_PATH and adom.store.exists(ADOM_NS, path, key)
            if (path, key) in known and not ((path, key) in imported and in_adom):
                steps.append(Step("delete", path, key, {}))
    return steps


def apply_steps(
    store: ConfigStore, vdom: str, steps: Iterable[Step], *, fail_after: int | None = None
) -> list[Step]:
    """Carry out ``steps`` on the device in order; ``InstallAborted`` stops it part-way.

    ``fail_after`` is the lab's half-way fault: that many steps take effect, then the install fails.
    """
    done: list[Step] = []
    for step in steps:
        if fail_after is not None and len(done) >= fail_after:
            raise InstallAborted(len(done), f"lab fault: install failed after {len(done)} change(s)")
        try:
            if step.action == "create":
                store.create(vdom, step.path, dict(step.body))
            elif step.action == "update":
                store.update(vdom, step.path, step.key, dict(step.body))
            else:
                store.delete(vdom, step.path, step.key)
        except CmdbError as exc:
            reason = (exc.cli_error or str(exc)).split("\n")[0]
            raise InstallAborted(len(done), f"{step.action} {step.path} {step.key}: {reason}") from None
        done.append(step)
    return done


def _cli_value(spec: Field | None, value: Any) -> str:
    if spec is not None and spec.kind == "secret":
        return "ENC ********"
    if isinstance(value, list):
        items = [v["name"] if isinstance(v, Mapping) and "name" in v else v for v in value]
        return " ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in items)
    if spec is not None and spec.kind in ("ref", "string", "text"):
        return f'"{value}"'
    return str(value)


def _cli_block(fields: Mapping[str, Field], body: Mapping[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for attr, value in body.items():
        spec = fields.get(attr)
        if spec is not None and spec.kind == "container" and isinstance(value, Mapping):
            lines += [
                f"{indent}config {attr}",
                *_cli_block(spec.fields, value, indent + "    "),
                f"{indent}end",
            ]
        elif spec is not None and spec.kind == "table":
            continue  # child tables are left out of the preview
        else:
            lines.append(f"{indent}set {attr} {_cli_value(spec, value)}")
    return lines


def preview_cli(store: ConfigStore, steps: Iterable[Step]) -> str:
    """The steps as the FortiOS CLI FortiManager's install preview shows (secrets masked)."""
    lines: list[str] = []
    for step in steps:
        spec = store.schema.spec(step.path)
        section = step.path.replace(".", " ").replace("/", " ")
        key = f'"{step.key}"' if isinstance(step.key, str) else str(step.key)
        lines.append(f"config {section}")
        if step.action == "delete":
            lines.append(f"    delete {key}")
        else:
            body = {k: v for k, v in step.body.items() if k != spec.mkey}
            lines += [f"    edit {key}", *_cli_block(spec.fields, body, " " * 8), "    next"]
        lines.append("end")
    return "\n".join(lines) + ("\n" if lines else "")
