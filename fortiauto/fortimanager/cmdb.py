"""The tasks' CMDB seam (``tasks.base.FortiOSApi``) served by FortiManager for one routed device.

The FortiManager transaction runs the same tasks as a direct unit (read -> diff -> apply, and
``transaction/undo.py`` from the journal) with this object in place of the ``FortiOSClient``:
each CMDB path becomes its FortiManager home, and values are reshaped both ways so the tasks
see FortiOS REST shapes (``shapes.to_fmg`` on writes; single references back to strings and
reference lists back to ``[{"name": ...}]`` on reads):

==============================  =====================================================================
CMDB path                       FortiManager url
==============================  =====================================================================
``firewall/policy``             ``/pm/config/adom/<adom>/pkg/<package>/firewall/policy[/<id>]``
``vpn.certificate/local``       ``/pm/config/device/<device>/vdom/<vdom>/vpn/certificate/local``
                                (+ the Dynamic Local Certificate of the same name mapping to it)
anything else (``a.b/c``)       ``/pm/config/adom/<adom>/obj/a/b/c[/<name>]``
==============================  =====================================================================

``monitor_post("vpn-certificate/local/import", ...)`` (the certificate task's import) becomes a
device-DB add plus the dynamic mapping, so the SSL/SSH profile's ``server-cert`` names resolve to
the device's certificate at install. Nothing here locks, commits or installs: the transaction
does that around the writes (``FortiManagerClient.workspace``, ``commit``, ``install_package``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final

from fortiauto import errors
from fortiauto.fortimanager.client import FortiManagerClient
from fortiauto.fortimanager.shapes import to_fmg

__all__ = ["FortiManagerCmdb", "from_fmg"]

POLICY_PATH: Final = "firewall/policy"
CERT_PATH: Final = "vpn.certificate/local"
IMPORT_PATH: Final = "vpn-certificate/local/import"
# FortiOS REST attributes that hold ONE reference as a plain string (FortiManager sends them as a
# one-item list): the policy's profile and schedule bindings, the SSL/SSH profile's CA names and
# (before 7.0) its server certificate, the profiles' replacement message group. Source: the FortiOS
# CMDB schema as the REST API returns it (shared reference fortios-objects.md: policy and profiles).
_SINGLE_REFS: Final = frozenset(
    {
        "schedule",
        "ssl-ssh-profile",
        "profile-protocol-options",
        "av-profile",
        "webfilter-profile",
        "dnsfilter-profile",
        "emailfilter-profile",
        "dlp-sensor",
        "dlp-profile",
        "file-filter-profile",
        "ips-sensor",
        "application-list",
        "voip-profile",
        "icap-profile",
        "waf-profile",
        "ssh-filter-profile",
        "profile-group",
        "caname",
        "untrusted-caname",
        "replacemsg-group",
    }
)


def from_fmg(value: Any, *, server_cert_is_list: bool = True, key: str = "") -> Any:
    """A FortiManager object in the shape the FortiOS REST API gives it."""
    if isinstance(value, Mapping):
        return {
            str(k): from_fmg(v, server_cert_is_list=server_cert_is_list, key=str(k)) for k, v in value.items()
        }
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        single = key in _SINGLE_REFS or (key == "server-cert" and not server_cert_is_list)
        if single:
            return value[0] if value else ""
        return [{"name": v} for v in value]
    if isinstance(value, list):
        return [from_fmg(v, server_cert_is_list=server_cert_is_list) for v in value]
    return value


class FortiManagerCmdb:
    """``FortiOSApi`` for one device through FortiManager (its ADOM objects, package and device DB)."""

    def __init__(
        self,
        fmg: FortiManagerClient,
        *,
        device: str,
        package: str,
        vdom: str = "root",
        server_cert_is_list: bool = True,
    ) -> None:
        self.fmg = fmg
        self.device = device
        self.package = package
        self.vdom = vdom
        self._server_cert_is_list = server_cert_is_list

    def __repr__(self) -> str:
        return f"FortiManagerCmdb(device={self.device!r}, package={self.package!r}, vdom={self.vdom!r})"

    def _shape(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        shaped: dict[str, Any] = from_fmg(obj, server_cert_is_list=self._server_cert_is_list)
        return shaped

    @staticmethod
    def _object_path(path: str) -> str:
        return path.replace(".", "/")

    # --- reads --------------------------------------------------------------------------

    async def get(
        self, path: str, mkey: str | int | None = None, *, vdom: Any = None, params: Any = None
    ) -> list[dict[str, Any]]:
        """Every object of a table (or the one ``mkey``), FortiOS-shaped; ``[]`` when missing."""
        if mkey is not None:
            one = await self.get_one(path, mkey, vdom=vdom)
            return [] if one is None else [one]
        if path == POLICY_PATH:
            rows = await self.fmg.list_policies(self.package)
        elif path == CERT_PATH:
            data = await self.fmg.get(self.fmg.device_certificate_url(self.device, self._vdom(vdom)))
            rows = [dict(r) for r in data or [] if isinstance(r, Mapping)]
        else:
            rows = await self.fmg.list_objects(self._object_path(path))
        return [self._shape(r) for r in rows]

    async def get_one(
        self, path: str, mkey: str | int, *, vdom: Any = None, params: Any = None
    ) -> dict[str, Any] | None:
        """One object, FortiOS-shaped, or ``None`` when FortiManager has no such object."""
        if path == POLICY_PATH:
            found = await self.fmg.get_policy(self.package, int(mkey))
        elif path == CERT_PATH:
            found = await self.fmg.get_device_certificate(self.device, self._vdom(vdom), str(mkey))
        else:
            found = await self.fmg.get_object(self._object_path(path), str(mkey))
        return None if found is None else self._shape(found)

    # --- writes -------------------------------------------------------------------------

    async def create(
        self, path: str, body: Any, *, vdom: Any = None, params: Any = None, mkey: Any = None
    ) -> Any:
        if path == POLICY_PATH:
            return await self.fmg.call("add", self.fmg.policy_url(self.package), data=to_fmg(dict(body)))
        if path == CERT_PATH:
            raise errors.PlanError("certificates reach FortiManager through the import (monitor_post)")
        return await self.fmg.add_object(self._object_path(path), to_fmg(dict(body)))

    async def update(
        self, path: str, mkey: str | int, body: Any, *, vdom: Any = None, params: Any = None
    ) -> Any:
        if path == POLICY_PATH:
            return await self.fmg.update_policy(self.package, int(mkey), to_fmg(dict(body)))
        if path == CERT_PATH:
            raise errors.PlanError("fortiauto never changes a certificate in place")
        return await self.fmg.update_object(self._object_path(path), str(mkey), to_fmg(dict(body)))

    async def delete(self, path: str, mkey: str | int, *, vdom: Any = None) -> Any:
        if path == POLICY_PATH:
            return await self.fmg.call("delete", self.fmg.policy_url(self.package, int(mkey)))
        if path == CERT_PATH:
            return await self._delete_certificate(str(mkey), self._vdom(vdom))
        return await self.fmg.delete_object(self._object_path(path), str(mkey))

    async def monitor_post(self, path: str, body: Any, *, vdom: Any = None, params: Any = None) -> Any:
        """The certificate import: into the device DB, then mapped by a Dynamic Local Certificate."""
        if path.strip("/") != IMPORT_PATH:
            raise errors.PlanError(f"FortiManager has no equivalent of monitor/{path}")
        name = str(body["certname"])
        cert_pem = base64.b64decode(body["file_content"]).decode()
        key_pem = base64.b64decode(body["key_file_content"]).decode()
        target_vdom = self._vdom(vdom)
        answer = await self.fmg.add_device_certificate(
            self.device,
            target_vdom,
            name=name,
            cert_pem=cert_pem,
            key_pem=key_pem,
            passphrase=body.get("password"),
        )
        await self.fmg.map_dynamic_certificate(name, device=self.device, vdom=target_vdom, local_cert=name)
        return answer

    async def _delete_certificate(self, name: str, vdom: str) -> Any:
        # The dynamic certificate first (it is what ADOM objects reference), then the device DB copy.
        dynamic = await self.fmg.get_dynamic_certificate(name)
        if dynamic is not None:
            mine = {"name": self.device, "vdom": vdom}
            others = [m for m in dynamic.get("dynamic_mapping") or [] if mine not in (m.get("_scope") or [])]
            if others:
                await self.fmg.unmap_dynamic_certificate(name, device=self.device, vdom=vdom)
            else:
                await self.fmg.delete_dynamic_certificate(name)
        return await self.fmg.delete_device_certificate(self.device, vdom, name)

    def _vdom(self, vdom: Any) -> str:
        return vdom if isinstance(vdom, str) and vdom else self.vdom
