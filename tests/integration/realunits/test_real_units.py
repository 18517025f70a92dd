"""Real FortiGates in the field, played by the lab: FortiOS 7.6, 2 GB models, NGFW policy-based
VDOMs, profile groups, a shared SSL profile, and the configuration revision saved before writing.

Each test drives fortiauto's own pipeline (site file -> fleet -> transaction) against a lab unit and
checks the unit with the lab's control API or an independent client. Runtime: about 20 s.
"""

from __future__ import annotations

import json

import pytest

from fortiauto.certs import pem_fingerprint
from fortiauto.journal import read_journal
from tests.integration.day2.daykit import FAST, derived_name, site_copy
from tests.integration.engine.labkit import apply, cmdb, pyfortiapi_for, rollback_last

SSL_PROFILE = "firewall/ssl-ssh-profile/protect-mx1"


def _cmdb(control, path: str) -> list[dict]:
    """A CMDB read over the lab's REST API with the unit's token (pyfortiapi's /logincheck
    session does not exist on 7.6.3+)."""
    response = control.http.get(f"/api/v2/cmdb/{path}")
    response.raise_for_status()
    results = response.json()["results"]
    return [results] if isinstance(results, dict) else list(results)


def _bound(control) -> list[str]:
    value = _cmdb(control, SSL_PROFILE)[0]["server-cert"]
    return [value] if isinstance(value, str) else [c["name"] for c in value]


def _revisions(control) -> list[dict]:
    answer = control.http.get("/api/v2/monitor/system/config-revision").json()["results"]
    return list(answer["revisions"])


# ---------------------------------------------------------------- FortiOS 7.6


@pytest.mark.parametrize("login", ["token", "session"])
async def test_fortios_7_6_apply_noop_rollback(unit_lab, monkeypatch, tmp_path, login):
    lab = unit_lab("7.6")
    control = lab.control()
    site = lab.site
    if login == "session":  # 7.6.4: POST /api/v2/authentication, /logincheck opens no session
        monkeypatch.setenv("LAB_ADMIN_PASSWORD", lab.info["devices"][0]["password"])
        site = site_copy(
            lab.site,
            "session",
            device={"token": None, "username": "admin", "password": "${env:LAB_ADMIN_PASSWORD}"},
        )
    pristine = control.state()
    first = await apply(site, tmp_path / "j")
    device = first.devices[0]
    assert device.status == "changed", device.reason
    assert first.exit_code == 0
    assert device.effect == "logged"
    ssl = _cmdb(control, SSL_PROFILE)[0]
    assert ssl["ssl"]["inspect-all"] == "deep-inspection"
    emailfilter = _cmdb(control, "emailfilter/profile/mail-inbound")[0]
    assert emailfilter["spam-filtering"] == "enable"
    assert set(emailfilter["options"].split()) == {"spamfsip", "spamfsurl", "spamfschksum"}
    assert emailfilter["smtp"]["action"] == "tag"

    mark = control.requests()
    again = await apply(site, tmp_path / "j")
    assert again.devices[0].status == "unchanged", again.devices[0].reason
    assert again.devices[0].requests.writes == 0
    assert control.requests()["writes"] == mark["writes"]

    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"], undone.devices[0].reason
    assert control.state() == pristine  # byte for byte


async def test_a_newer_family_is_refused_unless_the_site_opts_in(unit_lab, tmp_path):
    lab = unit_lab("7.6.4")
    control = lab.control()
    # The lab has no 8.0: a client-side stand-in is not needed, the version check is pure and
    # unit-tested; here the opt-in must not change anything on a supported family.
    site = site_copy(lab.site, "newer", device={"allow_newer_fortios": True})
    run = await apply(site, tmp_path / "j", check=True, probe=False, command="plan")
    plan = run.devices[0].plan
    assert plan is not None
    assert not any("newer than the supported" in w for w in plan.warnings)
    assert control.requests()["writes"] == 0


# ---------------------------------------------------------------- 2 GB models


async def test_2gb_unit_on_7_4_4_is_refused_before_any_write(unit_lab, tmp_path):
    lab = unit_lab("7.4.4", model="FortiGate-60F")
    control = lab.control()
    pristine = control.state()
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "refused", device.reason
    assert run.exit_code == 5
    assert "FGT60F" in device.reason
    assert "no proxy-based inspection" in device.reason
    assert "7.6.5" in device.reason  # the way out
    assert device.requests.writes == 0
    assert control.requests()["writes"] == 0
    assert control.state() == pristine
    assert not list((tmp_path / "j").glob("*.jsonl")) or all(
        e.get("type") != "pre" for f in (tmp_path / "j").glob("*.jsonl") for e in read_journal(f)
    )


async def test_2gb_unit_on_7_6_5_gets_per_protocol_ssl_inspection(unit_lab, monkeypatch, tmp_path):
    lab = unit_lab("7.6.5", model="FortiGate-60F")
    control = lab.control()
    pristine = control.state()
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    assert run.exit_code == 0
    assert device.fallback_used is None
    ssl = _cmdb(control, SSL_PROFILE)[0]
    assert ssl["ssl"]["inspect-all"] == "disable"  # a proxy policy refuses inspect-all on this model
    assert ssl["smtps"]["status"] == "deep-inspection"
    policy = next(p for p in _cmdb(control, "firewall/policy") if p["name"] == "inbound-smtp")
    assert policy["inspection-mode"] == "proxy"
    assert policy["ssl-ssh-profile"] == "protect-mx1"

    again = await apply(lab.site, tmp_path / "j")
    assert again.devices[0].status == "unchanged", again.devices[0].reason
    assert again.devices[0].requests.writes == 0
    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"]
    assert control.state() == pristine


# ---------------------------------------------------------------- modes that ignore or refuse profiles


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("ngfw-policy-based", ["NGFW policy-based mode", "firewall/security-policy"]),
        ("profile-group", ["profile group 'mail-group'", "profile-type group"]),
    ],
)
async def test_policies_whose_profiles_would_not_apply_are_refused(unit_lab, tmp_path, fault, words):
    lab = unit_lab("7.2", faults=f"fgt-001:{fault}")
    control = lab.control()
    pristine = control.state()
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "refused", device.reason
    assert run.exit_code == 5
    for word in words:
        assert word in device.reason
    assert device.requests.writes == 0
    assert control.requests()["writes"] == 0
    assert control.state() == pristine


# ---------------------------------------------------------------- a shared SSL profile


async def test_shared_ssl_profile_keeps_the_other_certificate_and_rollback_restores_the_list(
    unit_lab, monkeypatch, tmp_path
):
    lab = unit_lab("7.4", faults="fgt-001:shared-ssl-profile")
    control = lab.control()
    pristine = control.state()
    fgt = pyfortiapi_for(lab.info["devices"][0], lab.ca, monkeypatch)  # an independent client too
    assert _bound(control) == ["www-example"]
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    ours = derived_name(lab.site.parent, "certs/mx1.pem")
    assert _bound(control) == ["www-example", ours]  # added beside the other site's, not over it
    assert [c["name"] for c in cmdb(fgt, SSL_PROFILE)[0]["server-cert"]] == ["www-example", ours]

    again = await apply(lab.site, tmp_path / "j")
    assert again.devices[0].requests.writes == 0, again.devices[0].reason

    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"]
    assert _bound(control) == ["www-example"]
    assert control.state() == pristine


# ---------------------------------------------------------------- the configuration revision


async def test_a_configuration_revision_is_saved_before_the_first_write(unit_lab, tmp_path):
    lab = unit_lab("7.0")
    control = lab.control()
    assert _revisions(control) == []
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    saved = [r for r in _revisions(control) if r["comment"] == run.run_id]
    assert len(saved) == 1
    assert device.config_revision == str(saved[0]["id"])
    entries = read_journal(tmp_path / "j" / f"{run.run_id}.jsonl")
    kinds = [e["type"] for e in entries]
    revision = next(e for e in entries if e["type"] == "config_revision")
    assert kinds.index("config_revision") < kinds.index("pre")  # before the first write
    assert revision["id"] == device.config_revision
    assert revision["cost_ms"] >= 0

    again = await apply(lab.site, tmp_path / "j")  # nothing to write: no revision either
    assert again.devices[0].config_revision is None
    assert len([r for r in _revisions(control) if r["comment"] == again.run_id]) == 0
    assert json.dumps(again.devices[0].requests.to_json())  # counts still reported


async def test_a_failed_probe_run_also_saved_its_revision(unit_lab, tmp_path):
    lab = unit_lab("7.2")
    control = lab.control()
    control.faults("banner-hold-on-utm")
    site = site_copy(lab.site, "fast", mail_server={"probe": FAST, "fallback": None})
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "rolled_back", device.reason
    assert device.config_revision is not None
    assert [r["id"] for r in _revisions(control) if r["comment"] == run.run_id] == [
        int(device.config_revision)
    ]


async def test_shared_ssl_profile_on_6_4_says_it_replaces_the_other_certificate(unit_lab, tmp_path):
    lab = unit_lab("6.4", faults="fgt-001:shared-ssl-profile")
    control = lab.control()
    pristine = control.state()
    planned = await apply(lab.site, tmp_path / "j", check=True, probe=False, command="plan")
    plan = planned.devices[0].plan
    assert plan is not None
    assert any("presents certificate www-example" in w for w in plan.warnings)
    run = await apply(lab.site, tmp_path / "j")
    assert run.devices[0].status == "changed", run.devices[0].reason
    assert _bound(control) == [derived_name(lab.site.parent, "certs/mx1.pem")]
    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"]
    assert _bound(control) == ["www-example"]
    assert control.state() == pristine


# ---------------------------------------------------------------- a chained certificate


@pytest.mark.parametrize("version", ["6.4", "7.4"])
async def test_a_chained_certificate_brings_its_intermediate_and_the_probe_verifies_the_chain(
    unit_lab, tmp_path, version
):
    lab = unit_lab(version, mail_chain=True)
    control = lab.control()
    state_dir = lab.site.parent
    full = state_dir / "certs" / "mx1-full.pem"  # what certbot's fullchain.pem holds: leaf + intermediate
    full.write_text(
        (state_dir / "certs" / "mx1.pem").read_text() + (state_dir / "certs" / "mx1-chain.pem").read_text()
    )
    strict = {"verify_chain": "ca.pem"}  # a sender that validates PKIX against the lab's root
    site = site_copy(
        lab.site,
        f"chain-{version}",
        mail_server={"certificate": {"cert": "certs/mx1-full.pem", "key": "certs/mx1.key"}, "probe": strict},
    )
    pristine = control.state()
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    assert device.probe is not None
    assert device.probe.passed
    assert device.changes[0].path == "vpn.certificate/ca"  # the chain is in place before the leaf
    cas = {c["name"]: c["ca"] for c in _cmdb(control, "vpn.certificate/ca")}
    imported = [name for name in cas if name.startswith("fa-ca-")]
    assert len(imported) == 1
    chain = (state_dir / "certs" / "mx1-chain.pem").read_text()
    assert pem_fingerprint(cas[imported[0]]) == pem_fingerprint(chain)  # the intermediate, not the root

    again = await apply(site, tmp_path / "j")
    assert again.devices[0].status == "unchanged", again.devices[0].reason
    assert again.devices[0].requests.writes == 0

    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"]
    assert control.state() == pristine


async def test_without_its_intermediate_the_strict_probe_refuses_the_chain(unit_lab, tmp_path):
    lab = unit_lab("7.2", mail_chain=True)
    control = lab.control()
    pristine = control.state()
    strict = {"verify_chain": "ca.pem", "timeout": 1.5, "retries": 1, "retry_delay": 0.1}
    site = site_copy(
        lab.site, "leaf-only", mail_server={"probe": strict, "fallback": None}
    )  # certs/mx1.pem: leaf
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "rolled_back", device.reason  # a strict sender would have been broken
    assert "chain" in device.reason
    assert control.state() == pristine
