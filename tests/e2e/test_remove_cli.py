"""``fortiauto remove`` through the CLI against ``fortiauto lab up``: Ansible's ``state: absent``.

After an apply, remove takes the configuration back off without its journal: the policy is bound
again to the site file's ``previous`` profiles, the objects fortiauto created (``fortiauto:``
comment, ``fa-`` certificate) are deleted, and the unit is byte-identical to its seed. A mail
server without ``previous`` is refused with zero writes; an object another admin has made their
own is kept; a removal whose probe fails is rolled back to the applied state.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from tests.e2e.clikit import Fleet, assert_no_traceback, fleet_running, run_cli, statuses

pytestmark = pytest.mark.e2e

SEED_BINDINGS = {
    "ssl_profile": "certificate-inspection",
    "emailfilter_profile": "default",
    "protocol_options": "default",
    "inspection_mode": "flow",
}


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("remove") / "lab", devices=4) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    return lab_process


def _site_with_previous(
    lab: Fleet, name: str, devices: Collection[str], previous: dict[str, str] = SEED_BINDINGS
) -> Path:
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    for device in data["devices"]:
        for server in device["mail_servers"]:
            if device["name"] in devices:
                server["previous"] = dict(previous)
    out = lab.site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def _json(done: Any) -> dict[str, Any]:
    assert_no_traceback(done.stderr)
    payload: dict[str, Any] = json.loads(done.stdout)
    return payload


def _writes(lab: Fleet) -> dict[str, int]:
    return {name: r["writes"] for name, r in lab.requests().items()}


def _rest(lab: Fleet, device: str) -> httpx.Client:
    info = next(d for d in lab.info["devices"] if d["name"] == device)
    trust = ssl.create_default_context(cafile=lab.ca)
    return httpx.Client(
        base_url=info["url"], verify=trust, headers={"Authorization": f"Bearer {info['token']}"}
    )


def test_remove_restores_the_seed_state_and_refuses_a_server_without_previous(lab, tmp_path):
    applied = run_cli("apply", lab.site, "--yes", "--limit", "fgt-00[12]", "--journal-dir", tmp_path / "a")
    assert applied.returncode == 0, applied.stderr
    after_apply = lab.states(["fgt-001", "fgt-002"])
    assert after_apply["fgt-001"] != lab.pristine["fgt-001"]
    site = _site_with_previous(lab, "rm", ["fgt-001"])
    writes = _writes(lab)

    # Another journal directory: remove needs no journal of the apply.
    done = run_cli(
        "remove", site, "--yes", "--limit", "fgt-00[12]", "--output", "json", "--journal-dir", tmp_path / "r"
    )
    payload = _json(done)
    assert done.returncode == 5, done.stderr  # fgt-002 refused, fgt-001 removed
    assert statuses(payload) == {"fgt-001": "changed", "fgt-002": "refused"}
    fgt1, fgt2 = payload["devices"]
    assert [(c["action"], c["path"]) for c in fgt1["changes"]] == [
        ("update", "firewall/policy"),
        ("delete", "emailfilter/profile"),
        ("delete", "firewall/ssl-ssh-profile"),
        ("delete", "firewall/profile-protocol-options"),
        ("delete", "vpn.certificate/local"),
    ]
    assert fgt1["probe"]["passed"] is True
    assert lab.states(["fgt-001"]) == {"fgt-001": lab.pristine["fgt-001"]}  # byte-identical to the seed
    assert "does not say what the policy was bound to before fortiauto" in fgt2["reason"]
    assert "previous" in fgt2["reason"]
    assert _writes(lab)["fgt-002"] == writes["fgt-002"]
    assert lab.states(["fgt-002"]) == {"fgt-002": after_apply["fgt-002"]}
    # The removal is journaled like an apply.
    journal = (tmp_path / "r" / f"{payload['run_id']}.jsonl").read_text()
    assert '"command": "remove"' in journal
    assert '"type": "commit"' in journal

    # Removed already: nothing to do, nothing written.
    mark = _writes(lab)["fgt-001"]
    again = run_cli(
        "remove", site, "--yes", "--limit", "fgt-001", "--output", "json", "--journal-dir", tmp_path / "r"
    )
    assert again.returncode == 0, again.stderr
    assert statuses(_json(again)) == {"fgt-001": "unchanged"}
    assert _writes(lab)["fgt-001"] == mark


def test_remove_keeps_an_object_another_admin_made_their_own(lab, tmp_path):
    assert (
        run_cli("apply", lab.site, "--yes", "--limit", "fgt-003", "--journal-dir", tmp_path / "a").returncode
        == 0
    )
    with _rest(lab, "fgt-003") as rest:
        answer = rest.put(
            "/api/v2/cmdb/emailfilter/profile/mail-inbound",
            params={"vdom": "root"},
            json={"comment": "ours now"},
        )
        assert answer.status_code == 200, answer.text
    site = _site_with_previous(lab, "rm-kept", ["fgt-003"])
    shown = run_cli("remove", site, "--check", "--limit", "fgt-003")
    assert shown.returncode == 0, shown.stderr
    assert "mx1/emailfilter: emailfilter profile mail-inbound kept: not created by fortiauto" in shown.stdout
    assert "delete emailfilter/profile/mail-inbound" not in shown.stdout
    assert "delete firewall/ssl-ssh-profile/protect-mx1" in shown.stdout
    assert "objects: 0 to create, 1 to update, 3 to delete" in shown.stdout

    done = run_cli(
        "remove", site, "--yes", "--limit", "fgt-003", "--output", "json", "--journal-dir", tmp_path / "r"
    )
    assert done.returncode == 0, done.stderr
    with _rest(lab, "fgt-003") as rest:
        kept = rest.get("/api/v2/cmdb/emailfilter/profile/mail-inbound", params={"vdom": "root"})
        gone = rest.get("/api/v2/cmdb/firewall/ssl-ssh-profile/protect-mx1", params={"vdom": "root"})
    assert kept.status_code == 200
    assert kept.json()["results"][0]["comment"] == "ours now"
    assert gone.status_code == 404


def test_remove_without_a_terminal_needs_yes_and_changes_nothing(lab, tmp_path):
    assert (
        run_cli("apply", lab.site, "--yes", "--limit", "fgt-004", "--journal-dir", tmp_path / "a").returncode
        == 0
    )
    before = lab.states(["fgt-004"])
    writes = _writes(lab)
    site = _site_with_previous(lab, "rm-ask", ["fgt-004"])
    done = run_cli("remove", site, "--limit", "fgt-004", "--journal-dir", tmp_path / "r")
    assert done.returncode == 2
    assert "remove needs --yes when not run from a terminal; nothing was changed" in done.stderr
    assert "Plan: 1 device(s) to change" in done.stderr
    assert _writes(lab) == writes
    assert lab.states(["fgt-004"]) == before


def test_a_removal_whose_write_fails_is_rolled_back_to_the_applied_state(lab, tmp_path):
    assert (
        run_cli("apply", lab.site, "--yes", "--limit", "fgt-002", "--journal-dir", tmp_path / "a").returncode
        == 0
    )
    applied = lab.states(["fgt-002"])
    site = _site_with_previous(lab, "rm-fail", ["fgt-002"])
    # The third write of the removal (the SSL profile's delete) fails: the policy update and the
    # email filter profile's delete before it are undone (the profile re-created from its image).
    lab.faults({"fgt-002": "http500-on-write=3"})
    done = run_cli(
        "remove", site, "--yes", "--limit", "fgt-002", "--output", "json", "--journal-dir", tmp_path / "r"
    )
    payload = _json(done)
    assert done.returncode == 3, done.stderr
    assert statuses(payload) == {"fgt-002": "rolled_back"}
    lab.faults({"fgt-002": {}})
    assert lab.states(["fgt-002"]) == applied
