"""A renewal signed by another issuer forces a chain check on the probe after the change.

``rotation.chain_check`` decides from the retired certificate as the device returned it and the
site's renewed certificate; the verifier hands the decision to the probe through its own options
(``verify_chain``, ``server_name``) and names the renewal in a chain that does not verify.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from fortiauto.events import Events
from fortiauto.probe.classify import FailureClass
from fortiauto.results import ProbeResult, ProbeStep
from fortiauto.rotation import chain_check
from fortiauto.site import CertificateSpec, Device, MailServer, PolicyRef, ProbeSpec, load_site
from fortiauto.transaction.verify import Verifier, renewed_chain_finding
from tests.unit.probe.test_via_site import write_site

SAN = "mx1.example.test"


@pytest.fixture(scope="module")
def old_ca() -> trustme.CA:
    return trustme.CA(organization_name="Old Mail CA")


@pytest.fixture(scope="module")
def new_ca() -> trustme.CA:
    return trustme.CA(organization_name="New Mail CA")


def leaf(ca: trustme.CA) -> str:
    return ca.issue_cert(SAN).cert_chain_pems[0].bytes().decode()


def mail_server(cert_pem: str, probe: dict[str, object] | None = None) -> MailServer:
    return MailServer(
        name="mx1",
        policy=PolicyRef(vip="vip-mx1"),
        certificate=CertificateSpec(
            cert=Path("mx1.pem"),
            key=Path("mx1.key"),
            fingerprint_sha256="ab" * 32,
            cert_pem=cert_pem,
            sans=(SAN,),
        ),
        emailfilter_profile="mail-inbound",
        ssl_profile="protect-mx1",
        protocol_options="smtp-inbound",
        probe=ProbeSpec.model_validate({"host": "127.0.0.1", **(probe or {})}),
    )


def test_the_same_issuer_forces_nothing(old_ca: trustme.CA) -> None:
    ms = mail_server(leaf(old_ca))
    assert chain_check(ms, {"fa-mx1-00000000": leaf(old_ca)}) is None


def test_no_retired_certificate_forces_nothing(old_ca: trustme.CA) -> None:
    assert chain_check(mail_server(leaf(old_ca)), {}) is None


def test_another_issuer_forces_the_system_trust_store_when_the_site_says_nothing(
    old_ca: trustme.CA, new_ca: trustme.CA
) -> None:
    ms = mail_server(leaf(new_ca))
    check = chain_check(ms, {"fa-mx1-00000000": leaf(old_ca)})
    assert check is not None
    assert check.forced
    assert check.trust is True
    assert check.anchors == "the system trust store"
    assert check.server_name == SAN  # the certificate's own name: the probe had none
    assert "Old Mail CA" in (check.old_issuer or "")
    assert "New Mail CA" in check.new_issuer
    spec = check.spec(ms.probe)
    assert spec.verify_chain is True
    assert spec.server_name == SAN
    assert ms.probe.verify_chain is False  # the site's own spec is left as it is
    assert "verified against the system trust store before fa-mx1-00000000 is retired" in check.note()


def test_the_sites_ca_bundle_is_what_the_chain_must_lead_to(
    old_ca: trustme.CA, new_ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "mail-ca.pem"
    ms = mail_server(leaf(new_ca), {"verify_chain": bundle, "server_name": "mx.example.test"})
    check = chain_check(ms, {"fa-mx1-00000000": leaf(old_ca)})
    assert check is not None
    assert check.forced
    assert check.trust == bundle
    assert check.anchors == f"the CA bundle {bundle}"
    spec = check.spec(ms.probe)
    assert spec.verify_chain == bundle
    assert spec.server_name == "mx.example.test"  # the probe's own name wins


def test_an_explicit_false_opts_out_and_the_note_says_so(old_ca: trustme.CA, new_ca: trustme.CA) -> None:
    ms = mail_server(leaf(new_ca), {"verify_chain": False})
    check = chain_check(ms, {"fa-mx1-00000000": leaf(old_ca)})
    assert check is not None
    assert not check.forced
    assert check.spec(ms.probe) is ms.probe
    assert "verify_chain: false" in check.note()
    assert "not verified" in check.note()


def test_a_retired_certificate_the_device_does_not_show_counts_as_changed(old_ca: trustme.CA) -> None:
    check = chain_check(mail_server(leaf(old_ca)), {"fa-mx1-00000000": None})
    assert check is not None
    assert check.forced
    assert check.old_issuer is None
    assert "fa-mx1-00000000 could not be read, so taken as changed" in check.note()


def test_no_name_to_verify_for_is_said_not_guessed(old_ca: trustme.CA, new_ca: trustme.CA) -> None:
    ms = mail_server(leaf(new_ca))
    ms = ms.model_copy(update={"certificate": ms.certificate.model_copy(update={"sans": ()})})
    check = chain_check(ms, {"fa-mx1-00000000": leaf(old_ca)})
    assert check is not None
    assert not check.forced
    assert "set probe.server_name" in check.note()


class RecordingProber:
    def __init__(self, result: ProbeResult) -> None:
        self.result = result
        self.specs: list[ProbeSpec] = []

    async def __call__(self, spec: ProbeSpec, **_: object) -> ProbeResult:
        self.specs.append(spec)
        return self.result


def untrusted(detail: str) -> ProbeResult:
    return ProbeResult(
        passed=False,
        mode="starttls",
        failure_class=FailureClass.CHAIN_UNTRUSTED.value,
        steps=(ProbeStep("connect", 1.0, True), ProbeStep("tls", 2.0, False, detail)),
    )


async def test_the_verifier_asks_the_probe_for_the_chain_only_where_a_check_is_forced(
    old_ca: trustme.CA, new_ca: trustme.CA
) -> None:
    ms = mail_server(leaf(new_ca))
    device = Device(name="fgt-1", url="https://127.0.0.1:1", token="x", mail_servers=(ms,))
    check = chain_check(ms, {"fa-mx1-00000000": leaf(old_ca)})
    assert check is not None
    prober = RecordingProber(untrusted("chain does not verify against the system trust store: nope"))
    verifier = Verifier(device, prober, "r1", Events())

    await verifier.probe_all("baseline", pinned=False)
    after = await verifier.probe_all("after", pinned=True, chain_checks=(check,))

    assert [s.verify_chain for s in prober.specs] == [False, True]
    assert prober.specs[1].server_name == SAN
    assert after["mx1"].steps[-1].detail == (
        "the renewed certificate's chain does not verify against the system trust store: nope"
    )
    assert verifier.history[-1].result is after["mx1"]  # reports show the finding as said


def test_a_trust_store_that_cannot_be_read_is_named_as_the_renewals_check() -> None:
    found = renewed_chain_finding(untrusted("no system trust store found (install ca-certificates)"))
    assert found.steps[-1].detail == (
        "the renewed certificate's chain could not be verified: no system trust store found "
        "(install ca-certificates)"
    )


def test_other_failures_are_left_as_the_probe_said_them() -> None:
    result = ProbeResult(
        passed=False,
        mode="starttls",
        failure_class=FailureClass.CERTIFICATE_MISMATCH.value,
        steps=(ProbeStep("tls", 1.0, False, "served sha256 aa is not the pinned bb"),),
    )
    assert renewed_chain_finding(result) is result


@pytest.mark.parametrize(
    ("probe", "defaults", "opted_out"),
    [
        ("", "", [False, False]),
        (", verify_chain: false", "", [True, False]),  # only where it is written
        ("", "  probe: {verify_chain: false}", [True, True]),  # inherited from defaults.probe
        (", verify_chain: true", "  probe: {verify_chain: false}", [False, True]),  # the server's wins
    ],
)
def test_an_opt_out_is_an_explicit_false_in_the_site_file(
    tmp_path: Path,
    old_ca: trustme.CA,
    new_ca: trustme.CA,
    probe: str,
    defaults: str,
    opted_out: list[bool],
) -> None:
    servers = load_site(write_site(tmp_path, probe, defaults)).devices[0].mail_servers
    renewed = leaf(new_ca)
    checks = [
        chain_check(
            ms.model_copy(update={"certificate": ms.certificate.model_copy(update={"cert_pem": renewed})}),
            {"fa-mx1-00000000": leaf(old_ca)},
        )
        for ms in servers
    ]
    assert [c is not None and not c.forced for c in checks] == opted_out


def test_a_plain_text_probe_cannot_see_a_chain_and_the_note_says_so(
    old_ca: trustme.CA, new_ca: trustme.CA
) -> None:
    ms = mail_server(leaf(new_ca), {"mode": "plain"})
    check = chain_check(ms, {"fa-mx1-00000000": leaf(old_ca)})
    assert check is not None
    assert not check.forced
    assert "does not use TLS (probe.mode: plain)" in check.note()
