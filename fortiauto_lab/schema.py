"""The lab's CMDB schema: which objects and fields each FortiOS version has.

The REST side of the lab asks this module which object types a version serves
(``build_schema``), how an object is shown (``Schema.render``: ``q_origin_key``, masked
secrets, ports as the version prints them) and what ``?action=schema`` answers. Field
names and version switches follow docs/reference/fortios-objects.md ("Gotchas"):
``log`` vs ``log-all``, ``spambwl`` vs ``spambal``, ``server-cert`` string vs list,
``whitelist`` vs ``allowlist``, ``dlp-sensor`` vs ``dlp-profile``, VIP ``status`` and the
7.0.2 ``ssl-anomaly-log`` rename. The field model itself lives in ``fields.py``. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fortiauto_lab.fields import ANY_IP, NULL_UUID, CmdbError, Field, ObjectSpec, mask_secret
from fortiauto_lab.hardware import DEFAULT_MODEL, Model
from fortiauto_lab.logsettings import log_setting_specs
from fortiauto_lab.release import Release
from fortiauto_lab.rules import PROTOCOL_BLOCKS, inspects_all

__all__ = ["FACTORY_CERTS", "Schema", "build_schema", "schema_json"]


@dataclass(frozen=True)
class Schema:
    """Every object type one FortiOS version serves, keyed by CMDB path."""

    version: Release
    objects: Mapping[str, ObjectSpec]
    model: Model = DEFAULT_MODEL
    # Conservative readings of undocumented behaviour (the default; ``lab up --lenient`` turns
    # them off, see rules.py and device.py): per-protocol SSL blocks hidden beside inspect-all,
    # no log without spam checks.
    strict: bool = True

    def spec(self, path: str) -> ObjectSpec:
        try:
            return self.objects[path]
        except KeyError:
            raise CmdbError.not_found() from None

    def render(self, spec: ObjectSpec, obj: Mapping[str, Any]) -> dict[str, Any]:
        """An object as GET shows it: ``q_origin_key`` first after the key, secrets masked."""
        out: dict[str, Any] = {}
        if spec.category == "table" and spec.mkey:
            out[spec.mkey] = obj[spec.mkey]
            out["q_origin_key"] = obj[spec.mkey]
        out.update(self._render_fields(spec.fields, obj))
        if self.strict and spec.path == "firewall/ssl-ssh-profile" and inspects_all(obj):
            # FortiOS hides the per-protocol blocks while ssl inspect-all is set (rules.py).
            for block in PROTOCOL_BLOCKS:
                out.pop(block, None)
        return out

    def _render_fields(self, fields: Mapping[str, Field], obj: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, value in obj.items():
            spec = fields.get(attr)
            out[attr] = value if spec is None else self.render_value(spec, value)
        return out

    def render_value(self, spec: Field, value: Any) -> Any:
        if spec.kind == "secret":
            return mask_secret(value)
        if spec.kind == "names":
            return [{"name": v["name"], "q_origin_key": v["name"]} for v in value]
        if spec.kind == "table":
            return [
                {spec.mkey: row[spec.mkey], "q_origin_key": row[spec.mkey]}
                | self._render_fields(spec.fields, row)
                for row in value
            ]
        if spec.kind == "container":
            return self._render_fields(spec.fields, value)
        if spec.kind == "ports":
            return self._render_ports(value)
        return value

    def _render_ports(self, ports: list[int]) -> Any:
        # 7.x prints port lists as JSON arrays; 6.4 builds printed a scalar, "" when unset (TF#222).
        if self.version.has("rest.ports-as-array"):
            return list(ports)
        if not ports:
            return ""
        return ports[0] if len(ports) == 1 else " ".join(str(p) for p in ports)


# --- field helpers --------------------------------------------------------------------


def _s(size: int = 35, default: str = "", *, required: bool = False) -> Field:
    return Field("string", default, size=size, required=required)


def _opt(*options: str, default: str) -> Field:
    return Field("option", default, options=options)


def _en(default: str = "disable") -> Field:
    return _opt("enable", "disable", default=default)


def _num(default: int = 0, lo: int | None = 0, hi: int | None = 4294967295) -> Field:
    return Field("integer", default, minimum=lo, maximum=hi)


def _multi(*options: str, default: str = "") -> Field:
    return Field("multi", default, options=options)


def _ports(*default: int) -> Field:
    return Field("ports", list(default))


def _names(*refs: str, specials: tuple[str, ...] = (), required: bool = False, default: Any = None) -> Field:
    return Field("names", list(default or []), refs=refs, specials=specials, required=required)


def _ref(*refs: str, default: str = "", specials: tuple[str, ...] = (), required: bool = False) -> Field:
    return Field("ref", default, size=79, refs=refs, specials=specials, required=required)


def _box(fields: Mapping[str, Field]) -> Field:
    return Field("container", None, fields=fields)


def _table_of(mkey: str, fields: Mapping[str, Field], *, mkey_int: bool = False) -> Field:
    return Field("table", [], fields=fields, mkey=mkey, mkey_int=mkey_int)


_UUID = Field("uuid", NULL_UUID)
_CERTS = ("vpn.certificate/local",)
_ADDRESSES = ("firewall/address", "firewall/addrgrp")
_INTERFACES = ("system/interface",)


# --- objects --------------------------------------------------------------------------


def _emailfilter(v: Release) -> ObjectSpec:
    log = "log" if v.has("emailfilter.log-field-is-log") else "log-all"
    bal = "spambal" if v.has("emailfilter.spambal") else "spambwl"
    tag_type = _multi("subject", "header", "spaminfo", default="subject spaminfo")
    pop_imap = {
        log: _en(),
        "action": _opt("pass", "tag", default="tag"),
        "tag-type": tag_type,
        "tag-msg": _s(63, "Spam"),
    }
    smtp = {
        log: _en(),
        "action": _opt("pass", "tag", "discard", default="discard"),
        "tag-type": tag_type,
        "tag-msg": _s(63, "Spam"),
        "hdrip": _en(),
        "local-override": _en(),
    }
    fields: dict[str, Field] = {
        "name": _s(47, required=True),
        "comment": _s(255),
        "replacemsg-group": _s(35),
        "spam-log": _en("enable"),
        "spam-log-fortiguard-response": _en(),
        "spam-filtering": _en(),
        "external": _en(),
        "options": _multi(
            "bannedword",
            bal,
            "spamfsip",
            "spamfssubmit",
            "spamfschksum",
            "spamfsurl",
            "spamhelodns",
            "spamraddrdns",
            "spamrbl",
            "spamhdrcheck",
            "spamfsphish",
        ),
        "spam-bal-table" if v.has("emailfilter.spambal") else "spam-bwl-table": _num(),
        "spam-bword-threshold": _num(10),
        "spam-bword-table": _num(),
        "spam-mheader-table": _num(),
        "spam-rbl-table": _num(),
        "spam-iptrust-table": _num(),
        "imap": _box(pop_imap),
        "pop3": _box(pop_imap),
        "smtp": _box(smtp),
        "mapi": _box({log: _en(), "action": _opt("pass", "discard", default="pass")}),
        "msn-hotmail": _box({log: _en()}),
        "yahoo-mail": _box({log: _en()}),
        "gmail": _box({log: _en()}),
    }
    if v.has("emailfilter.other-webmails"):
        fields["other-webmails"] = _box({log: _en()})
    if v.has("emailfilter.feature-set"):
        fields["feature-set"] = _opt("flow", "proxy", default="flow")
    if v.has("emailfilter.fabric-object"):
        fields["uuid"] = _UUID
        fields["fabric-object"] = _en()
    return ObjectSpec("emailfilter/profile", fields, access_group="utmgrp", q_type=349)


def _tls_checks(v: Release, proto: str) -> dict[str, Field]:
    mail = proto in ("imaps", "pop3s", "smtps")
    out: dict[str, Field] = {
        "client-certificate": _opt("bypass", "inspect", "block", default="inspect" if mail else "bypass"),
        "unsupported-ssl-cipher": _opt("allow", "block", default="allow"),
        "unsupported-ssl-negotiation": _opt("allow", "block", default="allow"),
        "expired-server-cert": _opt("allow", "block", "ignore", default="block"),
        "revoked-server-cert": _opt("allow", "block", "ignore", default="block"),
        "untrusted-server-cert": _opt("allow", "block", "ignore", default="allow"),
        "cert-validation-timeout": _opt("allow", "block", "ignore", default="allow"),
        "cert-validation-failure": _opt("allow", "block", "ignore", default="block"),
        "sni-server-cert-check": _opt("enable", "strict", "disable", default="enable"),
    }
    if v.has("ssl.unsupported-ssl-version"):
        inspect = ("inspect",) if v.has("ssl.unsupported-ssl-version-inspect") else ()
        out["unsupported-ssl-version"] = _opt("allow", "block", *inspect, default="block")
    if proto in ("https", "ssl") and v.has(f"ssl.cert-probe-failure-{proto}"):
        out["cert-probe-failure"] = _opt("allow", "block", default="allow")
    if proto in ("https", "ftps", "ssl") and v.has("ssl.min-allowed-ssl-version"):
        versions = ("ssl-3.0", "tls-1.0", "tls-1.1", "tls-1.2", "tls-1.3")
        out["min-allowed-ssl-version"] = _opt(*versions, default="tls-1.1")
    if proto in ("https", "ssl") and v.has("ssl.encrypted-client-hello"):
        out["encrypted-client-hello"] = _opt("allow", "block", default="block")
    return out


def _ssl_ssh_profile(v: Release) -> ObjectSpec:
    deep = ("disable", "deep-inspection")
    after = {"proxy-after-tcp-handshake": _en()}

    def proto(
        name: str, port: int, statuses: tuple[str, ...] = deep, extra: Mapping[str, Field] = after
    ) -> Field:
        return _box(
            {"ports": _ports(port), "status": _opt(*statuses, default="deep-inspection")}
            | dict(extra)
            | _tls_checks(v, name)
        )

    https_extra = dict(after)
    if v.has("ssl.quic-action"):
        https_extra["quic"] = _opt("inspect", "bypass", "block", default="inspect")
    elif v.has("ssl.quic-enable"):
        https_extra["quic"] = _en("enable")
    if v.has("ssl.udp-not-quic"):
        https_extra["udp-not-quic"] = _opt("inspect", "bypass", "block", default="inspect")
    fields: dict[str, Field] = {
        "name": _s(47, required=True),
        "comment": _s(255),
        "server-cert-mode": _opt("re-sign", "replace", default="re-sign"),
        # server-cert: one name up to 6.4, a list of {name} from 7.0 (fortios-objects.md 2.1).
        "server-cert": (
            _names(*_CERTS, default=[{"name": "Fortinet_SSL"}])
            if v.has("ssl.server-cert-list")
            else _ref(*_CERTS, default="Fortinet_SSL")
        ),
        "caname": _ref(*_CERTS, default="Fortinet_CA_SSL"),
        "untrusted-caname": _ref(*_CERTS, default="Fortinet_CA_Untrusted"),
        "use-ssl-server": _en(),
        "ssl-server": _table_of(
            "id",
            {"id": _num(), "ip": Field("ip", ANY_IP)}
            | {
                f"{p}-client-certificate": _opt("bypass", "inspect", "block", default="bypass")
                for p in ("https", "smtps", "pop3s", "imaps", "ftps", "ssl-other")
            },
            mkey_int=True,
        ),
        "ssl-exempt": _table_of(
            "id",
            {
                "id": _num(),
                "type": _opt(
                    "fortiguard-category",
                    "address",
                    "address6",
                    "wildcard-fqdn",
                    "regex",
                    default="fortiguard-category",
                ),
                "fortiguard-category": _num(0, 0, 255),
                "address": _ref(*_ADDRESSES),
                "address6": _s(79),
                "wildcard-fqdn": _s(79),
                "regex": _s(255),
            },
            mkey_int=True,
        ),
        "allowlist" if v.has("ssl.allowlist") else "whitelist": _en(),
        "block-blocklisted-certificates"
        if v.has("ssl.block-blocklisted")
        else "block-blacklisted-certificates": _en("enable"),
        "ssl-anomaly-log" if v.has("ssl.anomaly-log") else "ssl-anomalies-log": _en("enable"),
        "ssl-exemption-log" if v.has("ssl.anomaly-log") else "ssl-exemptions-log": _en(),
        "ssl-negotiation-log": _en("enable"),
        "rpc-over-https": _en(),
        "mapi-over-https": _en(),
        "https": proto("https", 443, ("disable", "certificate-inspection", "deep-inspection"), https_extra),
        "ftps": proto("ftps", 990, extra={}),
        "imaps": proto("imaps", 993),
        "pop3s": proto("pop3s", 995),
        "smtps": proto("smtps", 465),
        "ssh": _box(
            {
                "ports": _ports(22),
                "status": _opt(*deep, default="disable"),
                "inspect-all": _opt(*deep, default="disable"),
                "unsupported-version": _opt("bypass", "block", default="bypass"),
                "ssh-tun-policy-check": _en(),
                "ssh-algorithm": _opt("compatible", "high-encryption", default="compatible"),
            }
        ),
        "ssl": _box(
            {"inspect-all": _opt("disable", "certificate-inspection", "deep-inspection", default="disable")}
            | _tls_checks(v, "ssl")
        ),
    }
    if v.has("ssl.supported-alpn"):
        fields["supported-alpn"] = _opt("http1-1", "http2", "all", "none", default="all")
    if v.has("ssl.dot"):
        fields["dot"] = _box({"status": _opt(*deep, default="disable")} | _tls_checks(v, "dot"))
    if v.has("ssl.server-cert-log"):
        fields["ssl-server-cert-log"] = _en()
        fields["ssl-handshake-log"] = _en()
    if v.has("ssl.exemption-ip-rating"):
        fields["ssl-exemption-ip-rating"] = _en("enable")
    if v.has("ssl.ech-outer-sni"):
        fields["ech-outer-sni"] = _table_of("name", {"name": _s(35), "sni": _s(255)})
    builtins = frozenset({"certificate-inspection", "deep-inspection", "no-inspection"})
    return ObjectSpec(
        "firewall/ssl-ssh-profile",
        fields,
        read_only=builtins,
        undeletable=builtins | {"custom-deep-inspection"},
        access_group="utmgrp",
        q_type=344,
    )


def _protocol_options(v: Release) -> ObjectSpec:
    def mail(port: int, options: tuple[str, ...], default: str) -> Field:
        box: dict[str, Field] = {
            "ports": _ports(port),
            "status": _en("enable"),
            "inspect-all": _en(),
            "options": _multi(*options, default=default),
            "oversize-limit": _num(10, 1),
            "uncompressed-oversize-limit": _num(10),
            "uncompressed-nest-limit": _num(12, 2, 100),
            "scan-bzip2": _en("enable"),
        }
        # proxy-after-tcp-handshake is 6.4+ ([A]); the lab plays nothing older.
        if v.at_least(6, 4):
            box["proxy-after-tcp-handshake"] = _en()
        return _box(box)

    smtp = dict(mail(25, ("fragmail", "oversize", "splice"), "fragmail splice").fields)
    smtp |= {"server-busy": _en(), "ssl-offloaded": _opt("no", "yes", default="no")}
    web = ("clientcomfort", "servercomfort", "oversize", "chunkedbypass")
    fields: dict[str, Field] = {
        "name": _s(47, required=True),
        "comment": _s(255),
        "replacemsg-group": _s(35),
        "oversize-log": _en(),
        "switching-protocols-log": _en(),
        "rpc-over-http": _en(),
        "http": _box(
            {
                "ports": _ports(80),
                "status": _en("enable"),
                "inspect-all": _en(),
                "options": _multi(*web, default=""),
                "comfort-interval": _num(10, 1, 900),
                "comfort-amount": _num(1, 1, 65535),
                "oversize-limit": _num(10, 1),
            }
        ),
        "ftp": _box(
            {
                "ports": _ports(21),
                "status": _en("enable"),
                "inspect-all": _en(),
                "options": _multi(
                    "clientcomfort",
                    "oversize",
                    "splice",
                    "bypass-rest-command",
                    "bypass-mode-command",
                    default="splice",
                ),
                "comfort-interval": _num(10, 1, 900),
                "comfort-amount": _num(1, 1, 65535),
                "oversize-limit": _num(10, 1),
            }
        ),
        "imap": mail(143, ("fragmail", "oversize"), "fragmail"),
        "pop3": mail(110, ("fragmail", "oversize"), "fragmail"),
        "mapi": _box(
            {
                "ports": _ports(135),
                "status": _en("enable"),
                "options": _multi("fragmail", "oversize"),
                "oversize-limit": _num(10, 1),
            }
        ),
        "smtp": _box(smtp),
        "nntp": _box(
            {
                "ports": _ports(119),
                "status": _en("enable"),
                "inspect-all": _en(),
                "options": _multi("oversize", "splice", default="splice"),
                "oversize-limit": _num(10, 1),
            }
        ),
        "dns": _box({"ports": _ports(53), "status": _en("enable")}),
        "mail-signature": _box({"status": _en(), "signature": _s(1023)}),
    }
    return ObjectSpec(
        "firewall/profile-protocol-options", fields, undeletable=frozenset({"default"}), q_type=301
    )


def _policy(v: Release) -> ObjectSpec:
    sixfour = not v.has("policy.default-inspection-names")
    fields: dict[str, Field] = {
        "policyid": _num(0, 0, 4294967294),
        "name": _s(35),
        "uuid": _UUID,
        "srcintf": _names(*_INTERFACES, specials=("any",), required=True),
        "dstintf": _names(*_INTERFACES, specials=("any",), required=True),
        "srcaddr": _names(*_ADDRESSES, required=True),
        "dstaddr": _names(*_ADDRESSES, "firewall/vip", required=True),
        "srcaddr6": _names(),
        "dstaddr6": _names(),
        "internet-service": _en(),
        "internet-service-src": _en(),
        "action": _opt("accept", "deny", "ipsec", default="deny"),
        "send-deny-packet": _en(),
        "firewall-session-dirty": _opt("check-all", "check-new", default="check-all"),
        "status": _en("enable"),
        "schedule": _ref("firewall.schedule/recurring", required=True),
        "schedule-timeout": _en(),
        "service": _names("firewall.service/custom", "firewall.service/group", required=True),
        "tos": _s(8, "0x00"),
        "tos-mask": _s(8, "0x00"),
        "tos-negate": _en(),
        "anti-replay": _en("enable"),
        "tcp-session-without-syn": _opt("all", "data-only", "disable", default="disable"),
        "geoip-anycast": _en(),
        "utm-status": _en(),
        "inspection-mode": _opt("proxy", "flow", default="flow"),
        "http-policy-redirect": _en(),
        "ssh-policy-redirect": _en(),
        "profile-type": _opt("single", "group", default="single"),
        "profile-group": _ref("firewall/profile-group"),
        "profile-protocol-options": _ref(
            "firewall/profile-protocol-options", default="" if sixfour else "default"
        ),
        "ssl-ssh-profile": _ref("firewall/ssl-ssh-profile", default="" if sixfour else "no-inspection"),
        "av-profile": _ref("antivirus/profile"),
        "webfilter-profile": _s(35),
        "dnsfilter-profile": _s(35),
        "emailfilter-profile": _ref("emailfilter/profile"),
        "dlp-profile" if v.has("policy.dlp-profile") else "dlp-sensor": _s(35),
        "file-filter-profile": _s(35),
        "ips-sensor": _s(35),
        "application-list": _s(35),
        "voip-profile": _s(35),
        "icap-profile": _s(35),
        "cifs-profile": _s(35),
        "waf-profile": _s(35),
        "ssh-filter-profile": _s(35),
        "logtraffic": _opt("all", "utm", "disable", default="utm"),
        "logtraffic-start": _en(),
        "capture-packet": _en(),
        "auto-asic-offload": _en("enable"),
        "nat": _en(),
        "permit-any-host": _en(),
        "fixedport": _en(),
        "ippool": _en(),
        "poolname": _names(),
        "session-ttl": _s(16, "0"),
        "vlan-cos-fwd": _num(255, 0, 255),
        "vlan-cos-rev": _num(255, 0, 255),
        "groups": _names(),
        "users": _names(),
        "natip": Field("ipmask", f"{ANY_IP} {ANY_IP}"),
        "match-vip": _en(),
        "match-vip-only": _en(),
        "tcp-mss-sender": _num(0, 0, 65535),
        "tcp-mss-receiver": _num(0, 0, 65535),
        "comments": Field("text", "", size=1023),
        "label": _s(63),
        "global-label": _s(63),
        "srcaddr-negate": _en(),
        "dstaddr-negate": _en(),
        "service-negate": _en(),
        "timeout-send-rst": _en(),
        "block-notification": _en(),
        "replacemsg-override-group": _s(35),
    }
    return ObjectSpec(
        "firewall/policy", fields, mkey="policyid", mkey_int=True, access_group="fwgrp", q_type=340
    )


def _vip(v: Release) -> ObjectSpec:
    types = ["static-nat", "load-balance", "server-load-balance", "dns-translation", "fqdn"]
    if v.has("vip.access-proxy"):
        types.append("access-proxy")
    fields: dict[str, Field] = {
        "name": _s(79, required=True),
        "id": _num(),
        "uuid": _UUID,
        "comment": _s(255),
        "type": _opt(*types, default="static-nat"),
        "extip": Field("iprange", ANY_IP),
        "mappedip": _table_of("range", {"range": _s(79)}),
        "extintf": _ref(*_INTERFACES, default="any", specials=("any",)),
        "arp-reply": _en("enable"),
        "portforward": _en(),
        "protocol": _opt("tcp", "udp", "sctp", "icmp", default="tcp"),
        "extport": _s(47),
        "mappedport": _s(47),
        "portmapping-type": _opt("1-to-1", "m-to-n", default="1-to-1"),
        "nat-source-vip": _en(),
        "color": _num(0, 0, 32),
    }
    if v.has("vip.status"):
        fields["status"] = _en("enable")
    return ObjectSpec("firewall/vip", fields, access_group="fwgrp", q_type=355)


def _address(_: Release) -> ObjectSpec:
    fields: dict[str, Field] = {
        "name": _s(79, required=True),
        "uuid": _UUID,
        "type": _opt(
            "ipmask",
            "iprange",
            "fqdn",
            "geography",
            "wildcard",
            "dynamic",
            "interface-subnet",
            "mac",
            default="ipmask",
        ),
        "subnet": Field("ipmask", f"{ANY_IP} {ANY_IP}"),
        "start-ip": Field("ip", ANY_IP),
        "end-ip": Field("ip", ANY_IP),
        "fqdn": _s(255),
        "country": _s(2),
        "comment": _s(255),
        "associated-interface": _ref(*_INTERFACES),
        "color": _num(0, 0, 32),
        "allow-routing": _en(),
    }
    return ObjectSpec("firewall/address", fields, access_group="fwgrp", q_type=323)


def _addrgrp(_: Release) -> ObjectSpec:
    fields: dict[str, Field] = {
        "name": _s(79, required=True),
        "uuid": _UUID,
        "member": _names(*_ADDRESSES, required=True),
        "comment": _s(255),
        "exclude": _en(),
        "exclude-member": _names(*_ADDRESSES),
        "color": _num(0, 0, 32),
        "allow-routing": _en(),
    }
    return ObjectSpec("firewall/addrgrp", fields, access_group="fwgrp", q_type=326)


# The security profiles a policy, a security policy or a profile group can bind ([A]
# fortios_firewall_policy / _security_policy / _profile_group share these names).
def _profile_refs(v: Release) -> dict[str, Field]:
    return {
        "av-profile": _ref("antivirus/profile"),
        "webfilter-profile": _s(35),
        "dnsfilter-profile": _s(35),
        "emailfilter-profile": _ref("emailfilter/profile"),
        "dlp-profile" if v.has("policy.dlp-profile") else "dlp-sensor": _s(35),
        "file-filter-profile": _s(35),
        "ips-sensor": _s(35),
        "application-list": _s(35),
        "voip-profile": _s(35),
        "icap-profile": _s(35),
        "waf-profile": _s(35),
        "ssh-filter-profile": _s(35),
    }


def _security_policy(v: Release) -> ObjectSpec:
    """NGFW policy-based mode: the table carrying security profiles ([A] fortios_firewall_security_policy).

    In that mode ``firewall/policy`` only decides SSL inspection and authentication; traffic is
    matched again here, and the profiles of the matching security policy apply.
    """
    fields: dict[str, Field] = {
        "policyid": _num(0, 0, 4294967294),
        "name": _s(35),
        "uuid": _UUID,
        "srcintf": _names(*_INTERFACES, specials=("any",), required=True),
        "dstintf": _names(*_INTERFACES, specials=("any",), required=True),
        "srcaddr": _names(*_ADDRESSES, "firewall/vip"),
        "dstaddr": _names(*_ADDRESSES, "firewall/vip"),
        "service": _names("firewall.service/custom", "firewall.service/group"),
        "action": _opt("accept", "deny", default="deny"),
        "status": _en("enable"),
        "schedule": _ref("firewall.schedule/recurring", default="always"),
        "logtraffic": _opt("all", "utm", "disable", default="utm"),
        "profile-type": _opt("single", "group", default="single"),
        "profile-group": _ref("firewall/profile-group"),
        "profile-protocol-options": _ref("firewall/profile-protocol-options", default="default"),
        "comments": Field("text", "", size=1023),
    } | _profile_refs(v)
    return ObjectSpec(
        "firewall/security-policy", fields, mkey="policyid", mkey_int=True, access_group="fwgrp", q_type=341
    )


def _profile_group(v: Release) -> ObjectSpec:
    """Profiles a policy applies with ``profile-type group`` ([A] fortios_firewall_profile_group)."""
    fields: dict[str, Field] = {
        "name": _s(47, required=True),
        "profile-protocol-options": _ref("firewall/profile-protocol-options", default="default"),
        "ssl-ssh-profile": _ref("firewall/ssl-ssh-profile", default="certificate-inspection"),
    } | _profile_refs(v)
    return ObjectSpec("firewall/profile-group", fields, access_group="fwgrp", q_type=342)


def _settings(_: Release) -> ObjectSpec:
    """Per-VDOM settings; ``ngfw-mode`` switches a VDOM to policy-based ([A] fortios_system_settings)."""
    fields: dict[str, Field] = {
        "opmode": _opt("nat", "transparent", default="nat"),
        "ngfw-mode": _opt("profile-based", "policy-based", default="profile-based"),
        "central-nat": _en(),
        "comments": _s(255),
    }
    return ObjectSpec("system/settings", fields, category="complex", mkey=None, q_type=48)


def _certificate_ca(_: Release) -> ObjectSpec:
    """Imported CA certificates ([A] fortios_vpn_certificate_ca): intermediates a served chain needs."""
    fields: dict[str, Field] = {
        "name": _s(79, required=True),
        "ca": Field("text", ""),
        "range": _opt("global", "vdom", default="vdom"),
        "source": _opt("factory", "user", "bundle", default="user"),
        "ssl-inspection-trusted": _en("enable"),
        "trusted": _en("enable"),
        "auto-update-days": _num(),
        "last-updated": _num(),
    }
    return ObjectSpec("vpn.certificate/ca", fields, access_group="vpngrp", q_type=154)


FACTORY_CERTS = frozenset({"Fortinet_Factory", "Fortinet_SSL", "Fortinet_CA_SSL", "Fortinet_CA_Untrusted"})


def _certificate_local(v: Release) -> ObjectSpec:
    protocols = ["none", "scep", "cmpv2"] + (["acme2"] if v.has("certificate.acme2") else [])
    fields: dict[str, Field] = {
        "name": _s(35, required=True),
        "password": Field("secret", "", size=128),
        "comments": _s(511),
        "private-key": Field("secret", ""),
        "certificate": Field("text", ""),
        "csr": Field("text", ""),
        "state": Field("text", ""),
        "range": _opt("global", "vdom", default="vdom"),
        "source": _opt("factory", "user", "bundle", default="user"),
        "auto-regenerate-days": _num(),
        "auto-regenerate-days-warning": _num(),
        "name-encoding": _opt("printable", "utf8", default="printable"),
        "ike-localid": _s(63),
        "ike-localid-type": _opt("asn1dn", "fqdn", default="asn1dn"),
        "enroll-protocol": _opt(*protocols, default="none"),
        "last-updated": _num(),
    }
    return ObjectSpec(
        "vpn.certificate/local", fields, undeletable=FACTORY_CERTS, access_group="vpngrp", q_type=155
    )


def _antivirus(v: Release) -> ObjectSpec:
    smtp: dict[str, Field]
    if v.has("antivirus.smtp-av-scan"):
        smtp = {
            "av-scan": _opt("disable", "block", "monitor", default="disable"),
            "outbreak-prevention": _opt("disable", "block", "monitor", default="disable"),
        }
    else:
        smtp = {"options": _multi("scan", "avmonitor", "quarantine")}
    fields: dict[str, Field] = {
        "name": _s(47, required=True),
        "comment": _s(255),
        "replacemsg-group": _s(35),
        "feature-set": _opt("flow", "proxy", default="flow"),
        "av-virus-log": _en("enable"),
        "av-block-log": _en("enable"),
        "smtp": _box(smtp),
    }
    return ObjectSpec("antivirus/profile", fields, access_group="utmgrp", q_type=160)


def _service_custom(_: Release) -> ObjectSpec:
    fields: dict[str, Field] = {
        "name": _s(79, required=True),
        "proxy": _en(),
        "category": _s(63),
        "protocol": _opt(
            "TCP/UDP/SCTP", "ICMP", "ICMP6", "IP", "HTTP", "FTP", "CONNECT", "ALL", default="TCP/UDP/SCTP"
        ),
        "iprange": _s(64, ANY_IP),
        "fqdn": _s(255),
        "protocol-number": _num(0, 0, 254),
        "tcp-portrange": _s(255),
        "udp-portrange": _s(255),
        "sctp-portrange": _s(255),
        "comment": _s(255),
        "color": _num(0, 0, 32),
    }
    return ObjectSpec("firewall.service/custom", fields, access_group="fwgrp", q_type=314)


def _service_group(_: Release) -> ObjectSpec:
    fields: dict[str, Field] = {
        "name": _s(79, required=True),
        "member": _names("firewall.service/custom", "firewall.service/group"),
        "proxy": _en(),
        "comment": _s(255),
        "color": _num(0, 0, 32),
    }
    return ObjectSpec("firewall.service/group", fields, access_group="fwgrp", q_type=315)


def _schedule(_: Release) -> ObjectSpec:
    days = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "none")
    fields: dict[str, Field] = {
        "name": _s(31, required=True),
        "start": _s(5, "00:00"),
        "end": _s(5, "00:00"),
        "day": _multi(*days, default="none"),
        "color": _num(0, 0, 32),
    }
    return ObjectSpec("firewall.schedule/recurring", fields, access_group="fwgrp", q_type=318)


def _interface(_: Release) -> ObjectSpec:
    access = ("ping", "https", "ssh", "http", "telnet", "fgfm", "snmp", "radius-acct", "probe-response")
    fields: dict[str, Field] = {
        "name": _s(15, required=True),
        "vdom": _ref("system/vdom", required=True),
        "ip": Field("ipmask", f"{ANY_IP} {ANY_IP}"),
        "allowaccess": _multi(*access),
        "status": _opt("up", "down", default="up"),
        "type": _opt("physical", "vlan", "aggregate", "redundant", "tunnel", "loopback", default="vlan"),
        "alias": _s(25),
        "role": _opt("lan", "wan", "dmz", "undefined", default="undefined"),
        "description": _s(255),
    }
    return ObjectSpec("system/interface", fields, scope="global", access_group="netgrp", q_type=99)


def _vdom(_: Release) -> ObjectSpec:
    fields: dict[str, Field] = {"name": _s(31, required=True), "short-name": _s(11), "vcluster-id": _num()}
    return ObjectSpec("system/vdom", fields, scope="global", writable=False, q_type=85)


def _global(v: Release) -> ObjectSpec:
    fields: dict[str, Field] = {
        "hostname": _s(35),
        "alias": _s(35),
        "timezone": _s(8, "04"),
        "language": _opt("english", "french", "spanish", "japanese", default="english"),
        "gui-theme": _opt("green", "neutrino", "blue", "melongene", "mariner", default="neutrino"),
        "admintimeout": _num(5, 1, 480),
        "admin-sport": _num(443, 1, 65535),
        "admin-port": _num(80, 1, 65535),
        "admin-https-redirect": _en("enable"),
        "admin-lockout-threshold": _num(3, 1, 10),
        "admin-lockout-duration": _num(60, 1, 2147483647),
        "admin-server-cert": _ref(*_CERTS, default="self-sign", specials=("self-sign",)),
    }
    if v.has("auth.url-token-opt-in"):
        # 7.4.5 made URL tokens opt-in (KB "Configuring FortiGate 7.4.5 to allow access_token").
        fields["rest-api-key-url-query"] = _en()
    return ObjectSpec("system/global", fields, category="complex", mkey=None, scope="global", q_type=17)


def _ha(_: Release) -> ObjectSpec:
    fields: dict[str, Field] = {
        "group-id": _num(0, 0, 1023),
        "group-name": _s(32),
        "mode": _opt("standalone", "a-a", "a-p", default="standalone"),
        "password": Field("secret", ""),
        "hbdev": _s(255),
        "session-pickup": _en(),
        "override": _en(),
        "priority": _num(128, 0, 255),
        "monitor": _s(255),
    }
    return ObjectSpec("system/ha", fields, category="complex", mkey=None, scope="global", q_type=50)


def _central_management(_: Release) -> ObjectSpec:
    fields: dict[str, Field] = {
        "mode": _opt("normal", "backup", default="normal"),
        "type": _opt("fortimanager", "fortiguard", "none", default="none"),
        "fmg": _s(255),
        "serial-number": _s(255),
        "schedule-config-restore": _en("enable"),
        "allow-push-configuration": _en("enable"),
        "allow-remote-firmware-upgrade": _en("enable"),
        "include-default-servers": _en("enable"),
    }
    return ObjectSpec(
        "system/central-management", fields, category="complex", mkey=None, scope="global", q_type=49
    )


_BUILDERS: tuple[Callable[[Release], ObjectSpec], ...] = (
    _emailfilter,
    _ssl_ssh_profile,
    _protocol_options,
    _policy,
    _vip,
    _address,
    _addrgrp,
    _certificate_local,
    _antivirus,
    _service_custom,
    _service_group,
    _schedule,
    _interface,
    _vdom,
    _global,
    _ha,
    _central_management,
    _security_policy,
    _profile_group,
    _settings,
    _certificate_ca,
)


def _without(spec: ObjectSpec, attr: str) -> ObjectSpec:
    return replace(spec, fields={k: f for k, f in spec.fields.items() if k != attr})


def _flow_only(spec: ObjectSpec) -> ObjectSpec:
    fields = dict(spec.fields)
    fields["inspection-mode"] = _opt("flow", default="flow")
    return replace(spec, fields=fields)


def build_schema(version: Release, model: Model = DEFAULT_MODEL, *, strict: bool = True) -> Schema:
    """Every object the lab serves, with the fields ``version`` has on ``model``.

    A 2 GB unit on 7.4.4 up to 7.6.4 has no proxy inspection (``hardware.py``): no
    ``feature-set`` on the email filter profile, no ``inspection-mode proxy`` on a policy.
    """
    objects = {spec.path: spec for spec in (build(version) for build in _BUILDERS)}
    objects.update((spec.path, spec) for spec in log_setting_specs())
    if model.proxy_removed(version):
        objects["emailfilter/profile"] = _without(objects["emailfilter/profile"], "feature-set")
        objects["firewall/policy"] = _flow_only(objects["firewall/policy"])
    return Schema(version, objects, model, strict)


_SCHEMA_TYPES: dict[str, str] = {
    "string": "string",
    "text": "var-string",
    "secret": "password",
    "option": "option",
    "integer": "integer",
    "multi": "option",
    "ports": "integer",
    "ref": "string",
    "ipmask": "ipv4-classnet-any",
    "ip": "ipv4-address-any",
    "iprange": "user",
    "uuid": "uuid",
}


def _field_schema(name: str, spec: Field) -> dict[str, Any]:
    if spec.kind == "container":
        children = {k: _field_schema(k, f) for k, f in spec.fields.items()}
        return {"name": name, "category": "complex", "children": children}
    if spec.kind in ("names", "table"):
        children = (
            {k: _field_schema(k, f) for k, f in spec.fields.items()}
            if spec.kind == "table"
            else {
                "name": {
                    "name": "name",
                    "category": "unitary",
                    "type": "string",
                    "size": 79,
                    "datasource": [r.replace("/", ".") for r in spec.refs],
                }
            }
        )
        return {"name": name, "category": "table", "mkey": spec.mkey, "children": children}
    out: dict[str, Any] = {"name": name, "category": "unitary", "type": _SCHEMA_TYPES[spec.kind]}
    if spec.kind in ("multi", "ports"):
        out["multiple_values"] = True
    if spec.options:
        out["options"] = [{"name": o} for o in spec.options]
    if spec.size:
        out["size"] = spec.size
    if spec.minimum is not None:
        out["min-value"] = spec.minimum
    if spec.maximum is not None:
        out["max-value"] = spec.maximum
    if spec.refs:
        out["datasource"] = [r.replace("/", ".") for r in spec.refs]
    if spec.required:
        out["required"] = True
    if not isinstance(spec.default, list) and spec.default not in ("", None):
        out["default"] = spec.default
    return out


def schema_json(spec: ObjectSpec) -> dict[str, Any]:
    """What ``?action=schema`` answers for a path (FOSAPI reads ``mkey`` from it)."""
    out: dict[str, Any] = {
        "name": spec.name,
        "path": spec.prefix,
        "category": spec.category,
        "help": f"Configure {spec.path.replace('/', ' ')}.",
        "access_group": spec.access_group,
        "q_type": spec.q_type,
        "children": {k: _field_schema(k, f) for k, f in spec.fields.items()},
    }
    if spec.category == "table":
        out["mkey"] = spec.mkey
        out["mkey_type"] = "integer" if spec.mkey_int else "string"
    return out
