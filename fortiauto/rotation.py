"""Certificate rotation: what a renewed certificate retires, and when a certificate needs renewing.

A renewed certificate has a new fingerprint, so the certificate task imports it under a new
derived name and the SSL/SSH profile task rebinds the profile to it; the certificate the
profile bound before is then *retired*. The engine deletes a retired certificate only after
the probe, pinned to the new certificate, has passed, and only when it is fortiauto's own
(``fa-<mail server>-<sha256[:8]>`` for the same mail server) and nothing references it any
more. A renewal signed by another issuer than the retired certificate's (another CA, or a new
intermediate) also gets a chain check on the probe after the change (``chain_check``): a sender
that validates certificates trusts the CA, not the pin. Pure functions over what the tasks
read: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509

from fortiauto.certs import load_certificate
from fortiauto.desired import CERT_NAME_PREFIX, certificate_name
from fortiauto.errors import InputError
from fortiauto.results import Change
from fortiauto.site import MailServer, ProbeSpec

__all__ = [
    "RENEWAL_WARNING_DAYS",
    "ChainCheck",
    "bound_certificates",
    "chain_check",
    "expiry_warnings",
    "is_own_certificate",
    "merged_server_certs",
    "retired_certificates",
    "rotation_note",
]

RENEWAL_WARNING_DAYS = 21  # certbot renews 30 days ahead: 21 days left means the renewal did not happen
CERTIFICATE_PATH = "vpn.certificate/local"
_HEX8 = "[0-9a-f]{8}"
_OWN_SHAPE = re.compile(re.escape(CERT_NAME_PREFIX) + ".+-" + _HEX8)


def bound_certificates(ssl_profile: dict[str, Any] | None) -> tuple[str, ...]:
    """The certificate names an SSL/SSH profile binds (a string up to 6.4, a list of {name} after)."""
    value = (ssl_profile or {}).get("server-cert")
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(str(v["name"]) for v in value if isinstance(v, dict) and v.get("name"))
    return ()


def is_own_certificate(name: str, mail_server: str) -> bool:
    """Is ``name`` a certificate fortiauto imported for ``mail_server`` (its naming scheme)?"""
    stem = certificate_name(mail_server, "0" * 64)[: -len("00000000")]
    return re.fullmatch(re.escape(stem) + _HEX8, name) is not None


def merged_server_certs(bound: Sequence[str], ours: Sequence[str]) -> list[str]:
    """A 7.x ``server-cert`` list with fortiauto's entries ``ours`` in place of its earlier ones.

    Every other certificate of the profile (another site sharing it) stays, in its place; an
    entry of fortiauto's naming scheme for the same mail server (an earlier certificate of that
    mail server) gives way to its successor, which ``retired_certificates`` then deletes.
    """
    stems = {name[: -len("00000000")] for name in ours if _OWN_SHAPE.fullmatch(name)}
    kept = [name for name in bound if name not in ours and not any(_is_stem(name, stem) for stem in stems)]
    return list(dict.fromkeys([*kept, *ours]))


def _is_stem(name: str, stem: str) -> bool:
    return re.fullmatch(re.escape(stem) + _HEX8, name) is not None


def retired_certificates(mail_server: MailServer, vdom: str, bound: Sequence[str]) -> tuple[Change, ...]:
    """Deletions a rebind to the site's certificate would make possible (run after a passed probe).

    ``before`` holds the name only: the private key is never read, so a deleted certificate
    cannot be restored by fortiauto (the undo says so).
    """
    wanted = certificate_name(mail_server.name, mail_server.certificate.fingerprint_sha256)
    return tuple(
        Change(
            task="certificate",
            path=CERTIFICATE_PATH,
            mkey=name,
            action="delete",
            before={"name": name},
            after=None,
            vdom=vdom,
        )
        for name in dict.fromkeys(bound)
        if name != wanted and is_own_certificate(name, mail_server.name)
    )


def rotation_note(mail_server: MailServer, retired: Sequence[Change]) -> str:
    wanted = certificate_name(mail_server.name, mail_server.certificate.fingerprint_sha256)
    old = ", ".join(str(c.mkey) for c in retired)
    return (
        f"{mail_server.name}: certificate rotation {old} -> {wanted}; the probe is pinned to the new "
        f"certificate and {old} is deleted only after it passes and if nothing else references it"
    )


def expiry_warnings(
    mail_server: MailServer, bound: Sequence[str], *, now: datetime, days: int = RENEWAL_WARNING_DAYS
) -> tuple[str, ...]:
    """Warnings for a certificate within ``days`` of expiry: renewal not done, or a short-lived new one."""
    cert = mail_server.certificate
    if cert.not_after is None or cert.not_after - now > timedelta(days=days):
        return ()
    left = max((cert.not_after - now).days, 0)
    when = f"{left} day(s), on {cert.not_after:%Y-%m-%d}"
    wanted = certificate_name(mail_server.name, cert.fingerprint_sha256)
    if wanted in bound:
        return (
            f"{mail_server.name}: the bound certificate {wanted} expires in {when}, and the site still "
            f"names the same file ({cert.cert.name}): the renewal has not happened yet; renew it, then "
            "run fortiauto apply (docs/rotation.md)",
        )
    return (
        f"{mail_server.name}: the site's certificate {cert.cert.name} expires in {when}; "
        "renew it before it is bound",
    )


@dataclass(frozen=True)
class ChainCheck:
    """A rotation to a certificate of another issuer, and the chain check it puts on the probe.

    ``trust`` is what the chain the VIP presents must lead to: the site's CA bundle
    (``probe.verify_chain: PATH``), ``True`` for the system trust store, or ``None`` when the
    site opted out with an explicit ``verify_chain: false`` (the plan warns instead).
    ``server_name`` is the name the chain is verified for: the probe's, else the certificate's
    first subjectAltName. ``old_issuer`` ``None``: the retired certificate could not be read.
    """

    mail_server: str
    retired: tuple[str, ...]
    old_issuer: str | None
    new_issuer: str
    trust: bool | Path | None
    server_name: str | None
    plain: bool = False  # the probe does not use TLS (mode: plain): there is no chain to see

    @property
    def forced(self) -> bool:
        """Does the probe after the change verify the chain?"""
        return self.trust is not None and self.server_name is not None and not self.plain

    @property
    def anchors(self) -> str:
        if isinstance(self.trust, Path):
            return f"the CA bundle {self.trust}"
        return "the system trust store"

    def spec(self, probe: ProbeSpec) -> ProbeSpec:
        """``probe`` with the chain check on, through its own options (``verify_chain``, ``server_name``)."""
        if not self.forced:
            return probe
        return probe.model_copy(
            update={"verify_chain": self.trust, "server_name": probe.server_name or self.server_name}
        )

    def note(self) -> str:
        retired = ", ".join(self.retired)
        old = self.old_issuer or f"unknown: {retired} could not be read, so taken as changed"
        head = f"{self.mail_server}: the renewed certificate's issuer changed ({old} -> {self.new_issuer})"
        if self.trust is None:
            return (
                f"{head}, and the site sets verify_chain: false: the chain the VIP presents is not "
                "verified; senders that validate certificates may refuse it"
            )
        if self.plain:
            return (
                f"{head}, but the probe does not use TLS (probe.mode: plain): the chain the VIP "
                "presents is not verified"
            )
        if self.server_name is None:
            return (
                f"{head}, but neither probe.server_name nor the certificate names the host to verify "
                "its chain for: the chain is not verified (set probe.server_name)"
            )
        return (
            f"{head}: the chain the VIP presents is verified against {self.anchors} before {retired} "
            "is retired (the rotation is undone if it does not verify)"
        )


def chain_check(mail_server: MailServer, retired: Mapping[str, str | None]) -> ChainCheck | None:
    """The chain check a rotation needs, or ``None`` when the renewal has the retired one's issuer.

    ``retired``: each retired certificate's name and its PEM as the device returned it (the
    CMDB ``certificate`` field, fortios-objects.md §5.2), ``None`` when it gave none. A
    certificate whose issuer cannot be read counts as changed: a chain check that passes costs
    one verification, a sender that stops trusting the server costs mail. Whatever the issuer,
    a ``verify_chain`` the site set already checks every probe; this only adds it to a renewal.
    """
    new = _issuer(mail_server.certificate.cert_pem)
    if new is None or not retired:
        return None
    olds = {name: _issuer(pem) if pem else None for name, pem in retired.items()}
    if all(old == new for old in olds.values()):
        return None
    changed = [old for old in olds.values() if old is not None and old != new]
    probe = mail_server.probe
    opted_out = probe.verify_chain is False and "verify_chain" in probe.model_fields_set
    trust: bool | Path | None = None if opted_out else (probe.verify_chain or True)
    sans = mail_server.certificate.sans
    return ChainCheck(
        mail_server=mail_server.name,
        retired=tuple(olds),
        old_issuer=changed[0].rfc4514_string() if changed else None,
        new_issuer=new.rfc4514_string(),
        trust=trust,
        server_name=probe.server_name or (sans[0] if sans else None),
        plain=probe.mode == "plain",
    )


def _issuer(pem: str) -> x509.Name | None:
    try:
        return load_certificate(pem).leaf.issuer if pem.strip() else None
    except InputError:
        return None
