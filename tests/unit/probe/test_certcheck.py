"""The certificate verdict: SAN matching (wildcards, IPs), pin, validity dates, inspection-CA issuers."""

from __future__ import annotations

import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from fortiauto.probe.certcheck import (
    PeerCert,
    check_cert,
    hostname_matches,
    looks_like_inspection_ca,
    normalise_pin,
    read_cert,
)
from fortiauto.probe.classify import FailureClass

NOW = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def _cert(*dns: str, ips: tuple[str, ...] = ()) -> PeerCert:
    return PeerCert(
        sha256="ab" * 32,
        subject="CN=mx1",
        issuer="CN=Example CA",
        issuer_cn="Example CA",
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=1),
        dns_names=dns,
        ip_addresses=ips,
    )


@pytest.mark.parametrize(
    ("name", "patterns", "matches"),
    [
        ("mx1.example.test", ("mx1.example.test",), True),
        ("MX1.Example.Test.", ("mx1.example.test",), True),
        ("mx1.example.test", ("*.example.test",), True),
        ("a.mx1.example.test", ("*.example.test",), False),  # one label only
        ("example.test", ("*.example.test",), False),
        ("mx1.example.test", ("mx*.example.test",), False),  # partial wildcards are not honoured
        ("mx1.example.test", ("mx2.example.test", "*.other.test"), False),
        ("mx1.example.test", (), False),
    ],
)
def test_dns_names(name: str, patterns: tuple[str, ...], matches: bool) -> None:
    assert hostname_matches(name, _cert(*patterns)) is matches


def test_ip_literals_match_ip_sans_only() -> None:
    cert = _cert("127.0.0.1", ips=("127.0.0.1", "::1"))

    assert hostname_matches("127.0.0.1", cert)
    assert hostname_matches("0:0::1", cert)
    assert not hostname_matches("127.0.0.2", cert)
    assert not hostname_matches("127.0.0.1", _cert("127.0.0.1"))  # a DNS SAN is not an IP SAN


def test_pin_is_checked_first_and_accepts_colon_form() -> None:
    cert = replace(_cert("other.test"), not_after=NOW - timedelta(days=1))
    colon = ":".join(["AB"] * 32)

    assert normalise_pin(colon) == "ab" * 32
    mismatch = check_cert(cert, server_name="mx1.example.test", pin_sha256="cd" * 32, now=NOW)
    assert mismatch is not None
    assert mismatch.failure is FailureClass.CERTIFICATE_MISMATCH
    name = check_cert(cert, server_name="mx1.example.test", pin_sha256=colon, now=NOW)
    assert name is not None
    assert name.failure is FailureClass.CERTIFICATE_INVALID
    assert "not in the certificate" in name.detail


def test_validity_window() -> None:
    cert = _cert("mx1.example.test")

    assert check_cert(cert, server_name="mx1.example.test", pin_sha256=None, now=NOW) is None
    assert check_cert(cert, server_name=None, pin_sha256=None, now=NOW) is None
    late = check_cert(cert, server_name=None, pin_sha256=None, now=NOW + timedelta(days=2))
    early = check_cert(cert, server_name=None, pin_sha256=None, now=NOW - timedelta(days=2))
    assert late is not None
    assert "expired" in late.detail
    assert early is not None
    assert "not valid before" in early.detail


def test_read_cert_from_der() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("mx1.example.test", "127.0.0.1")
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode("ascii"))

    cert = read_cert(der)

    assert cert.dns_names == ("mx1.example.test",)
    assert cert.ip_addresses == ("127.0.0.1",)
    assert len(cert.sha256) == 64
    assert "trustme" in cert.issuer
    with pytest.raises(ValueError):
        read_cert(b"not a certificate")


@pytest.mark.parametrize(
    ("issuer", "inspection"),
    [
        ("CN=Fortinet_CA_SSL,O=Fortinet Ltd.", True),
        ("CN=FortiGate CA,O=Fortinet", True),
        ("CN=Fortinet_CA_Untrusted", True),
        ("CN=R11,O=Let's Encrypt,C=US", False),
    ],
)
def test_inspection_ca_issuers(issuer: str, inspection: bool) -> None:
    assert looks_like_inspection_ca(issuer) is inspection
