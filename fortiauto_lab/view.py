"""What the lab's SMTP data plane needs to know of a device, as data: the seam between
the config store (REST side) and the data plane (SMTP side).

The store computes an ``Inspection`` from the policy bound to a VIP at connection time;
the data plane acts it out and reports delivered mail and email filter log lines back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from fortiauto_lab.antispam import SpamFilter
from fortiauto_lab.faults import Faults

__all__ = ["DeviceView", "Inspection", "SslMode"]

# none         no ssl-ssh-profile, or a profile that does not touch SMTP/SMTPS
# certificate  certificate-inspection: TLS passes through untouched (bytes relayed)
# replace      Protecting SSL Server: the device terminates TLS with the imported cert+key
# resign       deep inspection re-signing with the lab's inspection CA
SslMode = Literal["none", "certificate", "replace", "resign"]


@dataclass(frozen=True)
class Inspection:
    """How the device treats an SMTP session to one VIP, read from the bound policy."""

    policyid: int | None  # None: no enabled accept policy to this VIP -> connection refused
    ssl_mode: SslMode = "none"
    # (cert PEM, key PEM) presented in "replace" mode; kept out of repr: the key is a secret
    server_cert: tuple[str, str] | None = field(default=None, repr=False)
    proxy: bool = False  # inspection-mode proxy
    utm: bool = False  # utm-status enable and at least one UTM profile bound
    # email filter bound, smtp log-all on, feature-set proxy (where the unit has it)
    logs_smtp: bool = False
    # the anti-spam checks the bound email filter performs (its ``options`` with spam-filtering
    # enable), in the profile's order; empty: the profile checks nothing
    spam_checks: tuple[str, ...] = ()
    # what the email filter does with mail it judges (antispam.py); None: no spam filtering
    spam_filter: SpamFilter | None = None


class DeviceView(Protocol):
    """Implemented by the lab's device; read by the data plane on every new connection."""

    name: str

    def inspection(self, vip: str, source: str | None = None) -> Inspection:
        """The policy a new connection from ``source`` (the peer's address) to ``vip`` matches."""
        ...

    def current_faults(self) -> Faults: ...

    def log_emailfilter(self, fields: dict[str, str]) -> None:
        """Append one email filter log record (FortiOS key=value fields, e.g. ``subject``)."""
        ...

    def inspection_ca(self) -> tuple[str, str]:
        """(cert PEM, key PEM) of the lab's inspection CA (``Fortinet_CA_SSL``), for re-sign mode."""
        ...
