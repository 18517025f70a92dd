"""Site settings -> FortiManager: the client for a ``fortimanager:`` block, and where a device lives in it.

``client_for_fortimanager`` builds the JSON-RPC client, ``workspace_setting`` reads the block's
``workspace``, ``route_for`` resolves a device's ``fortimanager:`` entry against the block (its
name, package and vdom in FortiManager; the journal's run header keeps it, never a credential),
and ``connect_for`` is a run's client factory: direct units get their REST client, routed units
the FortiManager path (``device_api.py``), all sharing one FortiManager session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fortiauto.fortimanager.client import FortiManagerClient
    from fortiauto.fortimanager.device_api import SiteConnections
    from fortiauto.site import Device, Site
    from fortiauto.site.models import FortiManagerSpec

__all__ = ["Route", "client_for_fortimanager", "connect_for", "route_for", "workspace_setting"]


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
