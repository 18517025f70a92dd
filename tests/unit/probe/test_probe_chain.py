"""``probe.verify_chain``: the chain the server presents must lead to a trusted CA (F11 chain-untrusted).

A test SMTP server (aiosmtpd, STARTTLS or implicit TLS) serves a leaf signed by an
intermediate, with or without that intermediate, or a chain from another root; the probe
checks it against a CA bundle file or the system trust store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from fortiauto.probe import FailureClass, run_probe
from fortiauto.probe.certcheck import load_trust, trust_label
from tests.unit.probe.conftest import SpecFactory
from tests.unit.probe.servers import SERVER_NAME, Mailbox, aiosmtpd_server, serving


@pytest.fixture(scope="module")
def root() -> trustme.CA:
    return trustme.CA(organization_name="Mail Root CA")


@pytest.fixture(scope="module")
def intermediate(root: trustme.CA) -> trustme.CA:
    return root.create_child_ca()


def bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / f"trust-{id(ca)}.pem"
    path.write_bytes(ca.cert_pem.bytes())
    return path


async def test_a_complete_chain_to_the_given_ca_passes(
    make_spec: SpecFactory, root: trustme.CA, intermediate: trustme.CA, tmp_path: Path
) -> None:
    tls = serving(intermediate.issue_cert(SERVER_NAME), tmp_path)
    async with aiosmtpd_server(Mailbox(), starttls=tls) as port:
        result = await run_probe(make_spec(port, verify_chain=bundle(root, tmp_path)))

    assert result.passed, result.transcript
    assert "=== TLS peer sent 2 certificate(s)" in result.transcript


async def test_a_chain_missing_its_intermediate_fails(
    make_spec: SpecFactory, root: trustme.CA, intermediate: trustme.CA, tmp_path: Path
) -> None:
    tls = serving(intermediate.issue_cert(SERVER_NAME), tmp_path, with_intermediates=False)
    async with aiosmtpd_server(Mailbox(), starttls=tls) as port:
        result = await run_probe(make_spec(port, retries=3, verify_chain=bundle(root, tmp_path)))

    assert result.failure_class == FailureClass.CHAIN_UNTRUSTED
    assert result.attempts == 1  # what the server presents does not change on a retry
    assert "=== TLS peer sent 1 certificate(s)" in result.transcript
    detail = result.steps[-1].detail
    assert detail.startswith(f"chain does not verify against the CA bundle {bundle(root, tmp_path)}: ")
    assert "1 certificate(s) sent" in detail
    assert result.peer_cert_sha256 is not None  # the leaf is still read and reported


async def test_a_renewal_signed_by_another_ca_fails(
    make_spec: SpecFactory, root: trustme.CA, tmp_path: Path
) -> None:
    other = trustme.CA(organization_name="Other Root CA").create_child_ca()
    tls = serving(other.issue_cert(SERVER_NAME), tmp_path)
    async with aiosmtpd_server(Mailbox(), implicit_tls=tls) as port:
        result = await run_probe(make_spec(port, mode="smtps", verify_chain=bundle(root, tmp_path)))

    assert result.failure_class == FailureClass.CHAIN_UNTRUSTED
    assert "Other Root CA" not in bundle(root, tmp_path).read_text()


async def test_the_system_trust_store_does_not_know_a_private_ca(
    make_spec: SpecFactory, intermediate: trustme.CA, tmp_path: Path
) -> None:
    try:
        load_trust(True)
    except ValueError as exc:
        pytest.skip(f"no system trust store here: {exc}")
    tls = serving(intermediate.issue_cert(SERVER_NAME), tmp_path)
    async with aiosmtpd_server(Mailbox(), starttls=tls) as port:
        result = await run_probe(make_spec(port, verify_chain=True))

    assert result.failure_class == FailureClass.CHAIN_UNTRUSTED


async def test_the_system_trust_store_is_openssls_default_file_which_ssl_cert_file_overrides(
    make_spec: SpecFactory,
    root: trustme.CA,
    intermediate: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stand-in system store (never the machine's own): what senders on this host would trust.
    store = bundle(root, tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(store))
    assert trust_label(True) == f"the system trust store ({store})"
    tls = serving(intermediate.issue_cert(SERVER_NAME), tmp_path)
    async with aiosmtpd_server(Mailbox(), starttls=tls) as port:
        trusted = await run_probe(make_spec(port, verify_chain=True))
        other = bundle(trustme.CA(organization_name="Unrelated Root CA"), tmp_path)
        monkeypatch.setenv("SSL_CERT_FILE", str(other))
        untrusted = await run_probe(make_spec(port, verify_chain=True))

    assert trusted.passed, trusted.transcript
    assert untrusted.failure_class == FailureClass.CHAIN_UNTRUSTED
    assert f"against the system trust store ({other}): " in untrusted.steps[-1].detail


async def test_the_pin_is_judged_before_the_chain(
    make_spec: SpecFactory, root: trustme.CA, intermediate: trustme.CA, tmp_path: Path
) -> None:
    tls = serving(intermediate.issue_cert(SERVER_NAME), tmp_path, with_intermediates=False)
    async with aiosmtpd_server(Mailbox(), starttls=tls) as port:
        result = await run_probe(make_spec(port, verify_chain=bundle(root, tmp_path)), pin_sha256="ab" * 32)

    assert result.failure_class == FailureClass.CERTIFICATE_MISMATCH


async def test_without_verify_chain_a_broken_chain_is_not_judged(
    make_spec: SpecFactory, intermediate: trustme.CA, tmp_path: Path
) -> None:
    # Port-25 senders seldom verify: the default stays the leaf checks only.
    tls = serving(intermediate.issue_cert(SERVER_NAME), tmp_path, with_intermediates=False)
    async with aiosmtpd_server(Mailbox(), starttls=tls) as port:
        result = await run_probe(make_spec(port))

    assert result.passed, result.transcript


def test_a_bundle_without_certificates_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="holds no PEM certificates"):
        load_trust(empty)
