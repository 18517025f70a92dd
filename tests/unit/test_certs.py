"""Certificate and key checks (fortiauto/certs.py) against the committed fixture certificates."""

from __future__ import annotations

import hashlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fortiauto import certs
from fortiauto.errors import InputError
from tests.fixtures.make_certs import PASSPHRASE, write_leaf

CERTS = Path(__file__).resolve().parents[1] / "fixtures" / "certs"


def text(name: str) -> str:
    return (CERTS / name).read_text()


def test_fingerprint_is_sha256_of_the_leaf_der_in_lowercase_hex():
    # An independent route to the DER (the stdlib) so the test does not restate the implementation.
    der = ssl.PEM_cert_to_DER_cert(text("mx1.pem"))
    expected = hashlib.sha256(der).hexdigest()
    info = certs.load_certificate(text("mx1.pem"))
    assert info.fingerprint_sha256 == expected
    assert certs.pem_fingerprint(text("mx1.pem")) == expected


def test_first_certificate_of_a_chain_is_the_leaf():
    chain = text("mx1.pem") + text("ca.pem")
    info = certs.load_certificate(chain)
    assert info.fingerprint_sha256 == certs.pem_fingerprint(text("mx1.pem"))
    assert info.fingerprint_sha256 != certs.pem_fingerprint(text("ca.pem"))
    assert info.pem == chain


def test_sans_and_validity_of_the_fixture():
    info = certs.load_certificate(text("mx1.pem"))
    assert info.sans == ("mx1.example.test",)
    assert info.not_after - info.not_before == timedelta(days=3650)
    assert info.not_after.tzinfo is not None


@pytest.mark.parametrize(
    "pem", ["", "hello", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_not_a_certificate(pem):
    with pytest.raises(InputError, match="not a PEM certificate"):
        certs.load_certificate(pem)
    with pytest.raises(InputError):
        certs.pem_fingerprint(pem)


def test_key_files_open_and_match():
    leaf = certs.load_certificate(text("mx1.pem")).leaf
    plain = certs.load_private_key(text("mx1.key"))
    encrypted = certs.load_private_key(text("mx1-encrypted.key"), PASSPHRASE)
    other = certs.load_private_key(text("other.key"))
    assert certs.key_matches(leaf, plain)
    assert certs.key_matches(leaf, encrypted)
    assert not certs.key_matches(leaf, other)


def test_wrong_passphrase_is_named_and_not_echoed():
    with pytest.raises(InputError, match="wrong passphrase") as info:
        certs.load_private_key(text("mx1-encrypted.key"), "battery staple")
    assert "battery staple" not in str(info.value)


def test_encrypted_key_without_passphrase():
    with pytest.raises(InputError, match="encrypted and no passphrase"):
        certs.load_private_key(text("mx1-encrypted.key"))


def test_passphrase_for_a_plain_key_still_opens_it():
    key = certs.load_private_key(text("mx1.key"), "unneeded")
    assert certs.key_matches(certs.load_certificate(text("mx1.pem")).leaf, key)


def test_a_certificate_is_not_a_key():
    with pytest.raises(InputError, match="not a PEM private key"):
        certs.load_private_key(text("mx1.pem"))


def test_expired_certificate_is_refused():
    info = certs.load_certificate(text("expired.pem"))
    with pytest.raises(InputError, match="certificate expired on 2016-01-01"):
        certs.check_validity(info)


def test_not_yet_valid_certificate_is_refused(tmp_path):
    start = datetime.now(UTC) + timedelta(days=2)
    cert, _ = write_leaf(tmp_path, "future", not_before=start, not_after=start + timedelta(days=30))
    info = certs.load_certificate(cert.read_text())
    with pytest.raises(InputError, match="not valid before"):
        certs.check_validity(info)
    certs.check_validity(info, now=start + timedelta(days=1))


def test_expiry_warning_inside_fourteen_days(tmp_path):
    now = datetime.now(UTC)
    cert, _ = write_leaf(
        tmp_path, "soon", not_before=now - timedelta(days=1), not_after=now + timedelta(days=5)
    )
    info = certs.load_certificate(cert.read_text())
    certs.check_validity(info)
    warning = certs.expiry_warning(info)
    assert warning is not None
    assert "expires in 4 day(s)" in warning or "expires in 5 day(s)" in warning


def test_no_expiry_warning_for_a_long_lived_certificate():
    info = certs.load_certificate(text("mx1.pem"))
    assert certs.expiry_warning(info) is None
    assert certs.expiry_warning(info, now=info.not_after - timedelta(days=3)) is not None
    assert certs.expiry_warning(info, now=info.not_after - timedelta(days=15)) is None


@pytest.mark.parametrize(
    ("name", "sans", "covered"),
    [
        ("mx1.example.test", ("mx1.example.test",), True),
        ("MX1.Example.Test", ("mx1.example.test",), True),
        ("mx1.example.test.", ("mx1.example.test",), True),
        ("mx2.example.test", ("mx1.example.test",), False),
        ("mx1.example.test", ("*.example.test",), True),
        ("a.mx1.example.test", ("*.example.test",), False),
        ("example.test", ("*.example.test",), False),
        ("mx1.example.test", ("other.test", "*.example.test"), True),
        ("192.0.2.25", ("192.0.2.25",), True),
        ("192.0.2.25", ("192.0.2.26",), False),
        ("192.0.2.25", ("*.example.test",), False),
        ("2001:db8::25", ("2001:db8:0::25",), True),
        ("mx1.example.test", (), False),
    ],
)
def test_name_covered(name, sans, covered):
    assert certs.name_covered(name, sans) is covered
