"""Policy task: the inbound VIP policy in proxy mode with the profiles bound. Always last.

The policy is found by id, by name, or as the one accept policy whose destination holds the
VIP; none or several matches is a ``PlanError`` (an input problem: nothing is written).
"""

from __future__ import annotations

from typing import Any

from fortiauto.errors import PlanError
from fortiauto.fortios.normalise import differing
from fortiauto.tasks.base import Diff, FortiOSApi, Target, Task

__all__ = ["PolicyTask", "find_policy"]


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


class PolicyTask(Task, name="policy"):
    path = "firewall/policy"
    label = "policy"

    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> int:
        if current is None:
            raise PlanError("policy not read yet")
        return int(current["policyid"])

    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None:
        return find_policy(await api.get(self.path, vdom=target.vdom), target)

    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff:
        mkey = self.mkey(target, current)
        before, after = differing(current, target.desired)
        label = f"policy {mkey}" + (f" ({current['name']})" if current and current.get("name") else "")
        if not after:
            return Diff(noop_reason=f"{label} already in proxy mode with the profiles bound")
        return Diff((self.change(target, "update", mkey, before, after),))
