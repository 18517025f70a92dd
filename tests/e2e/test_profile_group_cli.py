"""A policy with ``profile-type group`` (issue 16): the real CLI against ``fortiauto lab up`` on 6.4 and 7.x.

The lab's ``profile-group`` state gives the mail policy the group ``mail-group`` (its former
profiles, antivirus included); the lab's data plane then applies the group's profiles, not the
policy's. With ``policy: {vip: ..., profile_group: edit}`` fortiauto sets the group's email
filter, SSL/SSH and protocol options profiles to its own and the policy to proxy mode; without
the opt-in it refuses; ``fortiauto remove`` puts the group's previous profiles back. Every check
reads the unit through the lab's REST and control API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.e2e.clikit import FAST_FAILING_PROBE, Fleet, assert_no_traceback, lab_running, run_cli

pytestmark = pytest.mark.e2e

GROUP = "firewall/profile-group/mail-group"
OURS = {
    "emailfilter-profile": "mail-inbound",
    "ssl-ssh-profile": "protect-mx1",
    "profile-protocol-options": "smtp-inbound",
}


@pytest.fixture(scope="module", params=["6.4", "7.4", "7.6"])
def lab_process(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    state_dir = tmp_path_factory.mktemp(f"group-{request.param}") / "lab"
    with lab_running(state_dir, "--devices", "1", "--version", request.param) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    lab_process.faults({"fgt-001": "profile-group"})
    return lab_process


SEED_BINDINGS = {
    "ssl_profile": "certificate-inspection",
    "emailfilter_profile": "default",
    "protocol_options": "default",
    "inspection_mode": "flow",
}


def _site(lab: Fleet, name: str, *, opt_in: bool, previous: bool = False, fallback: bool = False) -> Path:
    """The lab's site file with (or without) ``profile_group: edit``, fast probes; no fallback rung
    unless ``fallback``."""
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    for server in data["devices"][0]["mail_servers"]:
        if opt_in:
            server["policy"]["profile_group"] = "edit"
        if previous:
            server["previous"] = dict(SEED_BINDINGS)
        if not fallback:
            server.pop("fallback", None)
        server["probe"].update(FAST_FAILING_PROBE)
    out = lab.site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def _cli(*args: str | Path) -> tuple[int, dict[str, Any], str]:
    done = run_cli(*args, "--output", "json")
    assert_no_traceback(done.stderr)
    payload = json.loads(done.stdout)
    assert payload["exit_code"] == done.returncode
    return done.returncode, payload, done.stderr


def _apply(site: Path, journal: Path) -> tuple[int, dict[str, Any]]:
    code, payload, _ = _cli("apply", site, "--yes", "--journal-dir", journal)
    return code, payload["devices"][0]


def _cmdb(lab: Fleet, path: str) -> dict[str, Any]:
    response = lab.controls["fgt-001"].http.get(f"/api/v2/cmdb/{path}")
    response.raise_for_status()
    results = response.json()["results"]
    return dict(results[0] if isinstance(results, list) else results)


def _writes(lab: Fleet) -> int:
    return int(lab.requests()["fgt-001"]["writes"])


def _mail_policy(lab: Fleet) -> dict[str, Any]:
    response = lab.controls["fgt-001"].http.get("/api/v2/cmdb/firewall/policy")
    response.raise_for_status()
    (policy,) = [p for p in response.json()["results"] if p.get("name") == "inbound-smtp"]
    return dict(policy)


def _seed_policy_using_the_group(lab: Fleet, name: str) -> int:
    """Another admin's policy applying the same group, made through the unit's REST API."""
    response = lab.controls["fgt-001"].http.post(
        "/api/v2/cmdb/firewall/policy",
        json={
            "name": name,
            "srcintf": [{"name": "internal"}],
            "dstintf": [{"name": "wan1"}],
            "srcaddr": [{"name": "all"}],
            "dstaddr": [{"name": "all"}],
            "service": [{"name": "SMTP"}],
            "action": "accept",
            "schedule": "always",
            "utm-status": "enable",
            "profile-type": "group",
            "profile-group": "mail-group",
        },
    )
    response.raise_for_status()
    return int(response.json()["mkey"])


def test_opted_in_the_group_gets_the_profiles_and_the_effect_is_logged(lab: Fleet, tmp_path: Path) -> None:
    group_before = _cmdb(lab, GROUP)
    policy_before = _mail_policy(lab)
    site = _site(lab, "edit", opt_in=True)

    code, device = _apply(site, tmp_path / "j")

    assert (code, device["status"], device["effect"]) == (0, "changed", "logged"), device["reason"]
    group = _cmdb(lab, GROUP)
    assert {k: group[k] for k in OURS} == OURS
    # The group's other profiles stay as they were.
    assert {k: v for k, v in group.items() if k not in OURS} == {
        k: v for k, v in group_before.items() if k not in OURS
    }
    policy = _mail_policy(lab)
    assert (policy["profile-type"], policy["inspection-mode"]) == ("group", "proxy")
    # Nothing the policy would ignore was sent: its own profile fields are untouched.
    assert {k: policy[k] for k in OURS} == {k: policy_before[k] for k in OURS}
    # The probe's message was logged by the email filter the group applies, on this policy.
    token = device["evidence"]["token"]
    response = lab.controls["fgt-001"].http.get("/__lab__/log")
    response.raise_for_status()
    logged = [e for e in response.json() if token in e.get("subject", "")]
    assert logged, "the probe's message is not in the lab's email filter log"
    assert {e["policyid"] for e in logged} == {str(policy["policyid"])}

    writes = _writes(lab)
    code, again = _apply(site, tmp_path / "j")
    assert (code, again["status"]) == (0, "unchanged"), again["reason"]
    assert _writes(lab) == writes  # the lab's request log: not one write on the re-run


def test_a_probe_failure_restores_the_group_byte_for_byte(lab: Fleet, tmp_path: Path) -> None:
    lab.faults({"fgt-001": "profile-group,banner-hold-on-utm"})
    pristine = lab.states()

    code, device = _apply(_site(lab, "hold", opt_in=True), tmp_path / "j")

    assert (code, device["status"]) == (3, "rolled_back"), device["reason"]
    assert any(c["path"] == "firewall/profile-group" for c in device["changes"])
    assert lab.states() == pristine  # the group's members and the policy, as they were


def test_the_fallback_rung_goes_into_the_group_too(lab: Fleet, tmp_path: Path) -> None:
    lab.faults({"fgt-001": "profile-group,banner-hold-on-utm"})  # deep inspection holds the banner

    code, device = _apply(_site(lab, "rung", opt_in=True, fallback=True), tmp_path / "j")

    assert (code, device["status"], device["fallback_used"]) == (6, "fallback", "certificate-inspection")
    group = _cmdb(lab, GROUP)
    assert group["ssl-ssh-profile"] == "certificate-inspection"
    assert group["emailfilter-profile"] == "mail-inbound"
    assert _mail_policy(lab)["inspection-mode"] == "proxy"


def test_without_the_opt_in_it_is_refused_with_no_write(lab: Fleet, tmp_path: Path) -> None:
    code, device = _apply(_site(lab, "refuse", opt_in=False), tmp_path / "j")

    assert (code, device["status"]) == (5, "refused")
    assert "profile group 'mail-group'" in device["reason"]
    assert "profile_group: edit" in device["reason"]
    assert _writes(lab) == 0


def test_the_plan_names_every_other_policy_applying_the_group(lab: Fleet, tmp_path: Path) -> None:
    relay = _seed_policy_using_the_group(lab, "relay-smtp")
    branch = _seed_policy_using_the_group(lab, "branch-smtp")
    writes = _writes(lab)

    code, payload, _ = _cli("plan", _site(lab, "shared", opt_in=True))

    assert code == 0
    (warning,) = [w for w in payload["devices"][0]["warnings"] if "profile group mail-group" in w]
    assert f"policies {relay} (relay-smtp), {branch} (branch-smtp)" in warning
    assert "changes those policies too" in warning
    text = run_cli("plan", _site(lab, "shared", opt_in=True))
    assert (
        f"! warning: profile group mail-group is also applied by policies {relay} (relay-smtp)" in text.stdout
    )
    assert _writes(lab) == writes  # planning wrote nothing


def test_a_later_edit_of_the_group_by_another_admin_is_left_alone(lab: Fleet, tmp_path: Path) -> None:
    journal = tmp_path / "j"
    code, payload, _ = _cli("apply", _site(lab, "later", opt_in=True), "--yes", "--journal-dir", journal)
    assert code == 0, payload["devices"][0]["reason"]
    edited = lab.controls["fgt-001"].http.put(
        f"/api/v2/cmdb/{GROUP}", json={"emailfilter-profile": "default"}
    )
    edited.raise_for_status()

    code, undone, _ = _cli("rollback", "--yes", "--run", payload["run_id"], "--journal-dir", journal)

    device = undone["devices"][0]
    assert (code, device["status"]) == (4, "failed"), device["reason"]
    assert (
        f"update {GROUP} (vdom root): changed on the device since this run wrote it; not touched"
        in device["left_over"][0]
    )
    assert _mail_policy(lab)["inspection-mode"] == "flow"  # the policy, untouched since, was restored
    group = _cmdb(lab, GROUP)
    assert group["emailfilter-profile"] == "default"  # the other admin's edit stands
    assert group["ssl-ssh-profile"] == "protect-mx1"  # and the group was not half-restored


def test_remove_puts_the_groups_previous_profiles_back(lab: Fleet, tmp_path: Path) -> None:
    pristine = lab.states()
    site = _site(lab, "remove", opt_in=True, previous=True)
    assert _cli("apply", site, "--yes", "--journal-dir", tmp_path / "a")[0] == 0

    code, payload, _ = _cli("remove", site, "--yes", "--journal-dir", tmp_path / "r")

    device = payload["devices"][0]
    assert (code, device["status"]) == (0, "changed"), device["reason"]
    assert [(c["action"], c["path"]) for c in device["changes"]] == [
        ("update", "firewall/policy"),
        ("update", "firewall/profile-group"),
        ("delete", "emailfilter/profile"),
        ("delete", "firewall/ssl-ssh-profile"),
        ("delete", "firewall/profile-protocol-options"),
        ("delete", "vpn.certificate/local"),
    ]
    assert lab.states() == pristine  # the group's members back, fortiauto's profiles gone
