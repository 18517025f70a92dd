"""The mock FortiManager's databases: one ADOM (objects, policy packages), device DBs, revisions, lock.

``api.py`` turns JSON-RPC calls into calls here; ``install.py`` reads what is here to change the
lab devices. The ADOM's objects live in a ``ConfigStore`` copied from the first managed device
at import; each policy package holds the policies of the first device it installs to (as
FortiManager imports a device's policy and objects), and its installation targets. A package's
policies are put into the store's policy table for the time of each read or write, so
the lab's own schema validates every write (unknown attribute, bad value, missing reference,
delete of a referenced object) and FortiManager-shaped values are converted on the way in and out:
a reference is a list of names (``"dstaddr": ["vip-mx1"]``, ``"ssl-ssh-profile": ["x"]``), as
FortiManager's JSON API spells it; an ADOM object that any package's policy uses cannot be
deleted. Certificates with their keys live per device and vdom in the device DB; ADOM objects
name them through Dynamic Local Certificates (``dynamic_mapping``).
In workspace mode every write needs the ADOM lock held by the caller's session; ``unlock``
without ``commit`` throws the session's changes away. No I/O.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fortiauto_lab.fields import CmdbError, Field
from fortiauto_lab.pki import KeyMismatch, load_key_pair
from fortiauto_lab.store import ConfigStore

__all__ = [
    "ADOM_NS",
    "CERT_PATH",
    "INSTALL_ORDER",
    "OBJECT_PATHS",
    "POLICY_PATH",
    "AdomDB",
    "FmgError",
    "Package",
    "Revision",
]

ADOM_NS = "root"  # the ADOM store's namespace: the ADOM objects, and the policies of the package at hand
POLICY_PATH = "firewall/policy"
CERT_PATH = "vpn.certificate/local"
DYNAMIC_CERT = "dynamic/certificate/local"
# FortiManager object url (after /obj/) -> the lab's CMDB path.
OBJECT_PATHS: Mapping[str, str] = {
    "firewall/profile-protocol-options": "firewall/profile-protocol-options",
    "firewall/ssl-ssh-profile": "firewall/ssl-ssh-profile",
    "emailfilter/profile": "emailfilter/profile",
    "firewall/profile-group": "firewall/profile-group",
    "antivirus/profile": "antivirus/profile",
    "firewall/address": "firewall/address",
    "firewall/addrgrp": "firewall/addrgrp",
    "firewall/vip": "firewall/vip",
    "firewall/service/custom": "firewall.service/custom",
    "firewall/service/group": "firewall.service/group",
    "firewall/schedule/recurring": "firewall.schedule/recurring",
}
# The order an install creates objects in (referenced before referencing); deletes run backwards.
INSTALL_ORDER = (
    "firewall.schedule/recurring",
    "firewall.service/custom",
    "firewall.service/group",
    "firewall/address",
    "firewall/vip",
    "firewall/addrgrp",
    "firewall/profile-protocol-options",
    "antivirus/profile",
    "emailfilter/profile",
    "firewall/ssl-ssh-profile",
    "firewall/profile-group",
)


class FmgError(Exception):
    """A JSON-RPC status: FortiManager's code and message for a failed call."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


def from_cmdb(exc: CmdbError) -> FmgError:
    """The FortiManager status a lab CMDB failure stands for.

    -3/-2/-10/-11 are documented FortiManager codes; the lab answers a referenced delete
    (FortiOS -23) and a missing datasource (-651 "entry not found") with -10131, the Ansible
    collection's "object dependency failed", and every other value error with -10.
    """
    text = (exc.cli_error or "").split("\n")[0]
    if exc.error == -3 or exc.http_status == 404:
        return FmgError(-3, "Object does not exist")
    if exc.error == -5:
        return FmgError(-2, "Object already exists")
    if exc.error == -23:
        return FmgError(-10131, f"Object is used by other objects: {text}")
    if exc.error == -37:
        return FmgError(-11, "No permission for the resource")
    if "datasource" in (exc.cli_error or ""):
        return FmgError(-10131, f"datasource not found: {text}")
    return FmgError(-10, f"The data is invalid for selected url: {text}")


@dataclass(frozen=True)
class Revision:
    version: int
    name: str
    desc: str
    created_by: str
    created_time: int

    def to_fmg(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "desc": self.desc,
            "created_by": self.created_by,
            "created_time": self.created_time,
            "locked": 0,
            "oid": 100 + self.version,
        }


@dataclass
class _Lock:
    user: str
    session: str
    since: int
    dirty: bool = False
    snapshot: bytes = b""


@dataclass
class Package:
    """One policy package: where it installs ("scope member") and its policies (stored form, by id)."""

    name: str
    targets: list[tuple[str, str]] = field(default_factory=list)  # (device, vdom)
    policies: dict[Any, dict[str, Any]] = field(default_factory=dict)


@dataclass
class AdomDB:
    """One ADOM, its policy packages, the device DBs of its devices, its revisions and lock."""

    name: str
    store: ConfigStore
    packages: dict[str, Package] = field(default_factory=dict)
    dynamic: dict[str, dict[str, Any]] = field(default_factory=dict)
    device_db: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    revisions: list[Revision] = field(default_factory=list)
    lock: _Lock | None = None
    workspace_mode: str = "normal"  # "disabled" | "normal"

    # --- import -------------------------------------------------------------------------

    @classmethod
    def imported(
        cls,
        name: str,
        assignment: Mapping[str, str],
        stores: Mapping[str, ConfigStore],
        *,
        vdom: str = ADOM_NS,
    ) -> AdomDB:
        """The ADOM as FortiManager holds it right after importing these devices' ``vdom``.

        ``assignment`` names each device's package; a package takes its policies from the first
        device assigned to it.
        """
        first = next(iter(stores.values()))
        adom = cls(name=name, store=first.copy(uuid_seed=f"fortimanager/{name}"))
        adom.store.table(ADOM_NS, POLICY_PATH).clear()  # policies live in their packages
        for cert in adom.store.members(ADOM_NS, CERT_PATH):
            adom.dynamic[cert["name"]] = {"name": cert["name"], "dynamic_mapping": None}
        for device, store in stores.items():
            adom.device_db[device] = {
                vdom: {c["name"]: copy.deepcopy(c) for c in store.members(vdom, CERT_PATH)}
            }
            package = adom.packages.get(assignment[device])
            if package is None:
                spec = store.schema.spec(POLICY_PATH)
                policies = {
                    p[spec.mkey or "policyid"]: copy.deepcopy(p) for p in store.members(vdom, POLICY_PATH)
                }
                package = adom.packages.setdefault(
                    assignment[device], Package(assignment[device], policies=policies)
                )
            package.targets.append((device, vdom))
        return adom

    # --- packages -----------------------------------------------------------------------

    def package(self, name: str) -> Package:
        """A package by name (-3 when the ADOM has none of that name)."""
        try:
            return self.packages[name]
        except KeyError:
            raise FmgError(-3, "Object does not exist") from None

    def package_of(self, device: str, vdom: str) -> Package | None:
        """The package that installs to ``device``/``vdom``, if any."""
        return next((p for p in self.packages.values() if (device, vdom) in p.targets), None)

    @contextmanager
    def active(self, package: Package) -> Iterator[None]:
        """The package's policies in the store's policy table, so the store checks their references."""
        table = self.store.table(ADOM_NS, POLICY_PATH)
        table.clear()
        table.update(package.policies)
        try:
            yield
        finally:
            package.policies = dict(table)
            table.clear()

    def used_by_policies(self, path: str, key: Any) -> bool:
        """Does any package's policy refer to this ADOM object?"""
        for package in self.packages.values():
            with self.active(package):
                if self.store.ref_count(ADOM_NS, path, key):
                    return True
        return False

    # --- workspace ----------------------------------------------------------------------

    def check_write(self, session: str) -> None:
        """Workspace mode: only the lock holder's session writes (else -10147, ansible#65915)."""
        if self.workspace_mode == "disabled":
            return
        if self.lock is None or self.lock.session != session:
            raise FmgError(-10147, "no write permission")

    def take_lock(self, user: str, session: str) -> None:
        """Lock for ``session``; -20055 is the lab's code for "held by another admin" (none is documented)."""
        if self.lock is not None and self.lock.session != session:
            raise FmgError(-20055, f"Workspace is locked by other user: {self.lock.user}")
        if self.lock is None:
            self.lock = _Lock(user, session, int(time.time()), snapshot=self._snapshot())

    def commit(self, session: str) -> None:
        self._own_lock(session)
        assert self.lock is not None
        self.lock.dirty = False
        self.lock.snapshot = self._snapshot()

    def release(self, session: str) -> None:
        """Unlock; changes made since the last commit are thrown away."""
        self._own_lock(session)
        assert self.lock is not None
        if self.lock.dirty:
            self._restore(self.lock.snapshot)
        self.lock = None

    def release_session(self, session: str) -> None:
        """A logged-out session gives its lock back (uncommitted changes are lost)."""
        if self.lock is not None and self.lock.session == session:
            self.release(session)

    def dirty(self) -> bool:
        return self.lock is not None and self.lock.dirty

    def _own_lock(self, session: str) -> None:
        if self.lock is None:
            raise FmgError(-10147, "the workspace is not locked")
        if self.lock.session != session:
            raise FmgError(-20055, f"Workspace is locked by other user: {self.lock.user}")

    def _touch(self) -> None:
        if self.lock is not None:
            self.lock.dirty = True

    def _snapshot(self) -> bytes:
        state = {
            "store": self.store.dump(reveal_secrets=True).decode(),
            "policies": {name: list(p.policies.values()) for name, p in self.packages.items()},
            "dynamic": self.dynamic,
            "device_db": self.device_db,
        }
        return json.dumps(state).encode()

    def _restore(self, snapshot: bytes) -> None:
        state = json.loads(snapshot)
        self.store.load(state["store"].encode())
        mkey = self.store.schema.spec(POLICY_PATH).mkey or "policyid"
        for name, policies in state["policies"].items():
            self.packages[name].policies = {p[mkey]: p for p in policies}
        self.dynamic = state["dynamic"]
        self.device_db = state["device_db"]

    # --- ADOM objects and policies ----------------------------------------------------

    def get(self, path: str, key: Any = None) -> Any:
        """Objects of a lab path in FortiManager's shape: one (``key``) or all."""
        spec = self.store.schema.spec(path)
        try:
            if key is not None:
                return fmg_shape(spec.fields, self.store.get(ADOM_NS, path, _key(spec.mkey_int, key)))
            return [fmg_shape(spec.fields, obj) for obj in self.store.members(ADOM_NS, path)]
        except CmdbError as exc:
            raise from_cmdb(exc) from None

    def write(self, method: str, path: str, key: Any, data: Any) -> Any:
        """``add`` / ``set`` / ``update`` / ``delete`` one ADOM object; returns its key."""
        spec = self.store.schema.spec(path)
        body = lab_shape(spec.fields, data) if isinstance(data, Mapping) else {}
        key = _key(spec.mkey_int, key) if key is not None else None
        deleting = method == "delete" and key is not None and path != POLICY_PATH
        if deleting and self.used_by_policies(path, key):
            raise FmgError(-10131, f"Object is used by other objects: {path} {key} is used by a policy")
        try:
            result = self._write(method, path, key, body)
        except CmdbError as exc:
            raise from_cmdb(exc) from None
        self._touch()
        return result

    def policy_get(self, package: str, key: Any = None) -> Any:
        """A package's policies in FortiManager's shape: one (``key``) or all."""
        with self.active(self.package(package)):
            return self.get(POLICY_PATH, key)

    def policy_write(self, package: str, method: str, key: Any, data: Any) -> Any:
        """``add`` / ``set`` / ``update`` / ``delete`` one policy of a package; returns its id."""
        with self.active(self.package(package)):
            return self.write(method, POLICY_PATH, key, data)

    def _write(self, method: str, path: str, key: Any, body: dict[str, Any]) -> Any:
        spec = self.store.schema.spec(path)
        assert spec.mkey is not None
        if method == "delete":
            if key is None:
                raise FmgError(-6, "Invalid url")
            self.store.delete(ADOM_NS, path, key)
            return key
        if key is not None:
            body.setdefault(spec.mkey, key)
        exists = body.get(spec.mkey) not in (None, "", 0) and self.store.exists(
            ADOM_NS, path, body[spec.mkey]
        )
        if method == "add" or (method == "set" and not exists):
            new_key, _ = self.store.create(ADOM_NS, path, body)
            return new_key
        if not exists:
            raise FmgError(-3, "Object does not exist")
        if method == "set":
            body = spec.apply(None, body)  # set replaces the object: what is not given is reset
            body.pop("uuid", None)
        new_key, _ = self.store.update(ADOM_NS, path, body[spec.mkey], body)
        return new_key

    # --- Dynamic Local Certificates ---------------------------------------------------

    def dynamic_get(self, name: str | None) -> Any:
        if name is None:
            return [copy.deepcopy(d) for d in self.dynamic.values()]
        if name not in self.dynamic:
            raise FmgError(-3, "Object does not exist")
        return copy.deepcopy(self.dynamic[name])

    def dynamic_write(self, method: str, name: str | None, data: Any) -> str:
        body = data if isinstance(data, Mapping) else {}
        name = name or str(body.get("name", ""))
        if not name:
            raise FmgError(-10, "The data is invalid for selected url: name is required")
        if method == "delete":
            self.dynamic_get(name)
            try:
                self.store.delete(ADOM_NS, CERT_PATH, name)
            except CmdbError as exc:
                raise from_cmdb(exc) from None
            del self.dynamic[name]
        elif method == "add" and name in self.dynamic:
            raise FmgError(-2, "Object already exists")
        elif method == "update" and name not in self.dynamic:
            raise FmgError(-3, "Object does not exist")
        else:
            mappings = _mappings(body.get("dynamic_mapping"))
            entry = self.dynamic.setdefault(name, {"name": name, "dynamic_mapping": None})
            if method == "set" or mappings:
                entry["dynamic_mapping"] = mappings or None
            if not self.store.exists(ADOM_NS, CERT_PATH, name):
                # The stub lets ADOM objects reference the dynamic certificate by name.
                self.store.seed(ADOM_NS, CERT_PATH, {"name": name, "source": "user"})
        self._touch()
        return name

    def dynamic_map(self, name: str, data: Any) -> None:
        """``add .../dynamic_mapping``: more per-device mappings, the existing ones kept."""
        entry = self.dynamic.get(name)
        if entry is None:
            raise FmgError(-3, "Object does not exist")
        kept = {(s["name"], s["vdom"]): m for m in entry["dynamic_mapping"] or [] for s in m["_scope"]}
        for mapping in _mappings(data if isinstance(data, list) else [data]):
            for scope in mapping["_scope"]:
                kept[(scope["name"], scope["vdom"])] = {
                    "_scope": [scope],
                    "local-cert": mapping["local-cert"],
                }
        entry["dynamic_mapping"] = list(kept.values())
        self._touch()

    def dynamic_unmap(self, name: str, device: str, vdom: str) -> None:
        """``delete .../dynamic_mapping/<device>/<vdom>``: one device's mapping goes, the others stay."""
        entry = self.dynamic.get(name)
        scope = {"name": device, "vdom": vdom}
        mappings = (entry or {}).get("dynamic_mapping") or []
        if entry is None or not any(scope in m["_scope"] for m in mappings):
            raise FmgError(-3, "Object does not exist")
        kept = [m for m in mappings if scope not in m["_scope"]]
        entry["dynamic_mapping"] = kept or None
        self._touch()

    def resolve_certificate(self, name: str, device: str, vdom: str) -> str:
        """The device DB certificate a dynamic certificate stands for on ``device``/``vdom``."""
        for mapping in (self.dynamic.get(name) or {}).get("dynamic_mapping") or []:
            if {"name": device, "vdom": vdom} in mapping["_scope"]:
                return str(mapping["local-cert"])
        return name

    # --- device DB certificates -------------------------------------------------------

    def certs(self, device: str, vdom: str) -> dict[str, dict[str, Any]]:
        try:
            return self.device_db[device][vdom]
        except KeyError:
            raise FmgError(-6, "Invalid url") from None

    def cert_get(self, device: str, vdom: str, name: str | None) -> Any:
        spec = self.store.schema.spec(CERT_PATH)
        certs = self.certs(device, vdom)
        if name is None:
            return [fmg_shape(spec.fields, c) for c in certs.values()]
        if name not in certs:
            raise FmgError(-3, "Object does not exist")
        return fmg_shape(spec.fields, certs[name])

    def cert_write(self, method: str, device: str, vdom: str, name: str | None, data: Any) -> str:
        certs = self.certs(device, vdom)
        spec = self.store.schema.spec(CERT_PATH)
        body = dict(data) if isinstance(data, Mapping) else {}
        name = name or str(body.get("name", ""))
        if method == "delete":
            if name not in certs:
                raise FmgError(-3, "Object does not exist")
            if certs[name].get("source") == "factory":
                raise FmgError(-11, "No permission for the resource")
            del certs[name]
            self._touch()
            return name
        if method == "add" and name in certs:
            raise FmgError(-2, "Object already exists")
        if method == "update" and name not in certs:
            raise FmgError(-3, "Object does not exist")
        body["name"] = name
        password = body.pop("password", None)
        if isinstance(password, list):
            password = password[0] if password else None
        if body.get("certificate") and body.get("private-key"):
            try:
                pair = load_key_pair(
                    str(body["certificate"]).encode(), str(body["private-key"]).encode(), password
                )
            except KeyMismatch:
                raise FmgError(
                    -10, "The data is invalid for selected url: certificate or key invalid"
                ) from None
            body |= {"certificate": pair.cert_pem, "private-key": pair.key_pem}
        try:
            current = certs.get(name) if method == "update" else None
            certs[name] = spec.apply(copy.deepcopy(current) if current else None, {**body, "source": "user"})
        except CmdbError as exc:
            raise from_cmdb(exc) from None
        self._touch()
        return name

    # --- revisions ----------------------------------------------------------------------

    def add_revision(self, *, name: str, desc: str, user: str) -> Revision:
        revision = Revision(len(self.revisions) + 1, name, desc, user, int(time.time()))
        self.revisions.append(revision)
        return revision

    def dump(self) -> dict[str, Any]:
        """Everything, secrets masked, stable for comparisons (the control API's ``state``)."""
        return {
            "adom": self.name,
            "packages": {
                name: {
                    "scope member": [{"name": d, "vdom": v} for d, v in p.targets],
                    "policies": list(p.policies.values()),
                }
                for name, p in self.packages.items()
            },
            "store": json.loads(self.store.dump()),
            "dynamic": self.dynamic,
            "device_db": {
                dev: {v: sorted(certs) for v, certs in vdoms.items()} for dev, vdoms in self.device_db.items()
            },
            "revisions": [r.to_fmg() for r in self.revisions],
            "lock": None if self.lock is None else {"user": self.lock.user, "dirty": self.lock.dirty},
        }


def _key(mkey_int: bool, key: Any) -> Any:
    if not mkey_int:
        return str(key)
    try:
        return int(key)
    except (TypeError, ValueError):
        raise FmgError(-3, "Object does not exist") from None


def _mappings(value: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in value or []:
        if not isinstance(item, Mapping):
            raise FmgError(-10, "The data is invalid for selected url: dynamic_mapping")
        scopes = item.get("_scope")
        scopes = [scopes] if isinstance(scopes, Mapping) else scopes or []
        clean = [{"name": str(s.get("name", "")), "vdom": str(s.get("vdom", "root"))} for s in scopes]
        local = item.get("local-cert")
        local = local[0] if isinstance(local, list) and local else local
        if not clean or not isinstance(local, str) or not local:
            raise FmgError(-10, "The data is invalid for selected url: _scope and local-cert are required")
        out.append({"_scope": clean, "local-cert": local})
    return out


def fmg_shape(fields: Mapping[str, Field], obj: Mapping[str, Any]) -> dict[str, Any]:
    """A stored lab object as FortiManager shows it: references as lists of names, secrets masked."""
    out: dict[str, Any] = {}
    for attr, value in obj.items():
        spec = fields.get(attr)
        out[attr] = value if spec is None else _fmg_value(spec, value)
    return out


def _fmg_value(spec: Field, value: Any) -> Any:
    if spec.kind == "names":
        return [item["name"] for item in value]
    if spec.kind == "ref":
        return [value] if value else []
    if spec.kind == "secret":
        return ["ENC", "*" * 8] if value else []
    if spec.kind == "container" and isinstance(value, Mapping):
        return fmg_shape(spec.fields, value)
    if spec.kind == "table" and isinstance(value, list):
        return [fmg_shape(spec.fields, row) for row in value]
    return value


def lab_shape(fields: Mapping[str, Field], body: Mapping[str, Any]) -> dict[str, Any]:
    """A FortiManager-shaped write body in the form the lab's schema checks (refs as names again)."""
    out: dict[str, Any] = {}
    for attr, value in body.items():
        spec = fields.get(str(attr))
        out[str(attr)] = value if spec is None else _lab_value(spec, value)
    return out


def _lab_value(spec: Field, value: Any) -> Any:
    if spec.kind == "ref" and isinstance(value, list):
        return str(value[0]) if value else ""
    if spec.kind == "names" and isinstance(value, list):
        return [v if isinstance(v, Mapping) else {"name": str(v)} for v in value]
    if spec.kind == "container" and isinstance(value, Mapping):
        return lab_shape(spec.fields, value)
    if spec.kind == "table" and isinstance(value, list):
        return [lab_shape(spec.fields, row) if isinstance(row, Mapping) else row for row in value]
    return value
