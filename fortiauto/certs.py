"""Certificate and private-key checks for the site loader, with ``cryptography``.

The site loader (``site/loader.py``) calls these while validating a mail server's
``certificate:`` block, before anything is planned (once per distinct file in a load): the PEM
files must parse, the key must open with the given passphrase and belong to the leaf
certificate, and the leaf must not have expired.
The leaf's SHA-256 fingerprint names the certificate on the FortiGate (``tasks/certificate.py``
calls ``pem_fingerprint`` on what the device holds). Errors are ``InputError`` with one-line
messages that never contain key material or passphrases.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from service_identity import CertificateError, VerificationError
from service_identity.hazmat import (
    DNS_ID,
    CertificatePattern,
    DNSPattern,
    IPAddress_ID,
    IPAddressPattern,
    ServiceID,
    verify_service_identity,
)

from fortiauto.errors import InputError

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "CertificateInfo",
    "check_validity",
    "expiry_warning",
    "key_matches",
    "load_certificate",
    "load_private_key",
    "name_covered",
    "pem_fingerprint",
]

EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class CertificateInfo:
    """The facts the loader keeps about a PEM certificate file (leaf first, chain after)."""

    pem: str
    leaf: x509.Certificate
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    sans: tuple[str, ...]


def _leaf(pem: str) -> x509.Certificate:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise InputError("not a PEM certificate") from None
    # load_pem_x509_certificates raises on an empty list, but keep the guard explicit.
    if not certs:
        raise InputError("not a PEM certificate")
    return certs[0]


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = list(ext.get_values_for_type(x509.DNSName))
    names.extend(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return tuple(names)


def pem_fingerprint(pem: str) -> str:
    """SHA-256 of the first certificate's DER in ``pem``, as lowercase hex.

    Raises:
        InputError: ``pem`` holds no PEM certificate.
    """
    return _fingerprint(_leaf(pem))


def load_certificate(pem: str) -> CertificateInfo:
    """Parse a PEM file's text; the first certificate is the leaf, the rest its chain.

    Raises:
        InputError: the text holds no PEM certificate.
    """
    leaf = _leaf(pem)
    return CertificateInfo(
        pem=pem,
        leaf=leaf,
        fingerprint_sha256=_fingerprint(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        sans=_sans(leaf),
    )


def load_private_key(pem: str, passphrase: str | None = None) -> PrivateKeyTypes:
    """Open a PEM private key, decrypting it with ``passphrase`` when it is encrypted.

    A passphrase given for a key that is not encrypted is ignored: the key still opens.

    Raises:
        InputError: not a PEM key, encrypted without a passphrase, or the passphrase is wrong.
    """
    data = pem.encode()
    secret = passphrase.encode() if passphrase is not None else None
    try:
        return serialization.load_pem_private_key(data, password=secret)
    except TypeError:
        # cryptography says "Password was not given but private key is encrypted" or the reverse.
        if secret is None:
            raise InputError("the private key is encrypted and no passphrase is given") from None
    except ValueError:
        if secret is not None and b"ENCRYPTED" in data:
            raise InputError("wrong passphrase for the private key") from None
        raise InputError("not a PEM private key") from None
    # A passphrase for a plain key: open it without one.
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError):
        raise InputError("not a PEM private key") from None


def _public_der(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    der: bytes = public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """True when ``key`` is the private half of ``cert``'s public key."""
    return _public_der(cert.public_key()) == _public_der(key.public_key())


def check_validity(info: CertificateInfo, *, now: datetime | None = None) -> None:
    """Refuse a certificate that has expired or is not valid yet.

    Raises:
        InputError: outside its validity period.
    """
    moment = now or datetime.now(UTC)
    if info.not_after <= moment:
        raise InputError(f"certificate expired on {info.not_after:%Y-%m-%d %H:%M} UTC")
    if info.not_before > moment:
        raise InputError(f"certificate is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC")


def expiry_warning(info: CertificateInfo, *, now: datetime | None = None) -> str | None:
    """A warning when the certificate expires within ``EXPIRY_WARNING_DAYS``, else None."""
    moment = now or datetime.now(UTC)
    left = info.not_after - moment
    if left > timedelta(days=EXPIRY_WARNING_DAYS):
        return None
    return f"certificate expires in {left.days} day(s), on {info.not_after:%Y-%m-%d %H:%M} UTC"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _patterns(dns_names: Sequence[str], ip_addresses: Sequence[str]) -> list[CertificatePattern]:
    """The subjectAltName as service_identity's patterns; a malformed entry matches nothing."""
    patterns: list[CertificatePattern] = []
    for dns in dns_names:
        with contextlib.suppress(CertificateError):
            patterns.append(DNSPattern.from_bytes(dns.rstrip(".").encode("ascii", "replace")))
    for ip in ip_addresses:
        address = _ip(ip)
        if address is not None:  # the SAN's own form: the packed address
            patterns.append(IPAddressPattern.from_bytes(address.packed))
    return patterns


def san_matches(name: str, dns_names: Sequence[str], ip_addresses: Sequence[str] = ()) -> bool:
    """Would a TLS client checking ``name`` (a DNS name or an IP literal) accept these SANs?

    The one hostname matcher of fortiauto (the site loader and the probe): RFC 6125 by
    service_identity. Only the subjectAltName counts, never the subject CN; a wildcard is the
    whole left-most label and covers exactly one label; an IP literal matches only an IP SAN.
    A trailing root dot is the same name.
    """
    wanted: ServiceID
    try:
        wanted = IPAddress_ID(name) if _ip(name) is not None else DNS_ID(name.rstrip("."))
        verify_service_identity(_patterns(dns_names, ip_addresses), [wanted], [])
    except (CertificateError, VerificationError, ValueError):
        return False
    return True


def name_covered(name: str, sans: Sequence[str]) -> bool:
    """``san_matches`` for SANs as the loader keeps them (``CertificateInfo.sans``: IPs as text)."""
    return san_matches(name, [s for s in sans if _ip(s) is None], [s for s in sans if _ip(s) is not None])
