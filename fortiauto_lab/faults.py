"""Fault injection for the lab: parse ``--faults`` specs into per-device ``Faults``.

Spec grammar (CLI ``--faults`` and the control API): entries separated by ``;``, each
``DEVICE:NAME[=ARG][,NAME[=ARG]...]`` where DEVICE is a device name or a glob (``*``).
Example: ``fgt-001:banner-hold-on-utm;*:api-latency=50,http500-on-write=3``. Device states
(``fortimanager-managed``, ``ha-primary``, ``ha-secondary``, ``read-only-token``) are set the
same way: ``fgt-002:fortimanager-managed``.
The control API takes the same spec for one device without the ``DEVICE:`` prefix, or a
JSON object ``{"http500-on-write": 3, "wrong-cert": true}``; ``{}`` clears every fault.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, fields, replace
from typing import Any

from fortiauto.errors import InputError

__all__ = ["FAULT_NAMES", "Faults", "faults_for_device", "parse_fault_list", "parse_fault_spec"]

# name -> (field, takes an integer argument)
_FAULTS: dict[str, tuple[str, bool]] = {
    "banner-hold-on-utm": ("banner_hold_on_utm", False),
    "blackhole-after-data": ("blackhole_after_data", False),
    "wrong-cert": ("wrong_cert", False),
    "tls-fail": ("tls_fail", False),
    "api-latency": ("api_latency_ms", True),
    "http500-on-write": ("http500_on_write", True),
    "reset-on-write": ("reset_on_write", True),
    "token-expiry-after": ("token_expiry_after", True),
    "rate-limit": ("rate_limit", True),
    "fortimanager-managed": ("fortimanager_managed", False),
    "ha-primary": ("ha_primary", False),
    "ha-secondary": ("ha_secondary", False),
    "read-only-token": ("read_only_token", False),
}
FAULT_NAMES = tuple(_FAULTS)


@dataclass(frozen=True)
class Faults:
    """The faults active on one device. Integer faults are ``None`` when off.

    Data plane (effective only while the bound policy triggers them):
      banner_hold_on_utm   SMTP deep inspection + any UTM profile: the backend's 220 is never relayed
      blackhole_after_data proxy-mode policy: 250 after the dot, the message is never delivered
      wrong_cert           Protecting SSL Server presents a certificate other than the imported one
      tls_fail             TLS handshakes the device terminates fail
    REST API:
      api_latency_ms       every API answer is delayed by this many milliseconds
      http500_on_write     the Nth write (counted from when the fault was set) fails with 500, no effect
      reset_on_write       the Nth write takes effect, then the connection is dropped with no answer
      token_expiry_after   after N API requests the token is no longer accepted (401)
      rate_limit           more than N API requests in one second get 429
    Device states (real-world situations a pre-flight check must notice before writing):
      fortimanager_managed central management of type fortimanager (FortiManager owns the config)
      ha_primary           the unit is the primary of an active-passive pair
      ha_secondary         the unit is the secondary of that pair: every write is refused (-37)
      read_only_token      the API token's access profile is read-only: its writes get 403
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

    def to_json(self) -> dict[str, Any]:
        """The active faults by their spec names (``{}`` when none)."""
        out: dict[str, Any] = {}
        for name, (field_name, _) in _FAULTS.items():
            value = getattr(self, field_name)
            if value not in (False, None):
                out[name] = value
        return out


def _apply(faults: Faults, name: str, arg: Any) -> Faults:
    if name not in _FAULTS:
        raise InputError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    field_name, takes_int = _FAULTS[name]
    if takes_int:
        try:
            value = int(arg)
        except (TypeError, ValueError):
            raise InputError(f"fault {name!r} needs a whole number, e.g. {name}=3") from None
        if value < 0:
            raise InputError(f"fault {name!r} needs a number >= 0")
        updates: dict[str, Any] = {field_name: value}
        return replace(faults, **updates)
    if arg not in (None, True, "true", "1", "on"):
        if arg in (False, "false", "0", "off"):
            return replace(faults, **{field_name: False})
        raise InputError(f"fault {name!r} takes no argument")
    return replace(faults, **{field_name: True})


def parse_fault_list(text: str | dict[str, Any]) -> Faults:
    """Parse one device's faults: ``"a,b=3"`` or ``{"a": true, "b": 3}``."""
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
    """Parse a fleet spec into ``[(device_glob, Faults)]``, in the order given."""
    out: list[tuple[str, Faults]] = []
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        device, sep, rest = entry.partition(":")
        if not sep or not device.strip():
            raise InputError(f"fault spec {entry!r} must look like DEVICE:NAME[=ARG],... (DEVICE may be *)")
        out.append((device.strip(), parse_fault_list(rest)))
    return out


def faults_for_device(spec: list[tuple[str, Faults]], device: str) -> Faults:
    """Merge every entry whose glob matches ``device``; later entries win field by field."""
    merged = Faults()
    for pattern, faults in spec:
        if fnmatch.fnmatchcase(device, pattern):
            changes = {f.name: getattr(faults, f.name) for f in fields(faults)}
            defaults = Faults()
            merged = replace(merged, **{k: v for k, v in changes.items() if v != getattr(defaults, k)})
    return merged
