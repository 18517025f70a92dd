"""Fault injection and device states for the lab: the registry, and ``--faults`` specs parsed into ``Faults``.

Spec grammar (CLI ``--faults`` and the control API): entries separated by ``;``, each
``DEVICE:NAME[=ARG][,NAME[=ARG]...]`` where DEVICE is a device name or a glob (``*``).
Example: ``fgt-001:banner-hold-on-utm;*:api-latency=50,http500-on-write=3``. Device states
(real-world situations such as ``fortimanager-managed`` or ``ngfw-policy-based=dmz``) are set
the same way. The control API takes the same spec for one device without the ``DEVICE:``
prefix, or a JSON object ``{"http500-on-write": 3, "wrong-cert": true}``; ``{}`` clears.

``REGISTRY`` is the one list of names, arguments and meanings: the parser, ``lab up --help``
and docs/lab.md are all generated from it. No I/O, no third-party imports (the CLI help
imports this module).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from fortiauto_lab.errors import LabInputError

__all__ = [
    "FAULT_NAMES",
    "REGISTRY",
    "FaultSpec",
    "Faults",
    "describe_registry",
    "faults_for_device",
    "parse_fault_list",
    "parse_fault_spec",
    "spec_text",
]

Arg = Literal["none", "count", "ms", "vdom", "address"]
Group = Literal["data plane", "REST API", "device state"]


@dataclass(frozen=True)
class FaultSpec:
    """One entry of the registry: its spec name, the ``Faults`` field, its argument and meaning."""

    name: str
    field: str
    arg: Arg
    group: Group
    meaning: str
    default: str = ""  # an ``address`` state's address when none is given (else 127.0.0.2)

    @property
    def usage(self) -> str:
        return {
            "none": self.name,
            "count": f"{self.name}=N",
            "ms": f"{self.name}=MS",
            "address": f"{self.name}[=ADDR]",
        }.get(self.arg, f"{self.name}[=VDOM]")


REGISTRY: tuple[FaultSpec, ...] = (
    FaultSpec(
        "banner-hold-on-utm",
        "banner_hold_on_utm",
        "none",
        "data plane",
        "SMTP deep inspection with any UTM profile: the server's 220 banner is never relayed",
    ),
    FaultSpec(
        "blackhole-after-data",
        "blackhole_after_data",
        "none",
        "data plane",
        "proxy-mode policy: 250 after the final dot, the message is never delivered",
    ),
    FaultSpec(
        "wrong-cert",
        "wrong_cert",
        "none",
        "data plane",
        "Protecting SSL Server presents a certificate other than the imported one",
    ),
    FaultSpec("tls-fail", "tls_fail", "none", "data plane", "TLS handshakes the device terminates fail"),
    FaultSpec(
        "dnsbl-listed",
        "dnsbl_listed",
        "address",
        "data plane",
        "the DNSBL/ORDBL servers list ADDR (default 127.0.0.1, where lab clients connect from): "
        "the email filter's spamrbl check judges its mail as spam",
        default="127.0.0.1",
    ),
    FaultSpec(
        "fortiguard-listed",
        "fortiguard_listed",
        "address",
        "data plane",
        "FortiGuard AntiSpam lists ADDR (default 127.0.0.1) as a spam source: the spamfsip check "
        "judges its mail as spam",
        default="127.0.0.1",
    ),
    FaultSpec("api-latency", "api_latency_ms", "ms", "REST API", "every API answer is delayed by MS ms"),
    FaultSpec(
        "http500-on-write",
        "http500_on_write",
        "count",
        "REST API",
        "the Nth write (counted from when the fault was set) fails with 500 and has no effect",
    ),
    FaultSpec(
        "reset-on-write",
        "reset_on_write",
        "count",
        "REST API",
        "the Nth write takes effect, then the connection is dropped with no answer",
    ),
    FaultSpec(
        "token-expiry-after",
        "token_expiry_after",
        "count",
        "REST API",
        "after N API requests the token is no longer accepted (401)",
    ),
    FaultSpec(
        "rate-limit", "rate_limit", "count", "REST API", "more than N API requests in one second get 429"
    ),
    FaultSpec(
        "fortimanager-managed",
        "fortimanager_managed",
        "none",
        "device state",
        "central management by a FortiManager (it owns the configuration)",
    ),
    FaultSpec("ha-primary", "ha_primary", "none", "device state", "the primary of an active-passive HA pair"),
    FaultSpec(
        "ha-secondary",
        "ha_secondary",
        "none",
        "device state",
        "the secondary of that pair: every write is refused (-37)",
    ),
    FaultSpec(
        "read-only-token",
        "read_only_token",
        "none",
        "device state",
        "the API token's access profile is read-only: its writes get 403",
    ),
    FaultSpec(
        "ngfw-policy-based",
        "ngfw_policy_based",
        "vdom",
        "device state",
        "VDOM (default root) runs NGFW policy-based mode: security profiles sit on "
        "firewall/security-policy, firewall/policy refuses them",
    ),
    FaultSpec(
        "profile-group",
        "profile_group",
        "vdom",
        "device state",
        "the mail policy of VDOM (default root) uses profile-type group with the group 'mail-group'",
    ),
    FaultSpec(
        "shared-ssl-profile",
        "shared_ssl_profile",
        "vdom",
        "device state",
        "SSL profile 'protect-mx1' in VDOM (default root) already exists in replace mode with "
        "another certificate ('www-example') and is used by another policy",
    ),
    FaultSpec(
        "hairpin",
        "hairpin",
        "address",
        "device state",
        "only connections from ADDR (default 127.0.0.2, 'the Internet') reach the VIPs on their "
        "external interface; any other source is an inside host and matches the hairpin policy "
        "'hairpin-smtp' (flow, certificate inspection, no email filter)",
    ),
)
FAULT_NAMES = tuple(spec.name for spec in REGISTRY)
_BY_NAME = {spec.name: spec for spec in REGISTRY}
_DEFAULT_VDOM = "root"
_DEFAULT_OUTSIDE = "127.0.0.2"  # on lo as every 127/8 address is; a client may bind it as its source


@dataclass(frozen=True)
class Faults:
    """The faults and device states active on one device (meanings: ``REGISTRY``).

    Flags are False when off, counted faults ``None``, VDOM states ``None`` or the VDOM name.
    """

    banner_hold_on_utm: bool = False
    blackhole_after_data: bool = False
    wrong_cert: bool = False
    tls_fail: bool = False
    api_latency_ms: int | None = None
    http500_on_write: int | None = None
    reset_on_write: int | None = None
    token_expiry_after: int | None = None
    rate_limit: int | None = None
    fortimanager_managed: bool = False
    ha_primary: bool = False
    ha_secondary: bool = False
    read_only_token: bool = False
    ngfw_policy_based: str | None = None
    profile_group: str | None = None
    shared_ssl_profile: str | None = None
    hairpin: str | None = None  # the one source address that comes in from outside
    dnsbl_listed: str | None = None  # a client address the lab's DNSBL servers list (antispam.py)
    fortiguard_listed: str | None = None  # a client address the lab's FortiGuard lists

    def to_json(self) -> dict[str, Any]:
        """The active faults by their spec names (``{}`` when none)."""
        out: dict[str, Any] = {}
        for spec in REGISTRY:
            value = getattr(self, spec.field)
            if value not in (False, None):
                out[spec.name] = value
        return out


def spec_text(faults: Faults) -> str:
    """One device's faults as a fault list (``a,b=3``), the inverse of ``parse_fault_list``."""
    parts = []
    for name, value in faults.to_json().items():
        parts.append(name if value is True else f"{name}={value}")
    return ",".join(parts)


def _number(spec: FaultSpec, arg: Any) -> int:
    try:
        value = int(arg)
    except (TypeError, ValueError):
        raise LabInputError(f"fault {spec.name!r} needs a whole number, e.g. {spec.name}=3") from None
    if value < 0:
        raise LabInputError(f"fault {spec.name!r} needs a number >= 0")
    return value


def _flag(spec: FaultSpec, arg: Any) -> bool:
    if arg in (None, True, "true", "1", "on"):
        return True
    if arg in (False, "false", "0", "off"):
        return False
    raise LabInputError(f"fault {spec.name!r} takes no argument")


def _vdom(spec: FaultSpec, arg: Any) -> str | None:
    if arg in (None, True, "", "true", "on"):
        return _DEFAULT_VDOM
    if arg in (False, "false", "off"):
        return None
    if not isinstance(arg, str) or not arg.replace("-", "").replace("_", "").isalnum():
        raise LabInputError(f"fault {spec.name!r} takes a VDOM name, e.g. {spec.name}=dmz")
    return arg


def _address(spec: FaultSpec, arg: Any) -> str | None:
    if arg in (None, True, "", "true", "on"):
        return spec.default or _DEFAULT_OUTSIDE
    if arg in (False, "false", "off"):
        return None
    try:
        return str(ipaddress.ip_address(str(arg)))
    except ValueError:
        raise LabInputError(f"fault {spec.name!r} takes an IP address, e.g. {spec.name}=127.0.0.2") from None


def _apply(faults: Faults, name: str, arg: Any) -> Faults:
    spec = _BY_NAME.get(name)
    if spec is None:
        raise LabInputError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    value: Any
    if spec.arg in ("count", "ms"):
        value = _number(spec, arg)
    elif spec.arg == "vdom":
        value = _vdom(spec, arg)
    elif spec.arg == "address":
        value = _address(spec, arg)
    else:
        value = _flag(spec, arg)
    return replace(faults, **{spec.field: value})


def parse_fault_list(text: str | dict[str, Any]) -> Faults:
    """Parse one device's faults: ``"a,b=3"`` or ``{"a": true, "b": 3}``.

    Raises:
        LabInputError: an unknown name or a bad argument.
    """
    faults = Faults()
    if isinstance(text, dict):
        for name, arg in text.items():
            faults = _apply(faults, str(name), arg)
        return faults
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, arg = item.partition("=")
        faults = _apply(faults, name.strip(), arg.strip() if arg else None)
    return faults


def parse_fault_spec(spec: str) -> list[tuple[str, Faults]]:
    """Parse a fleet spec into ``[(device_glob, Faults)]``, in the order given.

    Raises:
        LabInputError: an entry without ``DEVICE:``, an unknown name or a bad argument.
    """
    out: list[tuple[str, Faults]] = []
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        device, sep, rest = entry.partition(":")
        if not sep or not device.strip():
            raise LabInputError(
                f"fault spec {entry!r} must look like DEVICE:NAME[=ARG],... (DEVICE may be *)"
            )
        out.append((device.strip(), parse_fault_list(rest)))
    return out


def faults_for_device(spec: list[tuple[str, Faults]], device: str) -> Faults:
    """Merge every entry whose glob matches ``device``; later entries win field by field."""
    merged = Faults()
    defaults = Faults()
    for pattern, faults in spec:
        if fnmatch.fnmatchcase(device, pattern):
            changes = {f.name: getattr(faults, f.name) for f in fields(faults)}
            merged = replace(merged, **{k: v for k, v in changes.items() if v != getattr(defaults, k)})
    return merged


def describe_registry() -> list[tuple[str, str, str]]:
    """``(group, usage, meaning)`` for every entry, in registry order (for help and docs)."""
    return [(spec.group, spec.usage, spec.meaning) for spec in REGISTRY]
