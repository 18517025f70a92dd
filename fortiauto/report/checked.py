"""``fortiauto validate``: what was checked for each mail server, in words, instead of only "valid".

The site loader has already refused anything wrong (a certificate that does not parse or has
expired, a key that does not open or belongs to another certificate, a probe name the
certificate does not cover); this module says what those checks found, from the loaded
certificate (``certs.load_certificate``): subject, issuer, SANs, validity and days left, the
SHA-256 fingerprint that pins the probe, and the key's type and size. Never key material.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from fortiauto.certs import load_certificate
from fortiauto.report.safe import one_line
from fortiauto.site import Device, MailServer

__all__ = ["key_description", "mail_server_lines"]


def key_description(public_key: object) -> str:
    """``RSA 2048``, ``EC secp256r1``, ``Ed25519`` ..."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    if isinstance(public_key, dsa.DSAPublicKey):
        return f"DSA {public_key.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(public_key).__name__


def _fingerprint(hex_digest: str) -> str:
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2)).upper()


def mail_server_lines(device: Device, server: MailServer, *, now: datetime | None = None) -> list[str]:
    """The checks of one mail server, one line each (for a terminal or a change record)."""
    moment = now or datetime.now(UTC)
    info = load_certificate(server.certificate.cert_pem)
    leaf = info.leaf
    days = (info.not_after - moment).days
    probe = server.probe
    name = probe.server_name or None
    chain = len(info.pem.split("-----BEGIN CERTIFICATE-----")) - 2
    lines = [
        f"{device.name} / {server.name}: certificate {server.certificate.cert}, key {server.certificate.key}",
        f"  subject: {leaf.subject.rfc4514_string()}; issuer: {leaf.issuer.rfc4514_string()}",
        f"  SANs: {', '.join(info.sans) or '(none)'}",
        f"  valid {info.not_before:%Y-%m-%d} to {info.not_after:%Y-%m-%d} ({days} day(s) left)",
        f"  sha256 fingerprint: {_fingerprint(info.fingerprint_sha256)} (the probe after the change pins it)",
        f"  key: {key_description(leaf.public_key())}, belongs to the certificate"
        + (f"; {chain} chain certificate(s) follow the leaf" if chain else ""),
        f"  probe: {probe.mode} to {probe.host}:{probe.port}"
        + (f", expects the name {name} (covered by the SANs)" if name else "")
        + (f", from {probe.via.label}" if probe.via is not None else ", from this machine"),
        f"  objects: ssl-ssh-profile {server.ssl_profile}, emailfilter profile {server.emailfilter_profile}, "
        f"protocol options {server.protocol_options}",
    ]
    return [one_line(line) for line in lines]
