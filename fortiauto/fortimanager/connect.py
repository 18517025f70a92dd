"""Site settings -> FortiManager: the client for a ``fortimanager:`` block, and where a device lives in it.

``client_for_fortimanager`` builds the JSON-RPC client, ``workspace_setting`` reads the block's
``workspace``, ``route_for`` resolves a device's ``fortimanager:`` entry against the block (its
name, package and vdom in FortiManager; the journal's run header keeps it, never a credential),
and ``connect_for`` is a run's client factory: direct units get their REST client, routed units
the FortiManager path (``device_api.py``), all sharing one FortiManager session.
``route_change`` tells an undo (``fortiauto rollback``, the Ansible module) whether the settings
it has would reach a device the way the journaled run did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fortiauto.fortimanager.client import FortiManagerClient
    from fortiauto.fortimanager.device_api import SiteConnections
    from fortiauto.site import Device, Site
    from fortiauto.site.models import FortiManagerSpec

__all__ = [
    "Route",
    "client_for_fortimanager",
    "connect_for",
    "route_change",
    "route_for",
    "workspace_setting",
]


@dataclass(frozen=True)
class Route:
    """Where one device lives in FortiManager: what the transaction writes to and installs."""

    url: str
    adom: str
    device: str
    package: str
    vdom: str

    def describe(self) -> str:
        return (
            f"FortiManager {self.url} (ADOM {self.adom}, package {self.package}, "
            f"device {self.device}/{self.vdom})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "adom": self.adom,
            "device": self.device,
            "package": self.package,
            "vdom": self.vdom,
        }


def route_for(device: Device, spec: FortiManagerSpec) -> Route:
    """The device's ``fortimanager:`` entry with its defaults filled (name and vdom of the device)."""
    entry = device.fortimanager
    if entry is None:
        raise ValueError(f"{device.name} has no fortimanager: entry")
    return Route(
        url=spec.url,
        adom=spec.adom,
        device=entry.device or device.name,
        package=entry.package,
        vdom=entry.vdom or device.vdom,
    )


def client_for_fortimanager(spec: FortiManagerSpec, *, name: str = "fortimanager") -> FortiManagerClient:
    """A client with the block's auth, ADOM, TLS verification and timeout (not yet opened)."""
    from fortiauto.fortimanager.client import FortiManagerClient  # noqa: PLC0415 - keeps `fortiauto --help` light

    return FortiManagerClient(
        spec.url,
        adom=spec.adom,
        token=spec.token,
        username=spec.username,
        password=spec.password,
        verify=spec.verify_tls,
        timeout=spec.timeout,
        name=name,
        allow_insecure_http=spec.allow_insecure_http,
    )


def workspace_setting(spec: FortiManagerSpec) -> bool | None:
    """``FortiManagerClient.workspace(enabled=...)`` for the block's ``workspace``: auto asks FortiManager."""
    return {"auto": None, "lock": True, "off": False}[spec.workspace]


def connect_for(site: Site, *, writing: bool = True) -> SiteConnections:
    """The run's client factory (an async context manager; leaving it ends the FortiManager session).

    ``writing`` (apply, rollback) makes the devices routed through one FortiManager take turns:
    they share its ADOM objects and packages, so one device's change must be installed,
    probed and committed or undone before the next one reads FortiManager.
    """
    from fortiauto.fortimanager.device_api import SiteConnections  # noqa: PLC0415

    return SiteConnections(site, writing=writing)


def route_change(
    entries: Iterable[Mapping[str, Any]], device: Device, spec: FortiManagerSpec | None
) -> str | None:
    """Why undoing ``device``'s journaled writes with these settings would not restore them, or None.

    The journal's run headers say how the run reached each device (``reach``; a run through
    FortiManager names its route there). FortiManager's package objects written back straight to
    the unit, or the unit's own written into FortiManager, would restore neither, so an undo
    must go the same way. A journal without a ``reach`` entry for the device is taken as it comes.
    """
    reach = [
        entry
        for header in entries
        if header.get("type") == "run"
        for entry in header.get("reach") or []
        if isinstance(entry, Mapping) and entry.get("name") == device.name
    ]
    if not reach:
        return None
    recorded = reach[-1].get("fortimanager")
    current = route_for(device, spec).to_json() if device.fortimanager is not None and spec else None
    if recorded == current:
        return None
    went = f"through {_described(recorded)}" if recorded else "directly (its own REST API)"
    now = f"through {_described(current)}" if current else "directly"
    return f"the run changed {device.name} {went}, but these settings reach it {now}"


def _described(route: Any) -> str:
    if not isinstance(route, Mapping):
        return f"FortiManager {route}"
    keys = ("url", "adom", "device", "package", "vdom")
    return Route(**{key: str(route.get(key)) for key in keys}).describe()
