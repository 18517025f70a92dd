"""Profile group task (opt-in): the group a ``profile-type group`` policy applies gets fortiauto's profiles.

Runs just before the policy task, only for a mail server whose site file says
``policy: {..., profile_group: edit}`` (``desired.py`` then renders this task's state: the
policy's email filter, SSL/SSH and protocol options profiles). A policy with ``profile-type
group`` applies its group's profiles and ignores those bound on it, so the fix has to go into the
group (``firewall/profile-group``, fields of Fortinet's schema as shipped in fortinet.fortios
2.4.2, fortios_firewall_profile_group); the group's other profiles are never touched, and the
policy task still sets the policy's inspection mode. A policy with single profiles needs nothing
here.

A group is shared: every other policy of the VDOM that applies it (read from ``firewall/policy``)
changes with it, and the plan names each one. A group the policy names but the VDOM lacks is a
``Refused``, before any write. Undo needs nothing of its own: the change is an ordinary journaled
update of the group's three keys.
"""

from __future__ import annotations

from typing import Any

from fortiauto.errors import PlanError, Refused
from fortiauto.fortios.normalise import differing
from fortiauto.tasks.base import Diff, FortiOSApi, Target, Task
from fortiauto.tasks.policy import POLICY_PATH, find_policy

__all__ = ["ProfileGroupTask", "group_users"]

# What the read learnt beside the group itself, under metadata keys (``q_`` keys are never
# compared, sent or restored: fortios/normalise.py).
GROUP_KEY = "q_fortiauto_group"  # the group the mail policy names
POLICY_KEY = "q_fortiauto_policy"  # the mail policy's id
FOUND_KEY = "q_fortiauto_found"  # whether the VDOM has that group
USERS_KEY = "q_fortiauto_users"  # the other policies applying the group, as "id (name)"


def _describe(policy: dict[str, Any]) -> str:
    name = policy.get("name")
    return f"{policy.get('policyid')} ({name})" if name else str(policy.get("policyid"))


def group_users(policies: list[dict[str, Any]], group: str, *, besides: int) -> list[str]:
    """The policies other than ``besides`` that apply profile group ``group`` (pure)."""
    return [
        _describe(p)
        for p in policies
        if p.get("profile-type") == "group"
        and p.get("profile-group") == group
        and str(p.get("policyid")) != str(besides)
    ]


class ProfileGroupTask(Task, name="profile_group"):
    path = "firewall/profile-group"
    # Profile groups are firewall objects; which custom fwgrp sub-permission covers them is not
    # documented, so a custom profile stays "unknown" and the write itself tells.
    permission = ("fwgrp", None)
    label = "profile group"

    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> str:
        if current is None or not current.get(GROUP_KEY):
            raise PlanError("profile group not read yet")
        return str(current[GROUP_KEY])

    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None:
        """The group the mail policy applies, with what the plan must say; None: single profiles."""
        policies = await api.get(POLICY_PATH, vdom=target.vdom)
        policy = find_policy(policies, target)
        if policy.get("profile-type") != "group":
            return None
        name = str(policy.get("profile-group") or "")
        group = await api.get_one(self.path, name, vdom=target.vdom) if name else None
        policyid = int(policy["policyid"])
        return (group or {}) | {
            GROUP_KEY: name,
            POLICY_KEY: policyid,
            FOUND_KEY: group is not None,
            USERS_KEY: group_users(policies, name, besides=policyid),
        }

    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff:
        if current is None:
            return Diff(
                noop_reason="the policy binds its own profiles (profile-type single): no group to edit"
            )
        name = self.mkey(target, current)
        where = (
            f"policy {current.get(POLICY_KEY)} (mail server {target.mail_server.name}, vdom {target.vdom})"
        )
        if not current.get(FOUND_KEY):
            raise Refused(
                f"{where} applies profile group {name!r} (profile-type group), which vdom {target.vdom} "
                f"does not have: nothing can take effect there; create the group or set the policy's "
                "profile-type to single, then run again"
            )
        refused = [attr for attr in target.version.proxy_refuses_profiles if current.get(attr)]
        if refused:
            raise Refused(
                f"{where}: profile group {name!r} holds {', '.join(refused)}, which "
                f"{target.version.describe()} refuses in a proxy policy (2 GB RAM models, FortiOS 7.6.5 "
                "admin guide), and the fix needs proxy inspection; remove them from the group, then run again"
            )
        before, after = differing(current, target.desired)
        if not after:
            return Diff(noop_reason=f"profile group {name} already applies fortiauto's profiles")
        users = current.get(USERS_KEY) or []
        warnings = (
            (
                f"profile group {name} is also applied by {'policy' if len(users) == 1 else 'policies'} "
                f"{', '.join(users)}: setting its email filter, SSL/SSH and protocol options profiles "
                f"changes {'that policy' if len(users) == 1 else 'those policies'} too",
            )
            if users
            else ()
        )
        return Diff((self.change(target, "update", name, before, after),), warnings=warnings)
