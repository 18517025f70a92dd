"""Is the policy the site names really the inbound mail policy? Checked before any write.

Part of planning. A site may name the wrong policy (``policy: {id: 2}`` where 2 is the outbound
internet policy): reconfiguring it with deep inspection would break something else and prove
nothing. The policy must accept traffic whose destination holds a VIP (``firewall/vip`` or a
``firewall/vipgrp``) and whose service covers the probe's port, or the standard port of its mode
(25 for SMTP and STARTTLS, 465 for SMTPS: the probe may reach a VIP on a mapped port, as the lab
does). ``allow_any_policy: true`` on the mail server skips the check. A policy that logs no
traffic (``logtraffic disable``) is reported: the effect cannot be proven there. Pure functions
over what was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["policy_label", "policy_problems", "policy_warnings", "service_ports"]

_STANDARD_PORT = {"smtps": 465}  # every other probe mode speaks SMTP on 25
_ANY_SERVICE = frozenset({"ALL", "ALL_TCP"})


def policy_label(policy: Mapping[str, Any]) -> str:
    name = policy.get("name")
    return f"policy {policy.get('policyid')}" + (f" ({name})" if name else "")


def _names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item.get("name")) for item in value if isinstance(item, Mapping) and item.get("name")]
    if isinstance(value, str) and value:
        return value.split()
    return []


def _ranges(text: str) -> Iterable[tuple[int, int]]:
    # tcp-portrange: "25", "25-26", "25:1024-65535" (dst[:src]), several separated by spaces.
    for item in text.split():
        dst = item.split(":", 1)[0]
        low, _, high = dst.partition("-")
        if low.isdigit():
            yield int(low), int(high) if high.isdigit() else int(low)


def service_ports(
    names: Sequence[str],
    custom: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Mapping[str, Any]],
    *,
    depth: int = 0,
) -> list[tuple[int, int]] | None:
    """TCP port ranges the named services cover; None when one covers every port."""
    ranges: list[tuple[int, int]] = []
    for name in names:
        if name in _ANY_SERVICE:
            return None
        if name in groups and depth < 4:
            members = service_ports(_names(groups[name].get("member")), custom, groups, depth=depth + 1)
            if members is None:
                return None
            ranges.extend(members)
            continue
        service = custom.get(name, {})
        if service.get("protocol") == "IP" and not service.get("tcp-portrange"):
            return None  # an IP service with no port range matches every port
        ranges.extend(_ranges(str(service.get("tcp-portrange") or "")))
    return ranges


def policy_problems(
    policy: Mapping[str, Any],
    *,
    vips: set[str],
    ports: list[tuple[int, int]] | None,
    probe_port: int,
    probe_mode: str,
) -> list[str]:
    """Why this policy is not an inbound mail policy to a VIP (empty when it is)."""
    label = policy_label(policy)
    problems: list[str] = []
    if policy.get("action", "accept") != "accept":
        problems.append(f"{label} does not accept traffic (action {policy.get('action')})")
    destinations = _names(policy.get("dstaddr"))
    if not any(name in vips for name in destinations):
        shown = ", ".join(destinations) or "nothing"
        problems.append(f"{label} sends traffic to {shown}, not to a VIP")
    wanted = {probe_port, _STANDARD_PORT.get(probe_mode, 25)}
    if ports is not None and not any(low <= port <= high for port in wanted for low, high in ports):
        services = ", ".join(_names(policy.get("service"))) or "none"
        problems.append(f"{label}'s services ({services}) do not cover port {min(wanted)}")
    return problems


def policy_warnings(policy: Mapping[str, Any]) -> list[str]:
    """What makes the effect unprovable on this policy, though it may be changed."""
    if policy.get("logtraffic") == "disable":
        return [
            f"{policy_label(policy)} has logtraffic disable: the email filter may not log the probe's "
            "message, so the effect cannot be proven there"
        ]
    return []
