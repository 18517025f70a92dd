"""Pre-flight: what the device's state says about changing it, learned before any write.

Second step of a device's transaction (engine: system status -> **pre-flight** -> baseline
probe -> plan -> apply -> probe -> commit | rollback). Three real-world states make a change
wrong even when the plan is right: FortiManager owns the configuration (a local change shows
there as a conflict, and its next install overwrites it), the API answers from an HA secondary
(configuration belongs on the primary), or the token's access profile cannot write the tables
the plan touches (the first write would fail half-way). One request answers all three:
``GET monitor/web-ui/state`` carries the calling admin's access profile, ``centrally_managed``,
``ha_mode`` and ``is_ha_master`` (shape: fortigate_exporter's testdata, from a 7.0 unit). Only
a cluster costs a second request (``monitor/system/ha-peer``, for the member list the plan
reports), and only a centrally managed unit a third (``cmdb/system/central-management``, to
tell FortiManager from FortiGate Cloud). Pure data out: the engine decides when to refuse.

A device routed through FortiManager (its ``fortimanager:`` entry) is changed there, not on
the unit: its client (``fortimanager/device_api.py``) is a ``ManagedRoute`` whose ``readiness``
says whether FortiManager may change it now (``fortimanager/readiness.py``: a wrong device,
vdom or package raises ``PlanError``; down, out of sync, pending changes or another admin's
workspace lock is a refusal; and, as a ``ChecksPlan``, a plan that updates an ADOM object
another package uses). Being managed is then no reason to refuse, and neither are the
HA role nor the unit token's rights: nothing is written through the unit's own API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from fortiauto.errors import APIError, AuthError, FortiOSError, NotFound
from fortiauto.results import Change
from fortiauto.site import Device
from fortiauto.tasks import REGISTRY

__all__ = [
    "ChecksPlan",
    "HaMember",
    "ManagedRoute",
    "Preflight",
    "PreflightApi",
    "RouteReadiness",
    "run_preflight",
]

WEB_UI_STATE = "web-ui/state"
HA_PEER = "system/ha-peer"
CENTRAL_MANAGEMENT = "system/central-management"

# web-ui/state gives the HA mode as the index of `config system ha` / `set mode` (0: standalone).
_HA_MODES = {0: "standalone", 1: "a-a", 2: "a-p"}
# The access-profile group (and, for a "custom" group, the sub-permission) that governs writes to
# each table fortiauto changes, as each task declares it (certificates sit in vpngrp; a custom
# utmgrp has no sub-permission for SSL/SSH or protocol options profiles, so those stay unknown).
_ACCESS: dict[str, tuple[str, str | None]] = {task.path: task.permission for task in REGISTRY.values()}
MANAGED_PATHS = tuple(_ACCESS)


class PreflightApi(Protocol):
    """The reads pre-flight needs (``FortiOSClient`` implements them)."""

    async def monitor_get(self, path: str, *, vdom: Any = ..., params: Any = None) -> Any: ...

    async def get(
        self, path: str, mkey: str | int | None = None, *, vdom: Any = ..., params: Any = None
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class RouteReadiness:
    """How a unit is reached through FortiManager, and why it must not be changed there now (or None)."""

    route: str  # "FortiManager https://fmg:443, ADOM root, package mail-edge, device fgt-001/root"
    refusal: str | None = None
    notes: tuple[str, ...] = ()


@runtime_checkable
class ManagedRoute(Protocol):
    """A client that changes the unit through FortiManager (``FortiManagerDeviceApi``)."""

    async def readiness(self) -> RouteReadiness: ...


@runtime_checkable
class ChecksPlan(Protocol):
    """A route with a rule on the plan itself, asked once a plan has changes and nothing else refuses.

    ``FortiManagerDeviceApi``: an update of an ADOM object another policy package uses.
    """

    async def plan_refusal(self, changes: Sequence[Change]) -> str | None: ...


@dataclass(frozen=True)
class HaMember:
    """One unit of an HA cluster as ``monitor/system/ha-peer`` lists it."""

    serial: str
    hostname: str
    priority: int | None = None
    primary: bool | None = None  # 7.4+ flags the primary; older builds say nothing

    def describe(self, this_serial: str) -> str:
        roles = [r for r, on in (("primary", self.primary), ("this unit", self.serial == this_serial)) if on]
        return f"{self.hostname or '?'} ({self.serial}{', ' + ', '.join(roles) if roles else ''})"


@dataclass(frozen=True)
class Preflight:
    """The device-state facts; ``checked`` is False when web-ui/state could not be read."""

    serial: str = ""
    checked: bool = True
    ha_mode: str = "standalone"
    ha_primary: bool | None = True
    members: tuple[HaMember, ...] = ()
    fortimanager: str | None = None  # the managing FortiManager's address, when there is one
    admin: str = ""
    super_admin: bool = True
    profile: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    route: RouteReadiness | None = None  # set when the client changes the unit through FortiManager

    @property
    def clustered(self) -> bool:
        return self.ha_mode != "standalone"

    def missing_rights(self, paths: Iterable[str]) -> list[str]:
        """The tables among ``paths`` the admin's profile certainly cannot write."""
        if self.super_admin or not self.checked:
            return []
        missing: list[str] = []
        for path in dict.fromkeys(paths):
            group, sub = _ACCESS.get(path, ("", None))
            if group and _can_write(self.profile, group, sub) is False:
                missing.append(f"{path} ({group}: {self.profile.get(group, 'none')})")
        return missing

    def refusal(self, device: Device, paths: Iterable[str]) -> str | None:
        """Why fortiauto must not write ``paths`` on this device, or None."""
        if device.fortimanager is not None:
            return self._route_refusal(device)
        if self.fortimanager is not None and not device.allow_fortimanager_managed:
            return (
                f"{device.name} is managed by FortiManager {self.fortimanager}: a local change shows there "
                "as a conflict (the device goes out of sync) and the next policy-package install "
                "overwrites it; make the change through FortiManager (give the site a fortimanager: block "
                "and this device a fortimanager: {package: ...} entry, see docs/fortimanager.md), or set "
                "allow_fortimanager_managed: true for this device to change it locally anyway"
            )
        if self.clustered and self.ha_primary is False:
            primary = next((m for m in self.members if m.primary), None)
            where = f"; the primary is {primary.describe(self.serial)}" if primary else ""
            return (
                f"{device.name} answers as an HA secondary (serial {self.serial}) of an {self.ha_mode} "
                f"cluster{where}: configuration is changed on the primary, which synchronises it; "
                "point url at the primary or the cluster's management address"
            )
        missing = self.missing_rights(paths)
        if missing:
            profile = self.profile.get("name", "?")
            return (
                f"the API admin {self.admin or '?'} (access profile {profile}) cannot write "
                f"{', '.join(missing)}; give the profile read-write on those groups, or use another "
                "token; nothing was written"
            )
        return None

    def _route_refusal(self, device: Device) -> str | None:
        if self.route is None:
            # Never write locally to a unit the site routes through FortiManager.
            return (
                f"{device.name} is routed through FortiManager (its fortimanager: entry) but this run "
                "reaches it directly; run it with fortiauto apply, which changes it through FortiManager"
            )
        return self.route.refusal

    def may_refuse(self, device: Device) -> bool:
        """Could some plan be refused here? (Then the engine plans before probing.)"""
        return self.refusal(device, MANAGED_PATHS) is not None

    def warnings(self, device: Device) -> tuple[str, ...]:
        """What the plan should say about the device's state, refusal aside."""
        out = list(self.notes)
        if self.route is not None:
            out.append(
                f"changed through {self.route.route}: the objects are written there, the package is "
                "installed to the unit, and the unit's own API is only read"
            )
            out.extend(self.route.notes)
        if self.clustered:
            members = "; ".join(m.describe(self.serial) for m in self.members) or "members not listed"
            role = {True: "the primary", False: "a secondary", None: "of unknown role"}[self.ha_primary]
            out.append(f"HA {self.ha_mode} cluster: {members}; this unit is {role}")
        if self.fortimanager is not None and device.allow_fortimanager_managed and self.route is None:
            out.append(
                f"managed by FortiManager {self.fortimanager}; changing it locally because "
                "allow_fortimanager_managed is true: FortiManager will show the device out of sync; "
                "retrieve its config there before the next install overwrites the change"
            )
        return tuple(out)


def _can_write(profile: Mapping[str, Any], group: str, sub: str | None) -> bool | None:
    level = profile.get(group)
    if level == "read-write":
        return True
    if level == "custom":
        if sub is None:
            return None
        permissions = profile.get(f"{group}-permission")
        return isinstance(permissions, Mapping) and permissions.get(sub) == "read-write"
    if level in ("none", "read"):
        return False
    return None  # a group this build does not report: let the write itself tell


def _unavailable(exc: FortiOSError) -> bool:
    """An answer meaning "not here for you" (older build, profile without access), not a failure.

    401 (the token itself), 429 and 5xx propagate: the next read would meet them anyway.
    """
    if isinstance(exc, NotFound):
        return True
    if isinstance(exc, AuthError | APIError):
        return exc.http_status in (400, 403, 405)
    return False


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return None


def facts_from_state(state: Mapping[str, Any], serial: str) -> Preflight:
    """Pure: the facts in one ``web-ui/state`` answer (member list and manager type come later)."""
    admin = state.get("admin")
    admin = admin if isinstance(admin, Mapping) else {}
    profile = admin.get("profile")
    mode = state.get("ha_mode", 0)
    return Preflight(
        serial=serial,
        ha_mode=_HA_MODES.get(mode, f"mode {mode}") if isinstance(mode, int) else str(mode),
        ha_primary=_flag(state.get("is_ha_master", True)),
        admin=str(admin.get("name", "")),
        # Without the admin block there is nothing to check: assume rights, the write will tell.
        super_admin=bool(admin.get("super_admin", not isinstance(profile, Mapping))),
        profile=profile if isinstance(profile, Mapping) else {},
    )


async def _members(api: PreflightApi) -> tuple[tuple[HaMember, ...], tuple[str, ...]]:
    try:
        rows = await api.monitor_get(HA_PEER)
    except (APIError, AuthError) as exc:
        if not _unavailable(exc):
            raise
        return (), (f"HA cluster members could not be listed ({HA_PEER}: {exc})",)
    members = tuple(
        HaMember(
            serial=str(row.get("serial_no", "")),
            hostname=str(row.get("hostname", "")),
            priority=row.get("priority") if isinstance(row.get("priority"), int) else None,
            primary=_flag(row.get("primary")),
        )
        for row in (rows if isinstance(rows, list) else [])
        if isinstance(row, Mapping)
    )
    return members, ()


async def _fortimanager(api: PreflightApi) -> str | None:
    """The FortiManager's address when central management is of type fortimanager, else None."""
    try:
        rows = await api.get(CENTRAL_MANAGEMENT)
    except (APIError, AuthError) as exc:
        if not _unavailable(exc):
            raise
        # Centrally managed but the type is unreadable: treat it as FortiManager, the safe reading.
        return "(type unreadable with this token)"
    conf = rows[0] if rows else {}
    if conf.get("type") != "fortimanager":
        return None  # FortiGate Cloud management pushes nothing over a local change
    return str(conf.get("fmg") or "(address not set)")


async def run_preflight(api: PreflightApi, *, serial: str) -> Preflight:
    """The device-state facts, and for a ``ManagedRoute`` client whether FortiManager may change it now.

    ``readiness`` raises ``PlanError`` when FortiManager does not have the site's device, vdom
    or package (the device's result is then invalid input, exit 2, with nothing written).
    """
    facts = await _device_facts(api, serial=serial)
    if isinstance(api, ManagedRoute):
        facts = replace(facts, route=await api.readiness())
    return facts


async def _device_facts(api: PreflightApi, *, serial: str) -> Preflight:
    """Read the device-state facts: one request, plus one per detail a cluster or manager needs.

    Transport failures, a rejected token, rate limits and server errors propagate (the reads
    that follow would meet them too); "not here for you" answers on web-ui/state (404/405 on an
    older build, 403 for a profile without access to it) leave the checks undone, with a note
    in the plan, and the first refused write still rolls back.
    """
    try:
        state = await api.monitor_get(WEB_UI_STATE)
    except (APIError, AuthError) as exc:
        if not _unavailable(exc):
            raise
        note = (
            f"pre-flight checks not done ({WEB_UI_STATE}: {exc}): HA role, FortiManager management "
            "and write rights were not verified before writing"
        )
        return Preflight(serial=serial, checked=False, notes=(note,))
    if not isinstance(state, Mapping):
        note = f"pre-flight checks not done ({WEB_UI_STATE} answered no object)"
        return Preflight(serial=serial, checked=False, notes=(note,))
    facts = facts_from_state(state, serial)
    if facts.clustered:
        members, notes = await _members(api)
        facts = replace(facts, members=members, notes=facts.notes + notes)
    if _flag(state.get("centrally_managed")):
        facts = replace(facts, fortimanager=await _fortimanager(api))
    return facts
