"""Before the first write: may this managed unit be changed through FortiManager now? Pure.

FortiManager installs everything it holds for a device, not just fortiauto's objects, and it
overwrites whatever was changed on the unit since its last install. So a unit that is out of
sync (changed locally), has pending changes (someone else's edits not yet installed), or is
unreachable is refused before any write (exit 5), with the reason and what to do; a device,
vdom or package the site names but FortiManager does not have is a plan error (exit 2).
Statuses: ``ManagedDevice`` from ``/dvmdb/adom/<adom>/device``.

And because it installs a whole package, a package that also installs elsewhere is refused
(``check_scope``): fortiauto's change to it would stay pending for the other targets, to be
installed there later by anyone, without a probe on that unit and without an undo.
Installation targets: ``scope member`` of ``/pm/pkg/adom/<adom>/<pkg>`` ("Policy Package
Management" in the FortiManager JSON API documentation).
"""

from __future__ import annotations

from collections.abc import Sequence

from fortiauto.errors import PlanError, Refused
from fortiauto.fortimanager.models import ManagedDevice

__all__ = ["check_ready", "check_scope", "describe_targets", "listed", "scope_unreadable"]

_SHOWN = 5  # installation targets (or packages) named in a reason before "and N more"


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


def describe_targets(targets: Sequence[tuple[str, str]]) -> str:
    """``fgt-2/root, fgt-3/root and 4 more``; a member without vdom (a device group) by its name."""
    return listed([f"{name}/{vdom}" if vdom else name for name, vdom in targets])


def listed(names: Sequence[str]) -> str:
    """``a, b, c, d, e and 3 more``: the first five names of a reason, the rest counted."""
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def check_scope(scope: Sequence[tuple[str, str]], *, device: str, vdom: str, package: str) -> None:
    """Raise unless ``package`` installs to ``device``/``vdom`` and nowhere else.

    ``scope`` is the package's installation targets, (device, vdom); a device group is a member
    with its name and no vdom. Another target (another unit, another vdom of this unit, a group)
    is a ``Refused``: the change would be pending there, outside any probe or undo. A scope
    without this unit is a ``PlanError``: the site names a package FortiManager does not install here.
    """
    own = (device, vdom)
    others = sorted({target for target in scope if target != own})
    if others:
        raise Refused(
            f"FortiManager policy package {package!r} also installs to {describe_targets(others)}: "
            f"a change to it for {device} would stay pending for them and be installed there later "
            f"without a probe or an undo; nothing was changed; give {device} its own policy package "
            "in FortiManager"
        )
    if own not in scope:
        raise PlanError(
            f"FortiManager policy package {package!r} does not install to {device}/{vdom} "
            "(no such installation target; see the site file)"
        )


def scope_unreadable(package: str, device: str, why: str) -> Refused:
    """The refusal when FortiManager does not say where ``package`` installs: no write without knowing."""
    return Refused(
        f"cannot read the installation targets of FortiManager policy package {package!r} ({why}): "
        f"fortiauto changes a package only when it installs to {device} alone; nothing was changed; "
        "grant the API user read access to policy packages, or retry"
    )
