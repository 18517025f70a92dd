"""Checks on the certificate the mail server (or the FortiGate in front of it) served, done by hand.

The probe handshakes with verification off, as sending MTAs on port 25 do, so that it
can always read the leaf and report it; this module then decides what a strict sender
would: is it the pinned certificate (F12), does it name ``server_name`` and is it within
its validity (F11), and, with ``probe.verify_chain``, does the chain the server sent lead
to a trusted CA (F11 chain-untrusted; a renewal signed by another CA, a missing
intermediate). Pure functions over DER bytes; ``load_trust`` reads the CA file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from fortiauto.certs import san_matches
from fortiauto.probe.classify import FailureClass

__all__ = [
    "CertProblem",
    "PeerCert",
    "check_cert",
    "check_chain",
    "hostname_matches",
    "load_trust",
    "looks_like_inspection_ca",
    "normalise_pin",
    "read_cert",
    "trust_label",
]

# Issuer names FortiOS uses for its inspection CAs (factory defaults, see reference/smtp-probe.md §4.1).
_INSPECTION_MARKERS = ("fortinet_ca", "fortigate", "fortinet ca", "fortinet_factory")


@dataclass(frozen=True)
class PeerCert:
    """What the report needs from a leaf certificate."""

    sha256: str  # lowercase hex of the DER
    subject: str
    issuer: str
    issuer_cn: str | None
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


@dataclass(frozen=True)
class CertProblem:
    failure: FailureClass
    detail: str


def read_cert(der: bytes) -> PeerCert:
    """Parse a DER leaf certificate; raises ``ValueError`` when it is not one."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns_names, ips = (), ()
    issuer_cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return PeerCert(
        sha256=hashlib.sha256(der).hexdigest(),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        issuer_cn=str(issuer_cns[0].value) if issuer_cns else None,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=dns_names,
        ip_addresses=ips,
    )


def normalise_pin(pin: str) -> str:
    """Accept ``AB:CD:..`` as well as ``abcd..``, the two ways fingerprints get pasted."""
    return "".join(pin.split()).replace(":", "").lower()


def hostname_matches(name: str, cert: PeerCert) -> bool:
    """Does the certificate's subjectAltName cover ``name`` (a DNS name or an IP literal)?

    Only the SAN counts, as in browsers and Python's ``ssl`` since 3.7: a subject CN is not a
    name. The matcher is the site loader's (``certs.san_matches``, service_identity).
    """
    return san_matches(name, cert.dns_names, cert.ip_addresses)


def looks_like_inspection_ca(issuer: str) -> bool:
    """True when the issuer reads like a FortiGate inspection CA (re-sign mode, not the server's cert)."""
    lowered = issuer.lower()
    return any(marker in lowered for marker in _INSPECTION_MARKERS)


def check_cert(
    cert: PeerCert, *, server_name: str | None, pin_sha256: str | None, now: datetime
) -> CertProblem | None:
    """The first problem a strict sender would have with ``cert``, or ``None``.

    The pin is checked first: a different leaf (an inspection CA's, say) is the more
    specific finding than its name or dates.
    """
    if pin_sha256 is not None and cert.sha256 != normalise_pin(pin_sha256):
        return CertProblem(
            FailureClass.CERTIFICATE_MISMATCH,
            f"served sha256 {cert.sha256} is not the pinned {normalise_pin(pin_sha256)} "
            f"(issuer {cert.issuer_cn or cert.issuer})",
        )
    if server_name is not None and not hostname_matches(server_name, cert):
        names = ", ".join(cert.dns_names + cert.ip_addresses) or "no subjectAltName"
        return CertProblem(
            FailureClass.CERTIFICATE_INVALID, f"{server_name} is not in the certificate ({names})"
        )
    if now > cert.not_after:
        return CertProblem(FailureClass.CERTIFICATE_INVALID, f"expired on {cert.not_after.isoformat()}")
    if now < cert.not_before:
        return CertProblem(
            FailureClass.CERTIFICATE_INVALID, f"not valid before {cert.not_before.isoformat()}"
        )
    return None


def load_trust(verify_chain: bool | Path) -> tuple[x509.Certificate, ...]:
    """The CA certificates a chain must lead to: a site-given bundle, or the system trust store.

    Raises ``ValueError`` with a one-line reason when there are none to read.
    """
    if isinstance(verify_chain, Path):
        path = verify_chain
    else:
        found = _system_store()
        if found is None:
            raise ValueError(
                "no system trust store found (install ca-certificates, or give verify_chain: PATH)"
            )
        path = found
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the CA bundle {path}: {exc.strerror or exc}") from None
    with warnings.catch_warnings():
        # System stores hold a few old roots that cryptography parses with a deprecation warning.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            roots = tuple(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise ValueError(f"{path} holds no PEM certificates") from None
    return roots


def trust_label(verify_chain: bool | Path) -> str:
    """What a chain is verified against, for messages: the CA bundle, or the system store and its file."""
    if isinstance(verify_chain, Path):
        return f"the CA bundle {verify_chain}"
    found = _system_store()
    return f"the system trust store ({found})" if found is not None else "the system trust store"


def _system_store() -> Path | None:
    # OpenSSL's default CA file; SSL_CERT_FILE overrides it (ssl.get_default_verify_paths).
    paths = ssl.get_default_verify_paths()
    found = next((p for p in (paths.cafile, paths.openssl_cafile) if p and Path(p).is_file()), None)
    return Path(found) if found is not None else None


def check_chain(
    chain: Sequence[bytes],
    *,
    server_name: str,
    trust: Sequence[x509.Certificate],
    now: datetime,
    against: str = "the trusted CAs",
) -> CertProblem | None:
    """Would a PKIX-validating sender accept the chain the server presented (leaf first)?

    Uses cryptography's RFC 5280 path builder with the CA/Browser Forum server profile (what
    MTA-STS senders apply): the leaf and the intermediates the server sent must chain to one
    of ``trust``, for ``server_name``, at ``now``. Intermediates are not fetched (no AIA).
    ``against`` names ``trust`` in the finding (``trust_label``).
    """
    if not chain:
        return CertProblem(FailureClass.CHAIN_UNTRUSTED, "the server sent no certificate chain")
    try:
        leaf, *sent = (x509.load_der_x509_certificate(der) for der in chain)
    except ValueError as exc:
        return CertProblem(FailureClass.CHAIN_UNTRUSTED, f"unreadable certificate in the chain: {exc}")
    subject: x509.DNSName | x509.IPAddress
    try:
        subject = x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        subject = x509.DNSName(server_name)
    # CA/Browser Forum profile, but a critical subjectAltName or extendedKeyUsage is accepted:
    # RFC 5280 §4.2.1.6 and §4.2.1.12 allow it, OpenSSL-based MTAs accept it, private CAs issue it.
    leaf_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _server_auth)
    )
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust)))
        .time(now)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=leaf_policy)
        .build_server_verifier(subject)
    )
    try:
        verifier.verify(leaf, sent)
    except VerificationError as exc:
        issuer = leaf.issuer.rfc4514_string()
        return CertProblem(
            FailureClass.CHAIN_UNTRUSTED,
            f"chain does not verify against {against}: {_first_line(str(exc))} "
            f"({len(chain)} certificate(s) sent, leaf issuer {issuer})",
        )
    return None


def _server_auth(_policy: object, _cert: object, usage: x509.ExtendedKeyUsage | None) -> None:
    # As OpenSSL's TLS-server purpose: a key usage list, when present, must allow TLS servers.
    allowed = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if usage is not None and not allowed & set(usage):
        raise ValueError("the leaf's extendedKeyUsage does not allow TLS servers (no serverAuth)")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "verification failed"
