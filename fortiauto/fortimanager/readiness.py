"""Before the first write: may this managed unit be changed through FortiManager now? Pure.

FortiManager installs everything it holds for a device, not just fortiauto's objects, and it
overwrites whatever was changed on the unit since its last install. So a unit that is out of
sync (changed locally), has pending changes (someone else's edits not yet installed), or is
unreachable is refused before any write (exit 5), with the reason and what to do; a device,
vdom or package the site names but FortiManager does not have is a plan error (exit 2).
Statuses: ``ManagedDevice`` from ``/dvmdb/adom/<adom>/device``.
"""

from __future__ import annotations

from fortiauto.errors import PlanError, Refused
from fortiauto.fortimanager.models import ManagedDevice

__all__ = ["check_ready"]


def check_ready(found: ManagedDevice | None, *, device: str, vdom: str, package: str, adom: str) -> None:
    """Raise ``PlanError`` or ``Refused`` when the unit must not be changed through FortiManager now.

    Call it with the device as read before fortiauto writes anything: after fortiauto's own
    writes and commit the device shows pending changes by design.
    """
    if found is None:
        raise PlanError(f"FortiManager ADOM {adom!r} has no device {device!r} (see fortiauto inventory)")
    if found.vdoms and vdom not in found.vdoms:
        raise PlanError(
            f"FortiManager device {device!r} has no vdom {vdom!r} (it has {', '.join(found.vdoms)})"
        )
    assigned = found.packages.get(vdom)
    if assigned and assigned != package:
        raise PlanError(
            f"FortiManager installs package {assigned!r} to {device}/{vdom}, "
            f"not {package!r} (see the site file)"
        )
    if found.conn_status == "down":
        raise Refused(f"FortiManager cannot reach {device} (connection down): an install would fail")
    if found.conf_status == "outofsync":
        raise Refused(
            f"{device} was changed on the unit since FortiManager's last install (out of sync): an install "
            "would overwrite that; retrieve its configuration in FortiManager or re-install first"
        )
    if found.db_status == "mod":
        raise Refused(
            f"FortiManager holds changes for {device} that are not installed yet: fortiauto's install "
            "would push them too; install or revert them in FortiManager first"
        )
