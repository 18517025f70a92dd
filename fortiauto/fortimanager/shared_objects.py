"""Before the first write: does a plan update an ADOM object another policy package uses? Pure.

The profiles fortiauto sets (email filter, SSL/SSH, protocol options and, with
``policy.profile_group: edit``, the profile group) are ADOM objects
(``/pm/config/adom/<adom>/obj/...``), shared by every policy package of the ADOM. An install
sends a package's policies and the ADOM objects they reference (Fortinet Community, "Technical
Tip: Importing all objects versus importing only policy-dependent objects", article 193259:
FortiManager "installs only those objects that are referenced in the policy"), so an update
of an object that a policy of ANOTHER package references stays pending for that package's
units and would be installed there later, by anyone, without a probe or an undo.
Such a plan is refused before any write (``shared_refusal``); a created object is used by this
unit's mail policy alone and is never a reason. A policy uses an object by naming it in its
profile fields, or through the profile group it names (whose members are the same fields).
Every name a policy holds counts, whatever its ``profile-type``: refusing on an unused name
costs a rename, installing a change unprobed costs a unit.

``FortiManagerDeviceApi.plan_refusal`` reads the facts (the package list, each other
package's policies, the profile groups when a policy applies one) and asks here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from fortiauto.errors import Refused
from fortiauto.fortimanager.readiness import listed
from fortiauto.results import Change

__all__ = [
    "GROUP_FIELDS",
    "GROUP_PATH",
    "POLICY_FIELDS",
    "AdomObject",
    "needs_groups",
    "objects_unreadable",
    "own_package",
    "shared_refusal",
    "updated_objects",
    "users",
]

AdomObject = tuple[str, str]  # (CMDB path, name), e.g. ("emailfilter/profile", "mail-inbound")

GROUP_PATH: Final = "firewall/profile-group"
# The CMDB path of each ADOM object fortiauto updates -> the policy (and profile group) field
# naming it (FortiOS CMDB firewall/policy and firewall/profile-group, as fortinet.fortios
# 2.4.2's fortios_firewall_policy and fortios_firewall_profile_group spell them).
_FIELD: Final[Mapping[str, str]] = {
    "emailfilter/profile": "emailfilter-profile",
    "firewall/ssl-ssh-profile": "ssl-ssh-profile",
    "firewall/profile-protocol-options": "profile-protocol-options",
    GROUP_PATH: "profile-group",
}
GROUP_FIELDS: Final = ("name", "emailfilter-profile", "ssl-ssh-profile", "profile-protocol-options")
POLICY_FIELDS: Final = ("policyid", "name", "profile-type", *_FIELD.values())
# The site file key that names each profile: the remedy says which one to give a name of its own.
_SITE_KEY: Final[Mapping[str, str]] = {
    "emailfilter/profile": "emailfilter_profile",
    "firewall/ssl-ssh-profile": "ssl_profile",
    "firewall/profile-protocol-options": "protocol_options",
}


def updated_objects(changes: Iterable[Change]) -> tuple[AdomObject, ...]:
    """The ADOM objects a plan updates (never the ones it creates), each once, in plan order."""
    found = [(c.path, str(c.mkey)) for c in changes if c.action == "update" and c.path in _FIELD]
    return tuple(dict.fromkeys(found))


def own_package(path: str, package: str) -> bool:
    """Is package ``path`` (``folder/pkg`` inside a folder) the site's ``package``?"""
    return path == package or ("/" not in package and path.rsplit("/", 1)[-1] == package)


def _names(value: Any) -> set[str]:
    """The names a reference holds: FortiManager's ``["x"]``, a FortiOS ``[{"name": "x"}]`` or ``"x"``."""
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, list):
        out = {str(v.get("name", "")) if isinstance(v, Mapping) else str(v) for v in value}
        return out - {""}
    return set()


def needs_groups(updated: Sequence[AdomObject], policies: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
    """Must the profile groups be read? Only for an updated profile when some policy names a group."""
    if not any(path != GROUP_PATH for path, _ in updated):
        return False
    return any(_names(p.get("profile-group")) for rows in policies.values() for p in rows)


def _uses(policy: Mapping[str, Any], obj: AdomObject, groups: Mapping[str, Mapping[str, Any]]) -> bool:
    path, name = obj
    field = _FIELD[path]
    if name in _names(policy.get(field)):
        return True
    if path == GROUP_PATH:
        return False
    return any(name in _names(groups.get(g, {}).get(field)) for g in _names(policy.get("profile-group")))


def users(
    updated: Sequence[AdomObject],
    policies: Mapping[str, Sequence[Mapping[str, Any]]],
    groups: Mapping[str, Mapping[str, Any]],
) -> dict[AdomObject, list[str]]:
    """Per updated object that another package uses, those packages (sorted); ``policies`` by package."""
    out: dict[AdomObject, list[str]] = {}
    for obj in updated:
        found = sorted(pkg for pkg, rows in policies.items() if any(_uses(p, obj, groups) for p in rows))
        if found:
            out[obj] = found
    return out


def _remedy(obj: AdomObject, device: str) -> str:
    path, name = obj
    key = _SITE_KEY.get(path)
    if key is None:
        return (
            f"give the mail policy of {device} a profile group of its own in FortiManager, or leave "
            "policy.profile_group at refuse"
        )
    return (
        f"name a profile of its own for this mail server in the site file (e.g. {key}: "
        f"{name}-{device}), so fortiauto creates it instead of changing a shared one"
    )


def shared_refusal(shared: Mapping[AdomObject, Sequence[str]], *, device: str) -> Refused:
    """The one-line refusal: each shared object with the packages using it, and the remedy."""
    named = "; ".join(
        f"{path} {name!r} is used by policy {'packages' if len(pkgs) > 1 else 'package'} {listed(list(pkgs))}"
        for (path, name), pkgs in shared.items()
    )
    first = next(iter(shared))
    return Refused(
        f"fortiauto would update FortiManager ADOM objects that other policy packages use ({named}): "
        f"the change would stay pending for their units and be installed there later without a "
        f"probe or an undo; nothing was changed; {_remedy(first, device)}"
    )


def objects_unreadable(updated: Sequence[AdomObject], adom: str, why: str) -> Refused:
    """The refusal when FortiManager does not say which packages use the objects: no write without knowing."""
    named = ", ".join(f"{path} {name!r}" for path, name in updated)
    return Refused(
        f"cannot read which policy packages of FortiManager ADOM {adom!r} use {named} ({why}): "
        "fortiauto updates an ADOM object only when no other package uses it; nothing was changed; "
        "grant the API user read access to policy packages and objects, or retry"
    )
