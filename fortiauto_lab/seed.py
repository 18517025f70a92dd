"""The state every mock FortiGate starts in: factory objects plus the field report's working mail setup.

``server.py`` builds one template store per lab (``seed_template``) and gives each
device its own copy; ``POST /__lab__/reset`` copies it again. Per vdom: the factory
certificates, the built-in SSL/SSH profiles (three read-only), ``default`` protocol
options, AV and email filter profiles (the latter with ``log-all`` off and the flow
feature set), services, the ``always`` schedule, and an inbound SMTP path WAN -> VIP
with certificate-inspection and default UTM profiles: mail flows, nothing is logged.
That is the "works" baseline fortiauto must change without breaking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fortiauto_lab.pki import CertKey, issue_cert, make_ca
from fortiauto_lab.release import Release
from fortiauto_lab.schema import Schema
from fortiauto_lab.store import ConfigStore

__all__ = ["MAIL_SITES", "VDOMS", "FactoryCerts", "MailSite", "make_factory_certs", "seed_template"]

VDOMS = ("root", "dmz")


@dataclass(frozen=True)
class MailSite:
    """One inbound mail path of the seed: which vdom, VIP, interfaces and addresses it uses."""

    vdom: str
    vip: str
    policy_name: str
    extip: str
    mappedip: str
    wan: str
    lan: str
    server: str  # mail server address object name


MAIL_SITES = (
    MailSite(
        "root", "vip-mx1", "inbound-smtp", "203.0.113.10", "10.0.1.25", "wan1", "internal", "mx1-internal"
    ),
    MailSite(
        "dmz", "vip-mx2", "inbound-smtp-dmz", "203.0.113.20", "10.0.2.25", "wan2", "dmz", "mx2-internal"
    ),
)


@dataclass(frozen=True)
class FactoryCerts:
    """The certificates a FortiGate ships with; ``ca_ssl`` doubles as the lab's inspection CA."""

    factory: CertKey
    ssl: CertKey
    ca_ssl: CertKey
    ca_untrusted: CertKey


def make_factory_certs() -> FactoryCerts:
    """Mint the factory certificates once per lab (EC, so a lab starts fast)."""
    ca_ssl = make_ca("FGVM64-Fortinet_CA_SSL", organisation="Fortinet")
    ca_untrusted = make_ca("FGVM64-Fortinet_CA_Untrusted", organisation="Fortinet")
    return FactoryCerts(
        factory=issue_cert(ca_ssl, "FGVM64-Factory", organisation="Fortinet"),
        ssl=issue_cert(ca_ssl, "FGVM64-SSL", organisation="Fortinet"),
        ca_ssl=ca_ssl,
        ca_untrusted=ca_untrusted,
    )


def _certificates(store: ConfigStore, vdom: str, certs: FactoryCerts) -> None:
    comments = {
        "Fortinet_CA_SSL": "This is the default CA certificate the SSL Inspection will use when generating "
        "new server certificates.",
        "Fortinet_CA_Untrusted": "This is the default CA certificate the SSL Inspection will use when "
        "generating new server certificates for untrusted origin servers.",
        "Fortinet_Factory": "This is the factory certificate of this unit.",
        "Fortinet_SSL": "This is the default server certificate for this unit.",
    }
    pairs = {
        "Fortinet_CA_SSL": certs.ca_ssl,
        "Fortinet_CA_Untrusted": certs.ca_untrusted,
        "Fortinet_Factory": certs.factory,
        "Fortinet_SSL": certs.ssl,
    }
    for name, pair in pairs.items():
        body = {
            "name": name,
            "comments": comments[name],
            "certificate": pair.cert_pem,
            "private-key": pair.key_pem,
            "range": "global",
            "source": "factory",
        }
        store.seed(vdom, "vpn.certificate/local", body)


def _services(store: ConfigStore, vdom: str) -> None:
    services: list[dict[str, Any]] = [
        {"name": "ALL", "category": "General", "protocol": "IP"},
        {"name": "ALL_TCP", "category": "General", "tcp-portrange": "1-65535"},
        {"name": "ALL_ICMP", "category": "General", "protocol": "ICMP"},
        {"name": "DNS", "category": "Network Services", "tcp-portrange": "53", "udp-portrange": "53"},
        {"name": "HTTP", "category": "Web Access", "tcp-portrange": "80"},
        {"name": "HTTPS", "category": "Web Access", "tcp-portrange": "443"},
        {"name": "SSH", "category": "Remote Access", "tcp-portrange": "22"},
        {"name": "SMTP", "category": "Email", "tcp-portrange": "25"},
        {"name": "SMTPS", "category": "Email", "tcp-portrange": "465"},
        {"name": "SUBMISSION", "category": "Email", "tcp-portrange": "587"},
        {"name": "IMAP", "category": "Email", "tcp-portrange": "143"},
        {"name": "IMAPS", "category": "Email", "tcp-portrange": "993"},
        {"name": "POP3", "category": "Email", "tcp-portrange": "110"},
        {"name": "POP3S", "category": "Email", "tcp-portrange": "995"},
    ]
    for body in services:
        store.seed(vdom, "firewall.service/custom", body)
    members = [{"name": n} for n in ("DNS", "IMAP", "IMAPS", "POP3", "POP3S", "SMTP", "SMTPS")]
    store.seed(vdom, "firewall.service/group", {"name": "Email Access", "member": members})
    week = "sunday monday tuesday wednesday thursday friday saturday"
    store.seed(vdom, "firewall.schedule/recurring", {"name": "always", "day": week})
    store.seed(vdom, "firewall.schedule/recurring", {"name": "none", "day": "none"})


def _ssl_profiles(store: ConfigStore, vdom: str, version: Release) -> None:
    off = {"status": "disable"}
    deep = {"status": "deep-inspection"}
    mail_off = {"ftps": off, "imaps": off, "pop3s": off, "smtps": off}
    mail_deep = {"ftps": deep, "imaps": deep, "pop3s": deep, "smtps": deep}
    exempt = [{"id": 1, "fortiguard-category": 31}, {"id": 2, "fortiguard-category": 33}]
    profiles: list[dict[str, Any]] = [
        {
            "name": "certificate-inspection",
            "comment": "Read-only SSL handshake inspection profile.",
            "https": {"status": "certificate-inspection"},
            "ssh": off,
        }
        | mail_off,
        {"name": "deep-inspection", "comment": "Read-only deep inspection profile.", "https": deep}
        | mail_deep
        | {"ssl-exempt": exempt},
        {"name": "custom-deep-inspection", "comment": "Customizable deep inspection profile.", "https": deep}
        | mail_deep
        | {"ssl-exempt": exempt},
        {"name": "no-inspection", "comment": "Read-only profile that does no inspection.", "https": off}
        | mail_off,
    ]
    for body in profiles:
        store.seed(vdom, "firewall/ssl-ssh-profile", body)


def _utm_profiles(store: ConfigStore, vdom: str, version: Release) -> None:
    smtp_av = {"av-scan": "block"} if version.has("antivirus.smtp-av-scan") else {"options": "scan"}
    antivirus = {"name": "default", "comment": "Scan files and block viruses.", "smtp": smtp_av}
    store.seed(vdom, "antivirus/profile", antivirus)
    # The factory email filter profile logs nothing per message: the KB's starting point.
    emailfilter = {"name": "default", "comment": "Malware and phishing URL filtering."}
    if "feature-set" in store.schema.spec("emailfilter/profile").fields:
        emailfilter["feature-set"] = "flow"
    store.seed(vdom, "emailfilter/profile", emailfilter)
    store.seed(
        vdom, "firewall/profile-protocol-options", {"name": "default", "comment": "All default services."}
    )


def _mail_path(store: ConfigStore, site: MailSite) -> None:
    vdom = site.vdom
    store.seed(vdom, "firewall/address", {"name": "all"})
    store.seed(vdom, "firewall/address", {"name": site.server, "subnet": f"{site.mappedip}/32"})
    vip = {
        "name": site.vip,
        "comment": f"inbound mail to {site.server}",
        "extip": site.extip,
        "mappedip": [{"range": site.mappedip}],
        "extintf": site.wan,
    }
    store.seed(vdom, "firewall/vip", vip)
    policy = {
        "policyid": 1,
        "name": site.policy_name,
        "srcintf": [{"name": site.wan}],
        "dstintf": [{"name": site.lan}],
        "srcaddr": [{"name": "all"}],
        "dstaddr": [{"name": site.vip}],
        "service": [{"name": "SMTP"}, {"name": "SMTPS"}],
        "action": "accept",
        "schedule": "always",
        "inspection-mode": "flow",
        "utm-status": "enable",
        "ssl-ssh-profile": "certificate-inspection",
        "av-profile": "default",
        "emailfilter-profile": "default",
        "profile-protocol-options": "default",
        "logtraffic": "utm",
    }
    store.seed(vdom, "firewall/policy", policy)


def _outbound(store: ConfigStore) -> None:
    policy = {
        "policyid": 2,
        "name": "outbound-internet",
        "srcintf": [{"name": "internal"}],
        "dstintf": [{"name": "wan1"}],
        "srcaddr": [{"name": "all"}],
        "dstaddr": [{"name": "all"}],
        "service": [{"name": "ALL"}],
        "action": "accept",
        "schedule": "always",
        "nat": "enable",
        "logtraffic": "all",
    }
    store.seed("root", "firewall/policy", policy)


def _system(store: ConfigStore) -> None:
    for vdom in VDOMS:
        store.seed(vdom, "system/vdom", {"name": vdom, "short-name": vdom})
    interfaces = [
        ("wan1", "root", "wan", "203.0.113.1/24"),
        ("internal", "root", "lan", "10.0.1.1/24"),
        ("wan2", "dmz", "wan", "203.0.113.129/25"),
        ("dmz", "dmz", "lan", "10.0.2.1/24"),
    ]
    for name, vdom, role, ip in interfaces:
        body = {"name": name, "vdom": vdom, "role": role, "ip": ip, "type": "physical"}
        if role == "lan":
            body["allowaccess"] = "ping https ssh"
        store.seed("root", "system/interface", body)


def seed_template(schema: Schema, certs: FactoryCerts) -> ConfigStore:
    """A store holding the initial state; devices take ``copy()``s of it."""
    store = ConfigStore(schema, VDOMS, uuid_seed="template")
    _system(store)
    for vdom in VDOMS:
        _certificates(store, vdom, certs)
        _services(store, vdom)
        _ssl_profiles(store, vdom, schema.version)
        _utm_profiles(store, vdom, schema.version)
    for site in MAIL_SITES:
        _mail_path(store, site)
    _outbound(store)
    return store
