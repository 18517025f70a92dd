"""The fixture generator (tests/fixtures/make_certs.py, on trustme) makes what its docstring promises.

Checked with the product's own certificate code (``fortiauto.certs``), the way the site loader
reads the committed files: the leaf and its key belong together, the encrypted key opens with
the passphrase, ``other.key`` belongs to another certificate, ``expired.pem`` is expired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fortiauto import certs
from fortiauto.errors import InputError
from tests.fixtures.make_certs import PASSPHRASE, main, write_leaf


def test_the_generated_fixture_set(tmp_path):
    main(tmp_path)
    mx1 = certs.load_certificate((tmp_path / "mx1.pem").read_text())
    assert mx1.sans == ("mx1.example.test",)
    assert certs.key_matches(mx1.leaf, certs.load_private_key((tmp_path / "mx1.key").read_text()))
    opened = certs.load_private_key((tmp_path / "mx1-encrypted.key").read_text(), PASSPHRASE)
    assert certs.key_matches(mx1.leaf, opened)
    with pytest.raises(InputError):
        certs.load_private_key((tmp_path / "mx1-encrypted.key").read_text(), "wrong")
    assert not certs.key_matches(mx1.leaf, certs.load_private_key((tmp_path / "other.key").read_text()))
    ca = certs.load_certificate((tmp_path / "ca.pem").read_text())
    assert mx1.leaf.issuer == ca.leaf.subject
    expired = certs.load_certificate((tmp_path / "expired.pem").read_text())
    with pytest.raises(InputError):
        certs.check_validity(expired)


def test_write_leaf_takes_the_dates_and_names_it_is_given(tmp_path):
    start = datetime.now(UTC) + timedelta(days=2)
    cert, key = write_leaf(
        tmp_path,
        "soon",
        sans=("a.example.test", "b.example.test"),
        not_before=start,
        not_after=start + timedelta(days=5),
    )
    info = certs.load_certificate(cert.read_text())
    assert info.sans == ("a.example.test", "b.example.test")
    assert abs(info.not_before - start) < timedelta(seconds=1)
    assert abs(info.not_after - (start + timedelta(days=5))) < timedelta(seconds=1)
    assert certs.key_matches(info.leaf, certs.load_private_key(key.read_text()))
