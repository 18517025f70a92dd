"""What a lab keeps across restarts in its state dir, so a hand-written site file survives ``lab up`` again.

With the same ``--state-dir`` a restarted lab reuses its CA (``ca.pem`` + ``ca.key``), the
mail servers' certificates, and per device the API token, the admin password and every
port (HTTPS and the four VIP listeners), read back from ``lab.json``. ``--base-port P``
instead lays ports out from P: device *i* (0-based) gets ``P + 5*i`` for HTTPS and the next
four for ``vip-mx1`` STARTTLS/SMTPS and ``vip-mx2`` STARTTLS/SMTPS. Configuration is never
kept: every start is the seed state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from fortiauto_lab.pki import CertKey

__all__ = ["PORTS_PER_DEVICE", "Remembered", "load_ca", "load_mail_pair", "port_layout", "remembered"]

PORTS_PER_DEVICE = 5
_LAYOUT = ("https", "vip-mx1/starttls", "vip-mx1/smtps", "vip-mx2/starttls", "vip-mx2/smtps")


@dataclass(frozen=True)
class Remembered:
    """One device as the previous run left it: credentials and ports by role (``https``, ``vip/mode``)."""

    token: str | None = None
    password: str | None = None
    ports: dict[str, int] = field(default_factory=dict)


def _device(entry: dict[str, Any]) -> Remembered:
    ports = {"https": int(entry["url"].rsplit(":", 1)[1])}
    for smtp in entry.get("smtp", []):
        ports[f"{smtp['vip']}/{smtp['mode']}"] = int(smtp["port"])
    return Remembered(str(entry["token"]), str(entry["password"]), ports)


def remembered(state_dir: Path) -> dict[str, Remembered]:
    """Devices of the previous run by name; ``{}`` when there is none or lab.json is not the lab's."""
    try:
        info = json.loads((state_dir / "lab.json").read_text())
        return {str(entry["name"]): _device(entry) for entry in info["devices"]}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


def port_layout(index: int, base_port: int) -> dict[str, int]:
    """The ports of device ``index`` (0-based) under ``--base-port``."""
    first = base_port + PORTS_PER_DEVICE * index
    return {role: first + offset for offset, role in enumerate(_LAYOUT)}


def _read_pair(cert: Path, key: Path) -> CertKey | None:
    try:
        return CertKey(cert.read_text(), key.read_text())
    except OSError:
        return None


def load_ca(state_dir: Path) -> CertKey | None:
    return _read_pair(state_dir / "ca.pem", state_dir / "ca.key")


def load_mail_pair(state_dir: Path, short: str, ca: CertKey) -> CertKey | None:
    """``certs/<short>.pem`` + ``.key`` if they are there and were issued by ``ca``."""
    pair = _read_pair(state_dir / "certs" / f"{short}.pem", state_dir / "certs" / f"{short}.key")
    if pair is None:
        return None
    try:
        issuer = x509.load_pem_x509_certificate(pair.cert_pem.encode()).issuer
        ca_subject = x509.load_pem_x509_certificate(ca.cert_pem.encode()).subject
    except ValueError:
        return None
    return pair if issuer == ca_subject else None
