"""Policy task: the inbound VIP policy in proxy mode with the profiles bound. Always last.

The policy is found by id, by name, or as the one accept policy whose destination holds the
VIP; none or several matches is a ``PlanError`` (an input problem: nothing is written).

Some policies would take the profiles and ignore them, or refuse them: a policy with
``profile-type group`` applies its profile group, not the profiles bound on it; a VDOM in NGFW
policy-based mode (``system/settings`` ``ngfw-mode``) carries security profiles on
``firewall/security-policy`` and refuses them on ``firewall/policy``, and inspects them flow-based
in the IPS engine (FortiOS 6.2.1 new features, "NGFW policy mode"), so the proxy fix has no place
there; a 2 GB unit on 7.6.5+
refuses DNS filter, web filter and VoIP profiles in a proxy policy (FortiOS 7.6.5 admin guide,
doc 536273). Each is a ``Refused`` with the reason, before any write.

A site may opt in to editing the profile group instead (``policy: {..., profile_group: edit}``):
the ``profile_group`` task then sets the group's profiles, and this task sets only what a group
policy still takes from the policy itself (inspection mode, UTM status).
"""

from __future__ import annotations

from typing import Any

from fortiauto.desired import PROFILE_GROUP_MEMBERS
from fortiauto.errors import FortiOSError, PlanError, Refused
from fortiauto.fortios.normalise import differing
from fortiauto.tasks.base import Diff, FortiOSApi, Target, Task

__all__ = ["NGFW_MODE_KEY", "POLICY_PATH", "PolicyTask", "find_policy"]

POLICY_PATH = "firewall/policy"
SETTINGS_PATH = "system/settings"
# The VDOM's NGFW mode rides along with the policy as read, under a metadata key (``q_`` keys
# are never compared, sent or restored: fortios/normalise.py).
NGFW_MODE_KEY = "q_fortiauto_ngfw_mode"


def _names(value: Any) -> set[str]:
    if isinstance(value, list):
        return {str(item.get("name")) for item in value if isinstance(item, dict)}
    return set()


def find_policy(policies: list[dict[str, Any]], target: Target) -> dict[str, Any]:
    """The one policy ``target.mail_server.policy`` names (pure; raises PlanError)."""
    ref = target.mail_server.policy
    if ref.id is not None:
        matches = [p for p in policies if p.get("policyid") == ref.id]
        what = f"policy id {ref.id}"
    elif ref.name is not None:
        matches = [p for p in policies if p.get("name") == ref.name]
        what = f"policy named {ref.name!r}"
    else:
        matches = [
            p
            for p in policies
            if ref.vip in _names(p.get("dstaddr")) and p.get("action", "accept") == "accept"
        ]
        what = f"accept policy to VIP {ref.vip!r}"
    where = f"(mail server {target.mail_server.name}, vdom {target.vdom})"
    if not matches:
        raise PlanError(f"no {what} {where}")
    if len(matches) > 1:
        ids = ", ".join(str(p.get("policyid")) for p in matches)
        raise PlanError(f"{len(matches)} policies match {what} {where}: {ids}; name one by id")
    return matches[0]


def _edits_group(target: Target, policy: dict[str, Any] | None) -> bool:
    """The policy applies a profile group and the site opted in to editing it (the group task's job)."""
    return (policy or {}).get("profile-type") == "group" and target.mail_server.policy.profile_group == "edit"


def _wanted(target: Target, policy: dict[str, Any] | None) -> dict[str, Any]:
    """The desired policy; on a group policy, without the profiles it would ignore (the group's)."""
    if _edits_group(target, policy):
        return {k: v for k, v in target.desired.items() if k not in PROFILE_GROUP_MEMBERS}
    return target.desired


class PolicyTask(Task, name="policy"):
    path = POLICY_PATH
    permission = ("fwgrp", "policy")
    label = "policy"

    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> int:
        if current is None:
            raise PlanError("policy not read yet")
        return int(current["policyid"])

    def __init__(self) -> None:
        self._ngfw_modes: dict[str, str | None] = {}  # per vdom, read once per transaction

    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None:
        policy = find_policy(await api.get(self.path, vdom=target.vdom), target)
        _, after = differing(policy, _wanted(target, policy))
        if not after:
            return policy  # nothing to bind, nothing that could refuse it: no extra read
        if target.vdom not in self._ngfw_modes:
            self._ngfw_modes[target.vdom] = await _ngfw_mode(api, target.vdom)
        return policy | {NGFW_MODE_KEY: self._ngfw_modes[target.vdom]}

    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff:
        mkey = self.mkey(target, current)
        _refuse_unusable(target, current or {}, mkey)
        before, after = differing(current, _wanted(target, current))
        label = f"policy {mkey}" + (f" ({current['name']})" if current and current.get("name") else "")
        if not after and _edits_group(target, current):
            group = (current or {}).get("profile-group")
            return Diff(noop_reason=f"{label} already in proxy mode, applying profile group {group}")
        if not after:
            return Diff(noop_reason=f"{label} already in proxy mode with the profiles bound")
        return Diff((self.change(target, "update", mkey, before, after),))


async def _ngfw_mode(api: FortiOSApi, vdom: str) -> str | None:
    """``profile-based`` or ``policy-based``; None when this token cannot read the VDOM's settings."""
    try:
        rows = await api.get(SETTINGS_PATH, vdom=vdom)
    except FortiOSError:
        return None
    mode = rows[0].get("ngfw-mode") if rows else None
    return str(mode) if mode else None


def _refuse_unusable(target: Target, policy: dict[str, Any], mkey: int) -> None:
    """Raise ``Refused`` when binding the profiles on this policy would be refused or take no effect."""
    where = f"policy {mkey} (mail server {target.mail_server.name}, vdom {target.vdom})"
    if policy.get(NGFW_MODE_KEY) == "policy-based":
        raise Refused(
            f"{where}: vdom {target.vdom} runs NGFW policy-based mode, where security profiles sit on "
            "firewall/security-policy and are inspected flow-based by the IPS engine; the fix needs proxy "
            "inspection and the proxy email filter feature set, which that mode does not offer: switch "
            "the vdom to profile-based (ngfw-mode) to apply it, or keep flow-based email filtering by hand"
        )
    if policy.get("profile-type") == "group" and target.mail_server.policy.profile_group != "edit":
        group = policy.get("profile-group") or "?"
        raise Refused(
            f"{where} applies profile group {group!r} (profile-type group), not the profiles fortiauto "
            f"would bind: the change would report success and take no effect; set the email filter, "
            f"SSL/SSH and protocol options profiles in group {group!r}, or set the policy's "
            "profile-type to single, or let fortiauto set them in the group with policy: {..., "
            "profile_group: edit} in the site file (every policy applying the group changes too)"
        )
    refused = [attr for attr in target.version.proxy_refuses_profiles if policy.get(attr)]
    if refused and target.desired.get("inspection-mode") == "proxy":
        raise Refused(
            f"{where}: {target.version.describe()} refuses {', '.join(refused)} in a proxy policy "
            "(2 GB RAM models, FortiOS 7.6.5 admin guide), and the fix needs proxy inspection; "
            "remove them from this policy (or move web traffic to another policy), then run again"
        )
