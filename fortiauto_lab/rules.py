"""Rules a write must pass beyond its fields: what a unit refuses because of its mode, model or other objects.

``store.py`` calls ``check_write`` after a create or update is built and before it is kept
(seeding bypasses it). Each rule reads the rest of the configuration it needs from the store:

- NGFW policy-based VDOM (``system/settings`` ``ngfw-mode policy-based``): ``firewall/policy``
  only decides SSL inspection and authentication; security profiles and proxy inspection are
  refused there (they belong on ``firewall/security-policy``; [A] fortios_system_settings,
  fortios_firewall_security_policy).
- A 2 GB unit on 7.6.5+ (``hardware.py``; FortiOS 7.6.5 admin guide "Proxy-based inspection for
  email protocols supported on models with 2 GB RAM", doc 536273): a proxy policy needs a mail
  service (SMTP(S), POP3(S), IMAP(S), NNTP), may not use an SSL profile with ``ssl.inspect-all``
  (checked from either side of the reference) nor DNS/web filter or VoIP profiles; WAF, ICAP and
  SSH filter profiles are refused in any policy.
- Strict readings (the lab's default; ``lab up --lenient`` turns them off): with
  ``ssl.inspect-all`` on, FortiOS hides the per-protocol blocks (``https``, ``smtps`` ...).
  Whether a write that sends one beside inspect-all is refused or stored unused is not
  documented; the conservative reading, played here, is that it is refused (and GET hides the
  blocks, ``schema.py``). The other strict reading lives in ``device.py``: a profile that
  performs no anti-spam check inspects, and logs, nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fortiauto_lab.fields import CmdbError, ObjectSpec

if TYPE_CHECKING:
    from fortiauto_lab.store import ConfigStore

__all__ = ["PROFILE_FIELDS", "PROTOCOL_BLOCKS", "check_write", "inspects_all", "policy_based"]

PROFILE_FIELDS = (
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
    "cifs-profile",
    "waf-profile",
    "ssh-filter-profile",
)
PROTOCOL_BLOCKS = ("https", "ftps", "imaps", "pop3s", "smtps")
_POLICY = "firewall/policy"
_SSL = "firewall/ssl-ssh-profile"
_MAIL_PORTS = frozenset({25, 465, 587, 110, 995, 143, 993, 119, 563})
# 2 GB units on 7.6.5+ (admin guide 536273): profiles refused in any policy, and in proxy policies.
_NEVER_ON_SMALL = ("waf-profile", "icap-profile", "ssh-filter-profile")
_NOT_IN_PROXY_ON_SMALL = ("dnsfilter-profile", "webfilter-profile", "voip-profile")


def policy_based(store: ConfigStore, vdom: str) -> bool:
    """Whether ``vdom`` runs NGFW policy-based mode."""
    return store.singleton(vdom, "system/settings").get("ngfw-mode") == "policy-based"


def inspects_all(profile: Mapping[str, Any]) -> bool:
    ssl = profile.get("ssl", {})
    return isinstance(ssl, Mapping) and ssl.get("inspect-all", "disable") != "disable"


def _parse_error(attr: str, why: str) -> CmdbError:
    return CmdbError.invalid(f"{why}\ncommand parse error before '{attr}'")


def _policy_based_policy(store: ConfigStore, vdom: str, obj: Mapping[str, Any]) -> None:
    if not policy_based(store, vdom):
        return
    for attr in PROFILE_FIELDS:
        if obj.get(attr):
            raise _parse_error(
                attr, "security profiles are set on firewall security-policy in policy-based mode"
            )
    if obj.get("inspection-mode") == "proxy" or obj.get("profile-type") == "group":
        raise _parse_error("inspection-mode", "policy-based mode inspects in flow mode only")


def _ports_of(store: ConfigStore, vdom: str, service: str, depth: int = 0) -> set[int] | None:
    """TCP ports a service (or service group) names; None when it is not plain TCP ports."""
    if store.exists(vdom, "firewall.service/custom", service):
        ranges = str(store.get(vdom, "firewall.service/custom", service).get("tcp-portrange", "")).split()
        ports: set[int] = set()
        for item in ranges:
            low, _, high = item.split(":")[0].partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                return None
            ports |= set(range(int(low), int(high or low) + 1))
        return ports or None
    if depth < 3 and store.exists(vdom, "firewall.service/group", service):
        members = store.get(vdom, "firewall.service/group", service).get("member", [])
        found = [_ports_of(store, vdom, m["name"], depth + 1) for m in members]
        return None if any(p is None for p in found) else set().union(*(p for p in found if p))
    return None


def _mail_proxy_policy(store: ConfigStore, vdom: str, obj: Mapping[str, Any]) -> None:
    for attr in _NEVER_ON_SMALL:
        if obj.get(attr):
            raise _parse_error(attr, f"{attr} is not supported on this model")
    if obj.get("inspection-mode") != "proxy":
        return
    for attr in _NOT_IN_PROXY_ON_SMALL:
        if obj.get(attr):
            raise _parse_error(attr, f"{attr} is not supported in a proxy policy on this model")
    # A proxy policy needs a mail service (SMTP(S), POP3(S), IMAP(S), NNTP); non-mail services
    # beside it are accepted, their traffic is dropped (the data plane here only carries SMTP).
    services = [_ports_of(store, vdom, s["name"]) for s in obj.get("service", [])]
    if not any(ports and ports <= _MAIL_PORTS for ports in services):
        raise CmdbError.invalid("proxy inspection on this model needs at least one mail service")
    name = str(obj.get("ssl-ssh-profile", ""))
    if not store.exists(vdom, _SSL, name):
        return
    if inspects_all(store.get(vdom, _SSL, name)):
        raise CmdbError.invalid(
            f"SSL profile {name} inspects all ports: not allowed in a proxy policy on this model"
        )


def _mail_proxy_profile(store: ConfigStore, vdom: str, obj: Mapping[str, Any]) -> None:
    if not inspects_all(obj):
        return
    for policy in store.members(vdom, _POLICY):
        if policy.get("inspection-mode") == "proxy" and policy.get("ssl-ssh-profile") == obj.get("name"):
            raise CmdbError.invalid(
                f"policy {policy['policyid']} is a proxy policy: its SSL profile may not inspect all ports "
                "on this model"
            )


def _hidden_blocks(body: Mapping[str, Any], obj: Mapping[str, Any]) -> None:
    if not inspects_all(obj):
        return
    for attr in PROTOCOL_BLOCKS:
        if attr in body:
            raise _parse_error(attr, "per-protocol settings are hidden while ssl inspect-all is set")


def check_write(
    store: ConfigStore, vdom: str, spec: ObjectSpec, body: Mapping[str, Any], obj: Mapping[str, Any]
) -> None:
    """Raise ``CmdbError`` when the unit refuses this write of ``obj`` (built from ``body``)."""
    mail_proxy_only = store.schema.model.proxy_mail_only(store.schema.version)
    if spec.path == _POLICY:
        _policy_based_policy(store, vdom, obj)
        if mail_proxy_only:
            _mail_proxy_policy(store, vdom, obj)
    elif spec.path == _SSL:
        if mail_proxy_only:
            _mail_proxy_profile(store, vdom, obj)
        if store.schema.strict:
            _hidden_blocks(body, obj)
