"""The desired state: the builder and templates/desired/recommended.yaml.j2 agree on every family,
model class and rung; shared profiles merge into one desired state; version and model facts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fortiauto.desired import ON_CREATE, desired_objects, merge_shared, recommended
from fortiauto.errors import PlanError, Refused, UnsupportedVersion
from fortiauto.fortios.version import SUPPORTED_FAMILIES, FortiOSVersion, small_ram_model
from fortiauto.site import CertificateSpec, MailServer, PolicyRef, ProbeSpec

ROOT = Path(__file__).resolve().parents[2]
RELEASES = ("6.4.1", "6.4.14", "7.0.15", "7.2.10", "7.4.3", "7.4.4", "7.4.8", "7.6.4", "7.6.5", "8.0.1")
MODELS = ("", "FGVM64", "FGT60F", "FGT100F")


def mail_server(name: str = "mx1", fingerprint: str = "ab12cd34" + "0" * 56, **keys: object) -> MailServer:
    values: dict[str, object] = {
        "name": name,
        "policy": PolicyRef(vip=f"vip-{name}"),
        "certificate": CertificateSpec(
            cert=Path(f"{name}.pem"), key=Path(f"{name}.key"), fingerprint_sha256=fingerprint
        ),
        "emailfilter_profile": "mail-inbound",
        "ssl_profile": "protect-mx1",
        "protocol_options": "smtp-inbound",
        "probe": ProbeSpec(host="127.0.0.1"),
    }
    values.update(keys)
    return MailServer.model_validate(values)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("templates")
    shutil.copytree(ROOT / "templates" / "desired", folder / "desired")
    return folder


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("rung", [None, "certificate-inspection"])
def test_the_template_renders_what_the_builder_builds(templates, release, model, rung):
    version = FortiOSVersion.parse(release).on_model(model)
    ms = mail_server(spam_checks=("spamfsip", "spamrbl"))
    if not version.has_proxy_inspection:
        for build in (
            lambda: recommended(ms, version, rung=rung),
            lambda: desired_objects(ms, version, templates=templates),
        ):
            with pytest.raises(Refused, match="no proxy-based inspection"):
                build()
        return
    assert desired_objects(ms, version, rung=rung, templates=templates) == recommended(ms, version, rung=rung)


def test_every_supported_family_has_a_desired_state():
    for family in SUPPORTED_FAMILIES:
        objects = recommended(mail_server(), FortiOSVersion.parse(family))
        assert set(objects) == {"certificate", "ssl_profile", "protocol_options", "emailfilter", "policy"}


@pytest.mark.parametrize(
    ("release", "model", "form"),
    [
        ("7.4.8", "FGVM64", {"ssl": {"inspect-all": "deep-inspection"}}),
        ("7.6.4", "FGT60F", None),  # refused: no proxy
        (
            "7.6.5",
            "FGT60F",
            {"ssl": {"inspect-all": "disable"}, "smtps": {"ports": "465", "status": "deep-inspection"}},
        ),
        ("7.6.5", "FGT100F", {"ssl": {"inspect-all": "deep-inspection"}}),
    ],
)
def test_one_ssl_form_as_the_unit_takes_it(release, model, form):
    version = FortiOSVersion.parse(release).on_model(model)
    if form is None:
        with pytest.raises(Refused):
            recommended(mail_server(), version)
        return
    ssl = recommended(mail_server(), version)["ssl_profile"]
    assert {k: v for k, v in ssl.items() if k in ("ssl", "smtps")} == form


def test_a_created_profile_checks_for_spam_and_only_tags():
    ef = recommended(mail_server(), FortiOSVersion.parse("7.4.8"))["emailfilter"]
    assert ef[ON_CREATE] == {
        "spam-filtering": "enable",
        "options": "spamfsip spamfsurl spamfschksum",
        "smtp": {"action": "tag"},
    }
    assert "spam-filtering" not in ef  # never forced onto an existing profile


def test_small_units_on_7_6_5_keep_the_proxy_feature_set():
    for release in ("7.4.3", "7.6.5"):
        version = FortiOSVersion.parse(release).on_model("FGT60F")
        assert recommended(mail_server(), version)["emailfilter"]["feature-set"] == "proxy"
    assert not FortiOSVersion.parse("7.4.4").on_model("FGT60F").has_feature_set


# ---------------------------------------------------------------- shared profiles (issue 20)


def _entries(*servers: MailServer, version: str = "7.2.10"):
    v = FortiOSVersion.parse(version)
    return [(ms, "root", recommended(ms, v)) for ms in servers]


def test_two_mail_servers_sharing_profiles_get_one_desired_state():
    mx1, mx2 = mail_server("mx1"), mail_server("mx2")
    merged = merge_shared(_entries(mx1, mx2))
    first, second = merged
    for task in ("ssl_profile", "protocol_options", "emailfilter"):
        assert first[task] == second[task], task
    assert first["ssl_profile"]["server-cert"] == [{"name": "fa-mx1-ab12cd34"}, {"name": "fa-mx2-ab12cd34"}]
    assert first["ssl_profile"]["comment"] == "fortiauto: Protecting SSL Server for mx1, mx2"
    assert first["emailfilter"]["comment"] == "fortiauto: log all inbound mail for mx1, mx2"
    assert first["certificate"] != second["certificate"]  # each its own import
    # The site order decides, so every run merges the same way.
    assert merge_shared(_entries(mx1, mx2)) == merged


def test_a_profile_that_holds_one_certificate_cannot_be_shared_on_6_4():
    with pytest.raises(PlanError, match=r"mx1 and mx2.*holds one certificate"):
        merge_shared(_entries(mail_server("mx1"), mail_server("mx2"), version="6.4.14"))


def test_servers_wanting_different_content_are_named():
    mx2 = mail_server("mx2", spam_checks=("spamrbl",))
    with pytest.raises(PlanError, match="mx1 and mx2"):
        merge_shared(_entries(mail_server("mx1"), mx2))


def test_unshared_profiles_stay_as_built():
    mx2 = mail_server(
        "mx2", ssl_profile="protect-mx2", emailfilter_profile="mail-2", protocol_options="smtp-2"
    )
    entries = _entries(mail_server("mx1"), mx2)
    assert merge_shared(entries) == [objects for _, _, objects in entries]


# ---------------------------------------------------------------- version and model facts


@pytest.mark.parametrize(
    ("model", "small"),
    [
        ("FGT60F", True),
        ("FortiGate-60F", True),
        ("FWF61F", True),
        ("FGT40F3G4G", True),
        ("FGR60F", True),
        ("FortiGate-Rugged 60F", True),
        ("FGT90E", True),
        ("FGT70F", False),
        ("FGT100F", False),
        ("FGT600F", False),
        ("FGVM64", False),
        ("", False),
    ],
)
def test_small_ram_models(model, small):
    assert small_ram_model(model) is small


def test_7_6_is_supported_and_newer_families_only_on_request():
    assert FortiOSVersion.parse("7.6.0").require_supported().family == "7.6"
    with pytest.raises(
        UnsupportedVersion, match=r"supported: 6\.4, 7\.0, 7\.2, 7\.4, 7\.6; set allow_newer_fortios"
    ):
        FortiOSVersion.parse("8.0.1").require_supported()
    newer = FortiOSVersion.parse("8.0.1").require_supported(allow_newer=True)
    (note,) = newer.support_notes()
    assert "7.6 desired state" in note
    with pytest.raises(UnsupportedVersion):
        FortiOSVersion.parse("6.2.16").require_supported(allow_newer=True)  # older is never tried
    assert FortiOSVersion.parse("7.6.4").support_notes() == ()
