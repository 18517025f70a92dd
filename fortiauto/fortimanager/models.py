"""What FortiManager reports, as typed records: managed devices, tasks, ADOM revisions, the workspace lock.

The client reads ``/dvmdb/adom/<adom>/device``, ``/task/task/<id>``, ``/dvmdb/adom/<adom>/revision``
and ``/dvmdb/adom/<adom>/workspace/lockinfo`` and builds these with the ``from_fmg`` parsers here;
the inventory command and the engine read only these. FortiManager answers with symbolic values
when asked ``verbose: 1`` and with enum numbers otherwise; both are accepted. Field names and enum
values: FortiManager JSON API docs, "Device Management" (``conn_status`` 0/1/2 unknown/up/down,
``conf_status`` 0/1/2 unknown/insync/outofsync, ``ha_mode`` "AP", ``ha_slave`` members with ``role``),
"Policy Package Management" (task ``state``, ``percent``, ``num_err``, ``line``) and
"ADOM Management" (revision ``version``, ``name``, ``created_by``; ``lockinfo`` ``lock_user``). No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HaMember", "LockInfo", "ManagedDevice", "Revision", "Task"]

_CONN = {0: "unknown", 1: "up", 2: "down"}
_CONF = {0: "unknown", 1: "insync", 2: "outofsync"}
_HA_MODES = {0: "standalone", 1: "a-p", 2: "a-a"}
_HA_NAMES = {"standalone": "standalone", "ap": "a-p", "a-p": "a-p", "aa": "a-a", "a-a": "a-a"}
# Task states by number (the docs' task history shows 0 pending, 1 running, 4 done at 100%).
_TASK_STATES = {
    0: "pending",
    1: "running",
    2: "cancelling",
    3: "cancelled",
    4: "done",
    5: "error",
    6: "aborting",
    7: "aborted",
    8: "warning",
}
_TASK_ENDED = frozenset({"done", "error", "cancelled", "aborted", "warning"})


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _symbol(value: Any, table: Mapping[int, str]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return table.get(value, "unknown")
    text = str(value or "").strip().lower().replace(" ", "")
    return text or "unknown"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class HaMember:
    """One member of a managed HA cluster (``ha_slave``)."""

    name: str
    serial: str
    role: str  # "primary" | "secondary"
    priority: int

    @classmethod
    def from_fmg(cls, raw: Mapping[str, Any]) -> HaMember:
        role = str(raw.get("role", "")).lower()
        return cls(
            name=_text(raw.get("name")),
            serial=_text(raw.get("sn")),
            role="primary" if role in ("master", "primary") else "secondary",
            priority=_int(raw.get("prio")),
        )


@dataclass(frozen=True)
class ManagedDevice:
    """A FortiGate in FortiManager's device database."""

    name: str
    hostname: str
    serial: str
    model: str
    version: str  # "7.0.15"
    build: int
    ip: str
    ha_mode: str  # "standalone" | "a-p" | "a-a"
    ha_members: tuple[HaMember, ...]
    conn_status: str  # "up" | "down" | "unknown"
    conf_status: str  # "insync" | "outofsync" | "unknown"
    db_status: str  # "nomod" (device DB matches the device) | "mod" | ...
    vdoms: tuple[str, ...]
    packages: Mapping[str, str]  # vdom -> assigned policy package

    @property
    def in_sync(self) -> bool:
        return self.conf_status == "insync"

    @classmethod
    def from_fmg(cls, raw: Mapping[str, Any]) -> ManagedDevice:
        vdoms = [v for v in raw.get("vdom") or [] if isinstance(v, Mapping)]
        members = tuple(HaMember.from_fmg(m) for m in raw.get("ha_slave") or [] if isinstance(m, Mapping))
        ha_raw = raw.get("ha_mode", 0)
        if isinstance(ha_raw, int) and not isinstance(ha_raw, bool):
            ha_mode = _HA_MODES.get(ha_raw, "unknown")
        else:
            ha_mode = _HA_NAMES.get(str(ha_raw).lower(), str(ha_raw).lower() or "standalone")
        return cls(
            name=_text(raw.get("name")),
            hostname=_text(raw.get("hostname")),
            serial=_text(raw.get("sn")),
            model=_text(raw.get("platform_str")),
            version=_version(raw),
            build=_int(raw.get("build")),
            ip=_text(raw.get("ip")),
            ha_mode=ha_mode,
            ha_members=members,
            conn_status=_symbol(raw.get("conn_status"), _CONN),
            conf_status=_symbol(raw.get("conf_status"), _CONF),
            db_status=_symbol(raw.get("db_status"), {0: "unknown", 1: "nomod", 2: "mod"}),
            vdoms=tuple(_text(v.get("name")) for v in vdoms),
            packages={_text(v.get("name")): pkg for v in vdoms if (pkg := _assigned_package(v))},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hostname": self.hostname,
            "serial": self.serial,
            "model": self.model,
            "version": self.version,
            "build": self.build,
            "ip": self.ip,
            "ha": {"mode": self.ha_mode, "members": [vars(m) for m in self.ha_members]},
            "conn_status": self.conn_status,
            "conf_status": self.conf_status,
            "db_status": self.db_status,
            "vdoms": list(self.vdoms),
            "packages": dict(self.packages),
        }


def _version(raw: Mapping[str, Any]) -> str:
    os_ver = raw.get("os_ver")
    # Without verbose: os_ver 7, mr 0, patch 15; some builds send os_ver as "7.0".
    major = _int(str(os_ver).split(".")[0], -1) if os_ver is not None else -1
    if major < 0:
        return ""
    minor, patch = _int(raw.get("mr")), _int(raw.get("patch"), -1)
    return f"{major}.{minor}.{patch}" if patch >= 0 else f"{major}.{minor}"


def _assigned_package(vdom: Mapping[str, Any]) -> str:
    for item in vdom.get("assignment info") or []:
        if isinstance(item, Mapping) and item.get("type") == "policy":
            return _text(item.get("name"))
    return ""


@dataclass(frozen=True)
class Task:
    """A FortiManager task (install, preview ...) as last read."""

    id: int
    state: str
    percent: int
    num_err: int
    num_warn: int
    title: str
    lines: tuple[str, ...]  # "<name>: <detail>" per task line, errors included

    @property
    def ended(self) -> bool:
        return self.state in _TASK_ENDED or self.percent >= 100

    @property
    def succeeded(self) -> bool:
        return self.ended and self.state == "done" and self.num_err == 0

    @classmethod
    def from_fmg(cls, raw: Mapping[str, Any], task_id: int) -> Task:
        lines = []
        for line in raw.get("line") or []:
            if isinstance(line, Mapping):
                lines.append(f"{_text(line.get('name'))}: {_text(line.get('detail'))}".strip(": "))
        return cls(
            id=_int(raw.get("id"), task_id) or task_id,
            state=_symbol(raw.get("state"), _TASK_STATES),
            percent=_int(raw.get("percent")),
            num_err=_int(raw.get("num_err")),
            num_warn=_int(raw.get("num_warn")),
            title=_text(raw.get("title")),
            lines=tuple(lines),
        )


@dataclass(frozen=True)
class Revision:
    """One ADOM revision (``/dvmdb/adom/<adom>/revision``)."""

    version: int
    name: str
    description: str
    created_by: str
    created_time: int

    @classmethod
    def from_fmg(cls, raw: Mapping[str, Any]) -> Revision:
        return cls(
            version=_int(raw.get("version")),
            name=_text(raw.get("name")),
            description=_text(raw.get("desc")),
            created_by=_text(raw.get("created_by")),
            created_time=_int(raw.get("created_time")),
        )


@dataclass(frozen=True)
class LockInfo:
    """Who holds the ADOM workspace lock (``lockinfo``), and whether the workspace has unsaved changes."""

    user: str
    session: int
    since: int
    dirty: bool

    @classmethod
    def from_fmg(cls, raw: Mapping[str, Any]) -> LockInfo:
        return cls(
            user=_text(raw.get("lock_user")),
            session=_int(raw.get("lock_sid")),
            since=_int(raw.get("lock_time")),
            dirty=bool(_int(raw.get("adom_dirty")) or _int(raw.get("dirty"))),
        )
