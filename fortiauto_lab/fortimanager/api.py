"""The mock FortiManager's JSON-RPC API: sessions, API key, and one handler per url family.

``app.py`` hands every ``POST /jsonrpc`` body here. ``FortiManagerMock.call`` authenticates
(``exec sys/login/user`` sessions, or ``Authorization: Bearer`` with the API key), answers
each entry of ``params`` with ``{status: {code, message}, url, data?}`` and counts it. Urls are
matched with or without their leading and trailing slash, as pyfmg sends both
(``sys/login/user``, ``/dvmdb/adom/<adom>/workspace/lock/``). Values come back as with
``verbose: 1`` (names, not enum numbers), except the device list's status fields, which
follow the flag.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from fortiauto_lab.fortimanager.db import ADOM_NS, OBJECT_PATHS, AdomDB, FmgError
from fortiauto_lab.fortimanager.faults import FmgFaults
from fortiauto_lab.fortimanager.install import (
    InstallAborted,
    apply_steps,
    managed_paths,
    plan_install,
    preview_cli,
)
from fortiauto_lab.fortimanager.tasks import TaskBoard
from fortiauto_lab.store import ConfigStore

__all__ = ["PACKAGE_LAYOUTS", "SERIAL", "FortiManagerMock", "ManagedUnit", "package_names"]

# The serial the lab devices' central-management config names (fortiauto_lab/device.py).
SERIAL = "FMG-VM0000000001"
VERSION = "v7.4.5-build2662 241105 (GA)"
_OTHER_ADMIN_SESSION = "lab-fault:other-admin"
_MAX_LOG = 10_000
_READ_ONLY = frozenset({"get"})
_DYNAMIC_MAP = re.compile(
    r"^dynamic/certificate/local/(?P<name>[^/]+)/dynamic_mapping(?:/(?P<device>[^/]+)/(?P<vdom>[^/]+))?$"
)


class ManagedUnit(Protocol):
    """What the mock needs of a lab device (``fortiauto_lab.device.LabDevice``)."""

    name: str
    serial: str
    store: ConfigStore
    build: int

    @property
    def ha_role(self) -> str | None: ...

    def ha_members(self) -> list[dict[str, Any]]: ...


@dataclass
class _Caller:
    user: str
    session: str  # the lock owner key: a session id, or one key for all API-key calls


@dataclass
class _Requests:
    total: int = 0
    writes: int = 0
    installs: int = 0
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_MAX_LOG))

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "writes": self.writes, "installs": self.installs, "log": list(self.log)}


def _norm(url: Any) -> str:
    return str(url or "").strip().strip("/")


def _unescape(name: str) -> str:
    return name.replace("\\/", "/")


def _split_name(rest: str) -> list[str]:
    """Split a url tail on ``/`` but not on ``\\/`` (an escaped slash inside a name)."""
    return [_unescape(p) for p in re.split(r"(?<!\\)/", rest) if p]


PACKAGE_LAYOUTS = ("per-device", "shared")


def package_names(
    devices: Sequence[str], *, package: str = "mail-edge", layout: str = "per-device"
) -> dict[str, str]:
    """Each device's policy package: ``<package>-<device>`` (``per-device``), or ``<package>`` for all."""
    if layout not in PACKAGE_LAYOUTS:
        raise ValueError(f"package layout must be one of {', '.join(PACKAGE_LAYOUTS)}, not {layout!r}")
    return {name: package if layout == "shared" else f"{package}-{name}" for name in devices}


class FortiManagerMock:
    """One mock FortiManager managing lab devices in one ADOM: a policy package per device, or one shared."""

    def __init__(
        self,
        devices: Sequence[ManagedUnit],
        *,
        adom: str = "root",
        package: str = "mail-edge",
        packages: str = "per-device",
        vdom: str = ADOM_NS,
        username: str = "fortiauto",
        workspace_mode: str = "normal",
        faults: FmgFaults | None = None,
    ) -> None:
        if not devices:
            raise ValueError("a FortiManager needs at least one device to manage")
        self.devices = {d.name: d for d in devices}
        self.adom_name = adom
        self._package = package
        self.package_layout = packages
        self.assignment = package_names(list(self.devices), package=package, layout=packages)
        self.vdom = vdom
        self.username = username
        self.password = secrets.token_hex(12)
        self.token = secrets.token_hex(16)
        self.api_user = f"{username}-api"
        self.requests = _Requests()
        self._workspace_mode = workspace_mode
        self._sessions: dict[str, str] = {}
        self._initial_faults = faults or FmgFaults()
        self.reset()

    # --- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Import the devices afresh (their configuration now): ADOM, device DBs, tasks, logs, faults."""
        stores = {name: d.store for name, d in self.devices.items()}
        self.adom = AdomDB.imported(self.adom_name, self.assignment, stores, vdom=self.vdom)
        self.adom.workspace_mode = self._workspace_mode
        self.imported = {name: frozenset(_imported(store, self.vdom)) for name, store in stores.items()}
        self.known = {name: set(found) for name, found in self.imported.items()}
        self.synced = {name: store.revision for name, store in stores.items()}
        self.tasks = TaskBoard()
        self.requests = _Requests()
        self._sessions.clear()
        self._previewing: tuple[str | None, str | None] = (None, None)
        self.faults = FmgFaults()
        self.set_faults(self._initial_faults)

    def use_packages(self, layout: str) -> None:
        """Re-import the devices with another package layout (``per-device`` or ``shared``)."""
        self.assignment = package_names(list(self.devices), package=self._package, layout=layout)
        self.package_layout = layout
        self.reset()

    def set_faults(self, faults: FmgFaults) -> None:
        """Replace the faults; a ``lock-held-by`` fault takes (or gives back) the other admin's lock."""
        self.faults = faults
        lock = self.adom.lock
        if lock is not None and lock.session == _OTHER_ADMIN_SESSION and lock.user != faults.lock_held_by:
            self.adom.lock = None
        if faults.lock_held_by and self.adom.lock is None:
            self.adom.take_lock(faults.lock_held_by, _OTHER_ADMIN_SESSION)

    def dump(self) -> dict[str, Any]:
        return self.adom.dump()

    # --- the JSON-RPC entry -----------------------------------------------------------

    def call(self, body: Any, *, bearer: str | None) -> dict[str, Any]:
        """Answer one JSON-RPC request body."""
        if not isinstance(body, Mapping) or not isinstance(body.get("params"), list) or not body["params"]:
            return {"id": None, "result": [_status({}, -9, "Invalid request")]}
        method = str(body.get("method", ""))
        verbose = body.get("verbose") in (1, True, "1")
        caller = self._caller(bearer, body.get("session"))
        out: dict[str, Any] = {"id": body.get("id"), "result": []}
        for entry in body["params"]:
            param = entry if isinstance(entry, Mapping) else {}
            url = _norm(param.get("url"))
            result, session = self._one(method, url, param, caller, verbose)
            out["result"].append(result)
            if session is not None:
                out["session"] = session
        return out

    def _caller(self, bearer: str | None, session: Any) -> _Caller | None:
        if bearer is not None:
            if secrets.compare_digest(bearer.encode(), self.token.encode()):
                return _Caller(
                    self.api_user, "apikey:" + hashlib.sha256(self.token.encode()).hexdigest()[:12]
                )
            return None
        if isinstance(session, str) and session in self._sessions:
            return _Caller(self._sessions[session], session)
        return None

    def _one(
        self, method: str, url: str, param: Mapping[str, Any], caller: _Caller | None, verbose: bool
    ) -> tuple[dict[str, Any], str | None]:
        started = time.monotonic()
        session = None
        try:
            if url == "sys/login/user" and method == "exec":
                session = self._login(param.get("data"))
                data: Any = None
            elif caller is None:
                raise FmgError(-11, "No permission for the resource")
            else:
                data = self._route(method, url, param, caller, verbose)
            result = _status(param, 0, "OK", data)
        except FmgError as err:
            result = _status(param, err.code, err.message)
        self._count(method, url, result["status"]["code"], started)
        return result, session

    def _count(self, method: str, url: str, code: int, started: float) -> None:
        if url in ("sys/login/user", "sys/logout"):
            return
        self.requests.total += 1
        self.requests.writes += int(method not in _READ_ONLY)
        self.requests.log.append({"t": started, "method": method, "url": "/" + url, "code": code})

    def _login(self, data: Any) -> str:
        creds = data[0] if isinstance(data, list) and data else data
        creds = creds if isinstance(creds, Mapping) else {}
        user, passwd = str(creds.get("user", "")), str(creds.get("passwd", ""))
        good = secrets.compare_digest(user.encode(), self.username.encode()) and secrets.compare_digest(
            passwd.encode(), self.password.encode()
        )
        if not good:
            # -22 "Login fail" is the lab's answer; the docs show -11 for a user without rpc-permit.
            raise FmgError(-22, "Login fail")
        session = secrets.token_urlsafe(48)
        self._sessions[session] = user
        return session

    # --- routing --------------------------------------------------------------------------

    def _route(self, method: str, url: str, param: Mapping[str, Any], caller: _Caller, verbose: bool) -> Any:
        for pattern, handler in self._routes():
            match = re.fullmatch(pattern, url)
            if match:
                return handler(method, match.groupdict(), param, caller, verbose)
        raise FmgError(-6, "Invalid url")

    def _routes(self) -> list[tuple[str, Callable[..., Any]]]:
        return [
            (r"sys/logout", self._logout),
            (r"sys/status", self._status),
            (r"cli/global/system/global", self._system_global),
            (r"dvmdb/adom", self._adoms),
            (r"dvmdb/adom/(?P<adom>[^/]+)", self._adoms),
            (r"dvmdb/(?:adom/(?P<adom>[^/]+)/)?device(?:/(?P<name>[^/]+))?", self._device_list),
            (r"dvmdb/adom/(?P<adom>[^/]+)/revision", self._revisions),
            (
                r"dvmdb/adom/(?P<adom>[^/]+)/workspace/(?P<action>lock|commit|unlock|lockinfo|dirty)",
                self._workspace,
            ),
            (r"pm/pkg/adom/(?P<adom>[^/]+)(?:/(?P<name>[^/]+))?", self._packages),
            (r"pm/config/adom/(?P<adom>[^/]+)/obj/(?P<rest>.+)", self._objects),
            (
                r"pm/config/adom/(?P<adom>[^/]+)/pkg/(?P<pkg>[^/]+)/firewall/policy(?:/(?P<id>[^/]+))?",
                self._policies,
            ),
            (
                r"pm/config/device/(?P<device>[^/]+)/vdom/(?P<vdom>[^/]+)/vpn/certificate/local(?:/(?P<name>.+))?",
                self._device_certs,
            ),
            (r"securityconsole/install/package", self._install),
            (r"securityconsole/install/preview", self._preview),
            (r"securityconsole/preview/result", self._preview_result),
            (r"securityconsole/package/cancel/install", self._cancel),
            (r"task/task/(?P<id>\d+)", self._task),
        ]

    def _adom(self, name: str | None) -> AdomDB:
        if name is not None and name != self.adom_name:
            raise FmgError(-6, "Invalid url")
        return self.adom

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise FmgError(-6, "Invalid url")

    # --- system -------------------------------------------------------------------------

    def _logout(self, method: str, _: dict[str, str], __: Any, caller: _Caller, ___: bool) -> None:
        self._only(method, "exec")
        self.adom.release_session(caller.session)
        self._sessions.pop(caller.session, None)

    def _status(self, method: str, *_: Any) -> dict[str, Any]:
        self._only(method, "get")
        return {
            "Version": VERSION,
            "Serial Number": SERIAL,
            "Hostname": "fortimanager-lab",
            "Platform Type": "FMG-VM64",
            "Admin Domain Configuration": "Enabled",
        }

    def _system_global(self, method: str, _: Any, param: Mapping[str, Any], *__: Any) -> dict[str, Any]:
        self._only(method, "get")
        data = {
            "workspace-mode": self.adom.workspace_mode,
            "adom-status": "enable",
            "hostname": "fortimanager-lab",
        }
        fields = param.get("fields")
        return {k: v for k, v in data.items() if k in fields} if isinstance(fields, list) else data

    def _adoms(self, method: str, groups: dict[str, str], *_: Any) -> Any:
        self._only(method, "get")
        adom = {"name": self.adom_name, "desc": "fortiauto lab", "os_ver": "7.0", "state": 1}
        if groups.get("adom") is not None:
            self._adom(groups["adom"])
            return adom
        return [adom]

    def _device_list(self, method: str, groups: dict[str, str], _: Any, __: Any, verbose: bool) -> Any:
        self._only(method, "get")
        self._adom(groups.get("adom"))
        name = groups.get("name")
        if name is not None:
            if _unescape(name) not in self.devices:
                raise FmgError(-3, "Object does not exist")
            return self._device_row(self.devices[_unescape(name)], verbose)
        return [self._device_row(d, verbose) for d in self.devices.values()]

    def _device_row(self, device: ManagedUnit, verbose: bool) -> dict[str, Any]:
        conf, db = self.sync_status(device.name)
        version = getattr(device, "version", None)
        model = getattr(getattr(device, "model", None), "name", "FortiGate-VM64")
        role = device.ha_role
        members = (
            [
                {
                    "name": m["hostname"],
                    "sn": m["serial_no"],
                    "prio": m["priority"],
                    "role": "master" if m["primary"] else "slave",
                }
                for m in device.ha_members()
            ]
            if role
            else []
        )
        vdoms = [self._vdom_row(device.name, v) for v in device.store.vdoms]
        return {
            "name": device.name,
            "hostname": device.name,
            "sn": device.serial,
            "platform_str": model,
            "os_ver": getattr(version, "major", 7),
            "mr": getattr(version, "minor", 0),
            "patch": getattr(version, "patch", 0),
            "build": device.build,
            "ip": "127.0.0.1",
            "mgmt_mode": "fmg" if verbose else 1,
            "conn_status": "up" if verbose else 1,
            "conf_status": conf if verbose else {"insync": 1, "outofsync": 2}[conf],
            "db_status": db if verbose else {"nomod": 1, "mod": 2}[db],
            "ha_mode": ("AP" if role else "standalone") if verbose else int(bool(role)),
            "ha_slave": members or None,
            "vdom": vdoms,
            "extra info": {"adom": self.adom_name},
        }

    def _vdom_row(self, device: str, vdom: str) -> dict[str, Any]:
        package = self.adom.package_of(device, vdom)
        if package is None:
            return {"name": vdom}
        return {
            "name": vdom,
            "assignment info": [{"name": package.name, "type": "policy", "status": "installed"}],
        }

    def sync_status(self, name: str) -> tuple[str, str]:
        """(conf_status, db_status): changed on the device since FortiManager's last look, or pending here."""
        device = self.devices[name]
        if device.store.revision != self.synced[name]:
            return "outofsync", "nomod"
        pending = self._steps(name, self.vdom)
        return "insync", "mod" if pending else "nomod"

    def _revisions(self, method: str, groups: dict[str, str], *_: Any) -> Any:
        self._only(method, "get")
        return [r.to_fmg() for r in self._adom(groups["adom"]).revisions]

    def _workspace(self, method: str, groups: dict[str, str], _: Any, caller: _Caller, __: bool) -> Any:
        adom = self._adom(groups["adom"])
        action = groups["action"]
        if action == "lockinfo":
            self._only(method, "get")
            lock = adom.lock
            if lock is None:
                return None
            return [
                {
                    "lock_user": lock.user,
                    "lock_sid": abs(hash(lock.session)) % 100000,
                    "lock_time": lock.since,
                    "adom_dirty": int(lock.dirty),
                    "dirty": int(lock.dirty),
                    "type": 1,
                }
            ]
        if action == "dirty":
            self._only(method, "get")
            return {"dirty": int(adom.dirty())}
        self._only(method, "exec")
        if adom.workspace_mode == "disabled":
            raise FmgError(-6, "Invalid url")
        {
            "lock": lambda: adom.take_lock(caller.user, caller.session),
            "commit": lambda: adom.commit(caller.session),
            "unlock": lambda: adom.release(caller.session),
        }[action]()
        return None

    def _steps(self, device: str, vdom: str) -> list[Any]:
        unit = self.devices[device]
        return plan_install(
            self.adom, device, unit.store, vdom, self.known[device], imported=self.imported[device]
        )

    def _packages(self, method: str, groups: dict[str, str], *_: Any) -> Any:
        self._only(method, "get")
        adom = self._adom(groups["adom"])
        rows = [
            {
                "name": package.name,
                "type": "pkg",
                "scope member": [{"name": d, "vdom": v} for d, v in package.targets],
                "oid": oid,
            }
            for oid, package in enumerate(adom.packages.values(), start=1)
        ]
        if groups.get("name") is not None:
            found = next((row for row in rows if row["name"] == _unescape(groups["name"])), None)
            if found is None:
                raise FmgError(-3, "Object does not exist")
            return found
        return rows

    # --- objects, policies, certificates ----------------------------------------------

    def _objects(
        self, method: str, groups: dict[str, str], param: Mapping[str, Any], caller: _Caller, _: bool
    ) -> Any:
        adom = self._adom(groups["adom"])
        rest = groups["rest"]
        if method != "get":
            adom.check_write(caller.session)
        mapping = _DYNAMIC_MAP.fullmatch(rest)
        if mapping and mapping["device"] is not None:
            self._only(method, "delete")
            adom.dynamic_unmap(_unescape(mapping["name"]), _unescape(mapping["device"]), mapping["vdom"])
            return None
        if mapping:
            self._only(method, "add", "set")
            adom.dynamic_map(_unescape(mapping["name"]), param.get("data"))
            return None
        if rest == "dynamic/certificate/local" or rest.startswith("dynamic/certificate/local/"):
            parts = _split_name(rest[len("dynamic/certificate/local") :])
            name = parts[0] if parts else None
            if method == "get":
                return adom.dynamic_get(name)
            return {"name": adom.dynamic_write(method, name, param.get("data"))}
        path, key = self._object_path(rest)
        if method == "get":
            return _select(adom.get(path, key), param)
        return {"name": adom.write(method, path, key, param.get("data"))}

    @staticmethod
    def _object_path(rest: str) -> tuple[str, str | None]:
        for fmg_path, lab_path in OBJECT_PATHS.items():
            if rest == fmg_path:
                return lab_path, None
            if rest.startswith(fmg_path + "/"):
                parts = _split_name(rest[len(fmg_path) + 1 :])
                if len(parts) == 1:
                    return lab_path, parts[0]
        raise FmgError(-6, "Invalid url")

    def _policies(
        self, method: str, groups: dict[str, str], param: Mapping[str, Any], caller: _Caller, _: bool
    ) -> Any:
        adom = self._adom(groups["adom"])
        package = _unescape(groups["pkg"])
        if package not in adom.packages:
            raise FmgError(-6, "Invalid url")
        if method == "get":
            return _select(adom.policy_get(package, groups.get("id")), param)
        adom.check_write(caller.session)
        return {"policyid": adom.policy_write(package, method, groups.get("id"), param.get("data"))}

    def _device_certs(
        self, method: str, groups: dict[str, str], param: Mapping[str, Any], caller: _Caller, _: bool
    ) -> Any:
        device, vdom = _unescape(groups["device"]), groups["vdom"]
        name = _unescape(groups["name"]) if groups.get("name") else None
        if method == "get":
            return self.adom.cert_get(device, vdom, name)
        self.adom.check_write(caller.session)
        return {"name": self.adom.cert_write(method, device, vdom, name, param.get("data"))}

    # --- install ----------------------------------------------------------------------

    def _scope(self, data: Mapping[str, Any], package: str | None = None) -> tuple[str, str]:
        scope = data.get("scope")
        scope = scope if isinstance(scope, list) else []
        if len(scope) != 1 or not isinstance(scope[0], Mapping):
            raise FmgError(
                -10, "The data is invalid for selected url: the lab installs to one device per call"
            )
        device, vdom = str(scope[0].get("name", "")), str(scope[0].get("vdom", self.vdom))
        found = self.adom.package_of(device, vdom)
        if found is None or (package is not None and found.name != package):
            raise FmgError(
                -10, f"The data is invalid for selected url: {device}/{vdom} is not an installation target"
            )
        return device, vdom

    def _install(self, method: str, _: Any, param: Mapping[str, Any], caller: _Caller, __: bool) -> Any:
        self._only(method, "exec")
        data = _data(param)
        self._adom(str(data.get("adom", self.adom_name)))
        package = str(data.get("pkg", ""))
        if package not in self.adom.packages:
            raise FmgError(-10, "The data is invalid for selected url: no such policy package")
        device, vdom = self._scope(data, package)
        flags = data.get("flags") or []
        if "preview" in (flags if isinstance(flags, list) else [flags]):
            self._previewing = (device, vdom)
            return {
                "task": self.tasks.add(
                    title="install preview", user=caller.user, device=device, detail="preview ready"
                ).id
            }
        if self.adom.workspace_mode != "disabled":
            lock = self.adom.lock
            if lock is None or lock.session != caller.session:
                raise FmgError(-10147, "no write permission: lock the ADOM workspace before installing")
            if lock.dirty:
                # The lab's strictness: an install sends saved changes only, so commit first.
                raise FmgError(-10, "The data is invalid for selected url: the workspace has unsaved changes")
        self.requests.installs += 1
        return {
            "task": self._run_install(
                package, device, vdom, caller.user, str(data.get("dev_rev_comments", ""))
            ).id
        }

    def _run_install(self, package: str, device: str, vdom: str, user: str, comment: str) -> Any:
        title = f"install policy package {package} to {device}"
        if self.faults.task_stuck:
            return self.tasks.add(title=title, user=user, device=device, stuck=True)
        unit = self.devices[device]
        steps = self._steps(device, vdom)
        try:
            done = apply_steps(unit.store, vdom, steps, fail_after=self.faults.install_fail_after)
        except InstallAborted as aborted:
            self._learn(device, steps[: aborted.done])
            return self.tasks.add(
                title=title, user=user, device=device, ok=False, detail=f"install failed: {aborted.reason}"
            )
        self._learn(device, done)
        self.synced[device] = unit.store.revision
        if done:
            desc = f"Copy to devices SUCCESS on {time.strftime('%a %b %d %H:%M:%S %Y')}\n{comment}".rstrip()
            self.adom.add_revision(name=f"{package}-{device}", desc=desc, user=user)
        return self.tasks.add(
            title=title, user=user, device=device, detail=f"install and save finished ({len(done)} change(s))"
        )

    def _learn(self, device: str, done: Sequence[Any]) -> None:
        for step in done:
            if step.action == "delete":
                self.known[device].discard((step.path, step.key))
            else:
                self.known[device].add((step.path, step.key))
        self.synced[device] = self.devices[device].store.revision

    def _preview(self, method: str, _: Any, param: Mapping[str, Any], caller: _Caller, __: bool) -> Any:
        self._only(method, "exec")
        data = _data(param)
        device = str(data.get("device", ""))
        if self._previewing[0] != device:
            raise FmgError(
                -10, "The data is invalid for selected url: start an install with the preview flag first"
            )
        return {
            "task": self.tasks.add(
                title="install device preview", user=caller.user, device=device, detail="preview done"
            ).id
        }

    def _preview_result(self, method: str, _: Any, param: Mapping[str, Any], *__: Any) -> Any:
        self._only(method, "exec")
        data = _data(param)
        device, vdom = self._scope(data)
        unit = self.devices[device]
        text = "=== Preview result ===\n" + preview_cli(unit.store, self._steps(device, vdom))
        return {"message": json.dumps([{"name": device, "oid": 1, "result": text}])}

    def _cancel(self, method: str, *_: Any) -> None:
        self._only(method, "exec")
        self._previewing = (None, None)

    def _task(self, method: str, groups: dict[str, str], *_: Any) -> Any:
        self._only(method, "get")
        task = self.tasks.tasks.get(int(groups["id"]))
        if task is None:
            raise FmgError(-3, "Object does not exist")
        return task.frame()


def _matches(row: Mapping[str, Any], condition: Sequence[Any]) -> bool:
    """One FortiManager filter ``[attr, op, value...]`` (JSON API docs, Objects: ``==``, ``contain``, ``&&``).

    The lab knows ``==``, ``!=``, ``contain``, ``in`` and ``like`` (``%`` as wildcard).
    """
    if len(condition) < 3 or not isinstance(condition[0], str):
        raise FmgError(-10, "The data is invalid for selected url: bad filter")
    attr, op, values = condition[0], condition[1], list(condition[2:])
    got = row.get(attr)
    seen = [str(v) for v in got] if isinstance(got, list) else [str(got)]
    if op in ("==", "contain"):
        return str(values[0]) in seen
    if op == "!=":
        return str(values[0]) not in seen
    if op == "in":
        return any(str(v) in seen for v in values)
    if op == "like":
        pattern = re.escape(str(values[0])).replace("%", ".*")
        return any(re.fullmatch(pattern, v) for v in seen)
    raise FmgError(-10, f"The data is invalid for selected url: filter operator {op!r}")


def _passes(row: Mapping[str, Any], expr: Sequence[Any]) -> bool:
    # [cond] or [cond, "&&"|"||", cond, ...], conditions themselves lists.
    if not expr or not isinstance(expr[0], list):
        return _matches(row, expr)
    result = _passes(row, expr[0])
    for op, right in zip(expr[1::2], expr[2::2], strict=False):
        result = (result and _passes(row, right)) if op == "&&" else (result or _passes(row, right))
    return result


def _select(data: Any, param: Mapping[str, Any]) -> Any:
    """A get's ``filter`` and ``fields`` applied to a table read (an object read is left whole)."""
    if not isinstance(data, list):
        return data
    expr, fields = param.get("filter"), param.get("fields")
    if isinstance(expr, list) and expr:
        data = [row for row in data if _passes(row, expr)]
    if isinstance(fields, list) and fields:
        keep = {str(f) for f in fields} | {"name", "policyid"}
        data = [{k: v for k, v in row.items() if k in keep} for row in data]
    return data


def _data(param: Mapping[str, Any]) -> Mapping[str, Any]:
    data = param.get("data")
    return data if isinstance(data, Mapping) else {}


def _status(param: Mapping[str, Any], code: int, message: str, data: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {"status": {"code": code, "message": message}, "url": param.get("url", "")}
    if data is not None:
        result["data"] = data
    return result


def _imported(store: ConfigStore, vdom: str) -> set[tuple[str, Any]]:
    """What FortiManager took over from a device at import: every object of the tables it installs."""
    out: set[tuple[str, Any]] = set()
    for path in managed_paths():
        spec = store.schema.spec(path)
        out |= {(path, obj[spec.mkey or "name"]) for obj in store.members(vdom, path)}
    return out


def with_faults(mock: FortiManagerMock, **changes: Any) -> None:
    """Change some faults, keep the others (tests)."""
    mock.set_faults(replace(mock.faults, **changes))
