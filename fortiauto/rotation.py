"""Certificate rotation: what a renewed certificate retires, and when a certificate needs renewing.

A renewed certificate has a new fingerprint, so the certificate task imports it under a new
derived name and the SSL/SSH profile task rebinds the profile to it; the certificate the
profile bound before is then *retired*. The engine deletes a retired certificate only after
the probe, pinned to the new certificate, has passed, and only when it is fortiauto's own
(``fa-<mail server>-<sha256[:8]>`` for the same mail server) and nothing references it any
more. Pure functions over what the tasks read: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from fortiauto.desired import CERT_NAME_PREFIX, certificate_name
from fortiauto.results import Change
from fortiauto.site import MailServer

__all__ = [
    "RENEWAL_WARNING_DAYS",
    "bound_certificates",
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
