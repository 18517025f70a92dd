"""Device states that shape a configuration: NGFW policy-based mode, profile groups, a shared SSL profile.

Set like faults (``--faults fgt-001:ngfw-policy-based=dmz``, or the control API); ``device.py``
applies them to a fresh copy of the seed whenever they change, so a state always describes
the configuration the unit starts from. Each function writes what a real unit in that
situation holds (seed-level writes, no revision):

- ``ngfw-policy-based``: ``system/settings`` ``ngfw-mode policy-based``; every policy of the
  VDOM keeps its match and SSL profile, its security profiles move to a
  ``firewall/security-policy`` with the same id (FortiOS "NGFW policy-based mode": the
  "SSL Inspection & Authentication" policy plus security policies).
- ``profile-group``: the VDOM's mail policy applies profile group ``mail-group`` (its former
  profiles) with ``profile-type group``; what is bound on the policy itself is then unused.
- ``shared-ssl-profile``: ``protect-mx1`` already exists in replace mode presenting another
  site's certificate ``www-example`` for an HTTPS VIP's policy, so a tool that replaces the
  whole ``server-cert`` list breaks that site.
- ``hairpin``: every mail VIP also has a policy from its inside interface (``hairpin-smtp``,
  flow, certificate inspection, no UTM), as units whose inside hosts reach the mail server by
  its public address have; ``device.py`` then matches policies on the interface a connection
  comes in on (only the state's address comes in on the VIP's external interface), so a probe
  from inside passes whatever the inbound policy does.
"""

from __future__ import annotations

from typing import Any

from fortiauto_lab.pki import CertKey, issue_cert
from fortiauto_lab.rules import PROFILE_FIELDS
from fortiauto_lab.seed import MAIL_SITES
from fortiauto_lab.store import ConfigStore

__all__ = ["GROUP_NAME", "HAIRPIN_POLICY", "SHARED_CERT", "SHARED_PROFILE", "make_shared_cert", "shape_store"]

GROUP_NAME = "mail-group"
SHARED_PROFILE = "protect-mx1"
SHARED_CERT = "www-example"
HAIRPIN_POLICY = "hairpin-smtp"
_POLICY = "firewall/policy"
_MATCH = ("name", "srcintf", "dstintf", "srcaddr", "dstaddr", "service", "action", "schedule", "logtraffic")


def make_shared_cert(ca: CertKey) -> CertKey:
    """The other site's certificate a shared SSL profile carries (one per lab)."""
    return issue_cert(ca, "www.example.test", sans=("www.example.test",))


def _policy_based(store: ConfigStore, vdom: str) -> None:
    store.seed(vdom, "system/settings", {"ngfw-mode": "policy-based"})
    for policy in store.members(vdom, _POLICY):
        security: dict[str, Any] = {k: policy[k] for k in _MATCH if k in policy}
        security |= {k: policy[k] for k in PROFILE_FIELDS if policy.get(k)}
        security["policyid"] = policy["policyid"]
        if policy.get("profile-protocol-options"):
            security["profile-protocol-options"] = policy["profile-protocol-options"]
        store.seed(vdom, "firewall/security-policy", security)
        stripped = {k: v for k, v in policy.items() if k not in PROFILE_FIELDS}
        stripped |= {"inspection-mode": "flow", "profile-type": "single"}
        store.table(vdom, _POLICY)[policy["policyid"]] = stripped


def _mail_policy(store: ConfigStore, vdom: str) -> dict[str, Any] | None:
    site = next((s for s in MAIL_SITES if s.vdom == vdom), None)
    if site is None:
        return None
    return next((p for p in store.members(vdom, _POLICY) if p.get("name") == site.policy_name), None)


def _profile_group(store: ConfigStore, vdom: str) -> None:
    policy = _mail_policy(store, vdom)
    if policy is None:
        return
    group: dict[str, Any] = {"name": GROUP_NAME}
    for attr in ("ssl-ssh-profile", "profile-protocol-options", *PROFILE_FIELDS):
        if policy.get(attr):
            group[attr] = policy[attr]
    store.seed(vdom, "firewall/profile-group", group)
    store.seed(vdom, _POLICY, policy | {"profile-type": "group", "profile-group": GROUP_NAME})


def _shared_ssl_profile(store: ConfigStore, vdom: str, cert: CertKey) -> None:
    store.seed(
        vdom,
        "vpn.certificate/local",
        {"name": SHARED_CERT, "certificate": cert.cert_pem, "private-key": cert.key_pem, "source": "user"},
    )
    store.seed(vdom, "firewall/address", {"name": "www-internal", "subnet": "10.0.1.80/32"})
    store.seed(
        vdom,
        "firewall/vip",
        {"name": "vip-www", "extip": "203.0.113.11", "mappedip": [{"range": "10.0.1.80"}], "extintf": "any"},
    )
    certs: Any = [{"name": SHARED_CERT}]
    if not store.schema.version.has("ssl.server-cert-list"):
        certs = SHARED_CERT
    store.seed(
        vdom,
        "firewall/ssl-ssh-profile",
        {
            "name": SHARED_PROFILE,
            "comment": "shared: Protecting SSL Server for www",
            "server-cert-mode": "replace",
            "server-cert": certs,
            "https": {"status": "deep-inspection"},
            "smtps": {"status": "deep-inspection"},
        },
    )
    next_id = _next_policy_id(store, vdom)
    store.seed(
        vdom,
        _POLICY,
        {
            "policyid": next_id,
            "name": "inbound-https-www",
            "srcintf": [{"name": "any"}],
            "dstintf": [{"name": "any"}],
            "srcaddr": [{"name": "all"}],
            "dstaddr": [{"name": "vip-www"}],
            "service": [{"name": "HTTPS"}],
            "action": "accept",
            "schedule": "always",
            "inspection-mode": "flow" if _small_unit(store) else "proxy",
            "utm-status": "enable",
            "ssl-ssh-profile": SHARED_PROFILE,
        },
    )


def _next_policy_id(store: ConfigStore, vdom: str) -> int:
    return max((int(p["policyid"]) for p in store.members(vdom, _POLICY)), default=0) + 1


def _hairpin(store: ConfigStore) -> None:
    # The inbound policy's match, from the inside interface, with nothing inspected.
    for site in MAIL_SITES:
        inbound = _mail_policy(store, site.vdom)
        if inbound is None:
            continue
        name = HAIRPIN_POLICY if site.vdom == store.vdoms[0] else f"{HAIRPIN_POLICY}-{site.vdom}"
        match = {
            k: inbound[k] for k in ("srcaddr", "dstaddr", "service", "action", "schedule") if k in inbound
        }
        store.seed(
            site.vdom,
            _POLICY,
            match
            | {
                "policyid": _next_policy_id(store, site.vdom),
                "name": name,
                "srcintf": [{"name": site.lan}],
                "dstintf": [{"name": site.lan}],
                "nat": "enable",
                "inspection-mode": "flow",
                "utm-status": "disable",
                "ssl-ssh-profile": "certificate-inspection",
                "logtraffic": "all",
            },
        )


def _small_unit(store: ConfigStore) -> bool:
    """A 2 GB unit on 7.4.4+: no proxy inspection for web (hardware.py)."""
    model, release = store.schema.model, store.schema.version
    return model.proxy_removed(release) or model.proxy_mail_only(release)


def shape_store(
    store: ConfigStore,
    *,
    policy_based: str | None,
    profile_group: str | None,
    shared_ssl_profile: str | None,
    shared_cert: CertKey,
    hairpin: bool = False,
) -> None:
    """Apply the config-shaping states (each names its VDOM, None = off) to a fresh seed copy."""
    if hairpin:
        _hairpin(store)
    if shared_ssl_profile in store.vdoms:
        _shared_ssl_profile(store, shared_ssl_profile, shared_cert)
    if profile_group in store.vdoms:
        _profile_group(store, profile_group)
    if policy_based in store.vdoms:
        _policy_based(store, policy_based)
