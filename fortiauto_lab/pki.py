"""The lab's certificates, made with ``cryptography`` alone: the lab CA, HTTPS certs, mail certs.

``lab up`` mints one CA per state dir; every mock FortiGate gets an EC P-256 HTTPS
certificate from it (fast enough for 200 devices), the mail servers get an RSA 2048
certificate once per lab, and the factory certificates a FortiGate ships with
(``Fortinet_CA_SSL`` and friends) are minted once and shared. The REST side also reads
certificates here: what ``available-certificates`` reports, and whether an imported key
matches its certificate. No I/O beyond what the caller writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertKey",
    "KeyMismatch",
    "cert_facts",
    "chain_for",
    "issue_cert",
    "load_key_pair",
    "load_pkcs12_pair",
    "make_ca",
    "names_of",
    "same_certificate",
    "split_pem",
]

KeyType = Literal["ec", "rsa"]
_VALIDITY = dt.timedelta(days=825)
_BACKDATE = dt.timedelta(hours=1)


class KeyMismatch(ValueError):
    """A key that does not parse, needs a missing passphrase, or does not belong to the certificate."""


@dataclass(frozen=True)
class CertKey:
    """A certificate and its (unencrypted) private key, both PEM text."""

    cert_pem: str
    key_pem: str

    def __repr__(self) -> str:
        # The key is a secret: never let a repr carry it into a log or a test failure.
        subject = x509.load_pem_x509_certificate(self.cert_pem.encode()).subject.rfc4514_string()
        return f"CertKey(subject={subject!r})"


def _new_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(
    common_name: str,
    *,
    organisation: str = "fortiauto lab",
    key_type: KeyType = "ec",
    parent: CertKey | None = None,
) -> CertKey:
    """A CA certificate able to sign leaf certificates: self-signed, or an intermediate under ``parent``."""
    key = _new_key(key_type)
    name = _name(common_name, organisation)
    issuer_name = name
    signer: CertificateIssuerPrivateKeyTypes = key
    if parent is not None:
        parent_cert, signer = _issuer(parent)
        issuer_name = parent_cert.subject
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY * 4)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )
    return CertKey(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def chain_for(leaf_pem: str, ca_pems: list[str], *, depth: int = 5) -> list[str]:
    """The CA certificates (PEM) linking ``leaf_pem`` towards a root, nearest first; the root left out.

    What a server presents after its leaf (RFC 8446 4.4.2: the root may be omitted).
    """
    by_subject = {}
    for pem in ca_pems:
        cert = x509.load_pem_x509_certificate(pem.encode())
        by_subject[cert.subject] = (cert, pem)
    chain: list[str] = []
    current = x509.load_pem_x509_certificate(leaf_pem.encode())
    for _ in range(depth):
        found = by_subject.get(current.issuer)
        if found is None or found[0].subject == found[0].issuer or found[1] in chain:
            break
        chain.append(found[1])
        current = found[0]
    return chain


def split_pem(text: str) -> list[str]:
    """The certificates of a PEM bundle, each as its own PEM text (leaf first, as written)."""
    end = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + end + "\n" for part in text.split(end) if "BEGIN CERTIFICATE" in part]


def names_of(cert_pem: str) -> set[str]:
    """Lower-case DNS names a certificate is for (SANs, else its CN)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return {n.lower() for n in sans.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        return {str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}


def same_certificate(a_pem: str, b_pem: str) -> bool:
    """Whether two PEM texts hold the same certificate (compared as DER)."""
    a = x509.load_pem_x509_certificate(a_pem.encode()).public_bytes(serialization.Encoding.DER)
    b = x509.load_pem_x509_certificate(b_pem.encode()).public_bytes(serialization.Encoding.DER)
    return a == b


def _issuer(ca: CertKey) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    cert = x509.load_pem_x509_certificate(ca.cert_pem.encode())
    key = serialization.load_pem_private_key(ca.key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError("the lab CA key must be EC or RSA")
    return cert, key


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def issue_cert(
    ca: CertKey,
    common_name: str,
    *,
    sans: tuple[str, ...] = (),
    key_type: KeyType = "ec",
    organisation: str = "fortiauto lab",
    is_ca: bool = False,
) -> CertKey:
    """A certificate signed by ``ca`` for ``sans`` (IP addresses and DNS names both work)."""
    ca_cert, ca_key = _issuer(ca)
    key = _new_key(key_type)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organisation))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    if sans:
        builder = builder.add_extension(_san(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return CertKey(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def _same_public_key(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    cert_pub = cert.public_key().public_bytes(serialization.Encoding.DER, fmt)
    key_pub = key.public_key().public_bytes(serialization.Encoding.DER, fmt)
    return cert_pub == key_pub


# Every device of a fleet imports the same mail certificate, and opening an RSA key runs
# cryptography's key validation (~30 ms for 2048 bits): that was 44 % of the lab's CPU in a
# 100-device bench/fleet.py apply. Checked pairs are remembered by a digest of the inputs
# (never keyed by the key text); failures are not cached. Plain dict operations keep it
# safe for several labs on several threads; it is emptied when full.
_CHECKED_PAIRS: dict[str, CertKey] = {}
_CHECKED_PAIRS_MAX = 64


def _pair_digest(cert_pem: bytes, key_pem: bytes, password: str | None) -> str:
    parts = (cert_pem, key_pem, (password or "").encode())
    return hashlib.sha256(b"".join(hashlib.sha256(part).digest() for part in parts)).hexdigest()


def load_key_pair(cert_pem: bytes, key_pem: bytes, password: str | None) -> CertKey:
    """Check a PEM certificate and its (maybe encrypted) key belong together; return them unencrypted.

    Raises:
        KeyMismatch: the certificate or key does not parse, or they are not a pair.
    """
    digest = _pair_digest(cert_pem, key_pem, password)
    cached = _CHECKED_PAIRS.get(digest)
    if cached is not None:
        return cached
    pair = _load_key_pair(cert_pem, key_pem, password)
    if len(_CHECKED_PAIRS) >= _CHECKED_PAIRS_MAX:
        _CHECKED_PAIRS.clear()
    _CHECKED_PAIRS[digest] = pair
    return pair


def _load_key_pair(cert_pem: bytes, key_pem: bytes, password: str | None) -> CertKey:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise KeyMismatch("certificate is not a valid PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=password.encode() if password else None)
    except (ValueError, TypeError):
        # Wrong or missing passphrase and garbage look the same to FortiOS: invalid key.
        raise KeyMismatch("invalid private key or passphrase") from None
    if not _same_public_key(cert, key):
        raise KeyMismatch("input is not a valid/matched certificate")
    return CertKey(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def load_pkcs12_pair(blob: bytes, password: str | None) -> CertKey:
    """Unpack a PKCS#12 bundle into certificate and key.

    Raises:
        KeyMismatch: the bundle does not open with ``password`` or lacks a key or certificate.
    """
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(blob, password.encode() if password else None)
    except (ValueError, TypeError):
        raise KeyMismatch("invalid PKCS#12 file or password") from None
    if key is None or cert is None:
        raise KeyMismatch("PKCS#12 file holds no certificate with a key")
    return CertKey(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def _dn(name: x509.Name) -> tuple[dict[str, str], str]:
    short = {
        NameOID.COUNTRY_NAME: "C",
        NameOID.STATE_OR_PROVINCE_NAME: "ST",
        NameOID.LOCALITY_NAME: "L",
        NameOID.ORGANIZATION_NAME: "O",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
        NameOID.COMMON_NAME: "CN",
        NameOID.EMAIL_ADDRESS: "emailAddress",
    }
    parts: dict[str, str] = {}
    for attr in name:
        label = short.get(attr.oid, attr.oid.dotted_string)
        parts[label] = str(attr.value)
    return parts, ", ".join(f"{k} = {v}" for k, v in parts.items())


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def _raw_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S  GMT")


def cert_facts(cert_pem: str) -> dict[str, Any]:
    """What ``monitor/system/available-certificates`` says about one certificate (no identity fields)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        key_type, key_size = "RSA", public.key_size
    elif isinstance(public, ec.EllipticCurvePublicKey):
        key_type, key_size = "ECDSA", public.curve.key_size
    else:
        key_type, key_size = "unknown", 0
    subject, subject_raw = _dn(cert.subject)
    issuer, issuer_raw = _dn(cert.issuer)
    try:
        is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    der = cert.public_bytes(serialization.Encoding.DER)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    now = dt.datetime.now(dt.UTC)
    status = "valid" if not_before <= now <= not_after else ("expired" if now > not_after else "pending")
    return {
        "key_type": key_type,
        "key_size": key_size,
        "is_ca": is_ca,
        "status": status,
        "valid_from": int(not_before.timestamp()),
        "valid_from_raw": _raw_time(not_before),
        "valid_to": int(not_after.timestamp()),
        "valid_to_raw": _raw_time(not_after),
        "signature_algorithm": "SHA256",
        "subject": subject,
        "subject_raw": subject_raw,
        "issuer": issuer,
        "issuer_raw": issuer_raw,
        # FortiOS does not document the fingerprint's hash; the lab uses SHA-256 of the DER.
        "fingerprint": _colon_hex(hashlib.sha256(der).digest()),
        "version": 3,
        "serial_number": _colon_hex(cert.serial_number.to_bytes(20, "big").lstrip(b"\0") or b"\0"),
    }
