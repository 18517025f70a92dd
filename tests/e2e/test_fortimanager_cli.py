"""``fortiauto apply`` through FortiManager as a user runs it: the CLI against ``lab up --fortimanager``.

The lab runs as its own process with two FortiGates managed by the mock FortiManager (one
ADOM, a policy package ``mail-edge-<unit>`` per unit); its ``site.yml`` routes every device
through FortiManager, each to its own package. A second lab (``--fortimanager-packages shared``:
one package ``mail-edge`` installed to both) shows the shared case: refused before any write.
The tests look behind the APIs only through the lab's control APIs: each unit's canonical
state and request log (which shows only calls made to the unit itself: an install changes the
unit inside the lab), and FortiManager's state, request log and faults. Every test starts from
a reset lab (units back to their seed, FortiManager re-importing them).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from tests.e2e.clikit import (
    Fleet,
    assert_no_traceback,
    finish,
    lab_up,
    run_cli,
    spawn_cli,
    wait_until,
)

pytestmark = pytest.mark.e2e

# The changes the recommendation makes on a seeded lab unit, in apply order.
PLANNED = [
    ("certificate", "import"),
    ("protocol_options", "create"),
    ("ssl_profile", "create"),
    ("emailfilter", "create"),
    ("policy", "update"),
]


class FortiManagerControl:
    """The mock FortiManager's ``/__lab__/`` control API (its API key from lab.json)."""

    def __init__(self, info: dict[str, Any], ca: str) -> None:
        self.info = info
        self.http = httpx.Client(
            base_url=info["url"],
            verify=ssl.create_default_context(cafile=ca),
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=10,
        )

    def requests(self) -> dict[str, Any]:
        response = self.http.get("/__lab__/requests")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def state(self) -> dict[str, Any]:
        response = self.http.get("/__lab__/state")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def faults(self, spec: str) -> None:
        self.http.post("/__lab__/faults", content=spec).raise_for_status()

    def reset(self) -> None:
        self.http.post("/__lab__/reset").raise_for_status()
        self.faults("{}")

    def close(self) -> None:
        self.http.close()


class ManagedFleet(Fleet):
    """``fortiauto lab up --fortimanager``: the units' control APIs and FortiManager's."""

    def __init__(self, proc: subprocess.Popen[str], state_dir: Path) -> None:
        super().__init__(proc, state_dir)
        self.fmg = FortiManagerControl(self.info["fortimanager"], self.ca)

    def reset(self) -> None:
        super().reset()
        self.fmg.reset()  # after the units: FortiManager re-imports them as they now are

    def stop(self) -> None:
        self.fmg.close()
        super().stop()


def start_managed_fleet(state_dir: Path, devices: int, *extra: str) -> ManagedFleet:
    """``fortiauto lab up --fortimanager`` in the background, returned once it printed ``lab ready``."""
    return ManagedFleet(lab_up(state_dir, "--fortimanager", "--devices", str(devices), *extra), state_dir)


@contextlib.contextmanager
def managed_running(state_dir: Path, devices: int, *extra: str) -> Iterator[ManagedFleet]:
    """``start_managed_fleet`` for the block; stopped after (a module fixture's whole body)."""
    fleet = start_managed_fleet(state_dir, devices, *extra)
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedFleet]:
    with managed_running(tmp_path_factory.mktemp("fmg-e2e") / "lab", 2) as fleet:
        yield fleet


@pytest.fixture
def lab(managed: ManagedFleet) -> ManagedFleet:
    managed.reset()
    assert managed.states() == managed.pristine  # the reset really is the seed
    return managed


def no_fallback_site(lab: ManagedFleet, **fortimanager: Any) -> Path:
    """The lab's site without the fallback rung: a failed probe then ends rolled back (exit 3)."""
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    data["fortimanager"].update(fortimanager)
    for device in data["devices"]:
        for server in device["mail_servers"]:
            server.pop("fallback", None)
            server["probe"].update({"timeout": 1.5, "retries": 2, "retry_delay": 0.1})
    out = lab.site.with_name("site-fmg-nofallback.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def apply_json(site: Path, journal: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", journal, *extra, timeout=120)
    assert_no_traceback(done.stdout, done.stderr)
    assert done.stdout.startswith("{"), f"exit {done.returncode}, no JSON; stderr:\n{done.stderr}"
    return done.returncode, json.loads(done.stdout), done.stderr


def device(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in payload["devices"] if d["name"] == name)


def unit_writes(lab: ManagedFleet) -> dict[str, int]:
    return {name: r["writes"] for name, r in lab.requests().items()}


def fmg_changes(log: list[dict[str, Any]]) -> list[str]:
    """The object-changing JSON-RPC calls in FortiManager's log (not lock, commit or install)."""
    return [f"{e['method']} {e['url']}" for e in log if e["method"] in ("add", "set", "update", "delete")]


def policy(lab: ManagedFleet, name: str) -> dict[str, Any]:
    state = json.loads(lab.controls[name].state())
    found: dict[str, Any] = next(p for p in state["vdoms"]["root"]["firewall/policy"] if p["policyid"] == 1)
    return found


def emailfilter_log(lab: ManagedFleet, name: str) -> str:
    """The unit's memory email filter log, read with its own token (independent of fortiauto)."""
    info = next(d for d in lab.info["devices"] if d["name"] == name)
    with httpx.Client(
        base_url=info["url"],
        verify=ssl.create_default_context(cafile=lab.ca),
        headers={"Authorization": f"Bearer {info['token']}"},
        timeout=10,
    ) as http:
        response = http.get("/api/v2/log/memory/emailfilter/raw", params={"vdom": "root"})
    response.raise_for_status()
    return response.text


def test_apply_goes_through_fortimanager_and_installs_once(lab: ManagedFleet, tmp_path: Path) -> None:
    code, payload, err = apply_json(lab.site, tmp_path / "journal", "--limit", "fgt-001")
    one = device(payload, "fgt-001")
    assert (code, one["status"]) == (0, "changed"), (one["reason"], err)
    assert [(c["task"], c["action"]) for c in one["changes"]] == PLANNED
    # The unit's own API was only read; FortiManager received the change and one install.
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}
    assert one["requests"]["writes"] == 0
    fmg = lab.fmg.requests()
    assert fmg["installs"] == 1
    assert len(fmg_changes(fmg["log"])) == 6  # certificate + its dynamic mapping, 3 objects, the policy
    report = one["requests"]["fortimanager"]
    assert (report["device"], report["package"], report["adom"], report["installs"]) == (
        "fgt-001",
        "mail-edge-fgt-001",
        "root",
        1,
    )
    assert len(report["install_tasks"]) == 1
    preview = report["install_preview"]
    assert 'set ssl-ssh-profile "protect-mx1"' in preview
    assert "ENC ********" in preview  # the certificate's key is masked in the preview
    # The unit ends in the recommended state, and its own email filter log shows the probe.
    bound = policy(lab, "fgt-001")
    assert (bound["ssl-ssh-profile"], bound["inspection-mode"], bound["emailfilter-profile"]) == (
        "protect-mx1",
        "proxy",
        "mail-inbound",
    )
    assert one["effect"] == "logged"
    assert one["evidence"]["token"] in emailfilter_log(lab, "fgt-001")
    assert lab.states(["fgt-002"]) == {"fgt-002": lab.pristine["fgt-002"]}
    # The journal names the route (no credential) and keeps FortiManager's pre-images.
    journal_text = (tmp_path / "journal" / f"{payload['run_id']}.jsonl").read_text()
    lines = [json.loads(line) for line in journal_text.splitlines()]
    header = next(line for line in lines if line["type"] == "run")
    reach = {r["name"]: r for r in header["reach"]}
    assert reach["fgt-001"]["fortimanager"] == {
        "url": lab.info["fortimanager"]["url"],
        "adom": "root",
        "device": "fgt-001",
        "package": "mail-edge-fgt-001",
        "vdom": "root",
    }
    pre = [line for line in lines if line["type"] == "pre"]
    assert [line["change"]["path"] for line in pre] == [
        "vpn.certificate/local",
        "firewall/profile-protocol-options",
        "firewall/ssl-ssh-profile",
        "emailfilter/profile",
        "firewall/policy",
    ]
    # The policy's pre-image is FortiManager's package policy, in the shape the unit's API gives.
    assert pre[-1]["change"]["before"]["ssl-ssh-profile"] == "certificate-inspection"
    for secret in [*lab.secrets(), lab.info["fortimanager"]["token"], lab.info["fortimanager"]["password"]]:
        assert secret not in journal_text
        assert secret not in json.dumps(payload)


def assert_recommended_and_proven(lab: ManagedFleet, result: dict[str, Any]) -> None:
    """The unit itself holds the fix, and its own email filter log shows the probe's token."""
    bound = policy(lab, result["name"])
    assert (bound["ssl-ssh-profile"], bound["inspection-mode"], bound["emailfilter-profile"]) == (
        "protect-mx1",
        "proxy",
        "mail-inbound",
    )
    assert result["effect"] == "logged"
    assert result["evidence"]["token"] in emailfilter_log(lab, result["name"])


def test_every_unit_with_its_own_package_is_changed_with_one_install_each(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    assert lab.info["fortimanager"]["packages"] == {
        "fgt-001": "mail-edge-fgt-001",
        "fgt-002": "mail-edge-fgt-002",
    }
    code, payload, err = apply_json(lab.site, tmp_path / "journal")
    assert code == 0, err
    for name in ("fgt-001", "fgt-002"):
        result = device(payload, name)
        assert result["status"] == "changed", (name, result["reason"])
        assert result["requests"]["fortimanager"]["package"] == f"mail-edge-{name}"
        assert_recommended_and_proven(lab, result)
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}
    fmg = lab.fmg.requests()
    assert fmg["installs"] == 2
    state = lab.fmg.state()
    # One install per unit, each of its own package (FortiManager's revision history says which).
    assert sorted(r["name"] for r in state["revisions"]) == [
        "mail-edge-fgt-001-fgt-001",
        "mail-edge-fgt-002-fgt-002",
    ]
    for name in ("fgt-001", "fgt-002"):
        inbound = next(p for p in state["packages"][f"mail-edge-{name}"]["policies"] if p["policyid"] == 1)
        assert inbound["ssl-ssh-profile"] == "protect-mx1"
    # A re-run finds both done: FortiManager is only read, nothing installed, the units untouched.
    applied = lab.states()
    before = lab.fmg.requests()
    code, again, err = apply_json(lab.site, tmp_path / "journal")
    assert code == 0, err
    assert [(d["name"], d["status"], d["changes"]) for d in again["devices"]] == [
        ("fgt-001", "unchanged", []),
        ("fgt-002", "unchanged", []),
    ]
    after = lab.fmg.requests()
    assert (after["writes"], after["installs"]) == (before["writes"], before["installs"])
    assert all(entry["method"] == "get" for entry in after["log"][len(before["log"]) :])
    assert lab.states() == applied
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}


@pytest.fixture(scope="module")
def shared_managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedFleet]:
    """A second lab: one policy package ``mail-edge`` installed to both units."""
    state_dir = tmp_path_factory.mktemp("fmg-e2e-shared") / "lab"
    with managed_running(state_dir, 2, "--fortimanager-packages", "shared") as fleet:
        yield fleet


@pytest.fixture
def shared_lab(shared_managed: ManagedFleet) -> ManagedFleet:
    shared_managed.reset()
    assert shared_managed.states() == shared_managed.pristine
    return shared_managed


def test_units_of_a_shared_package_are_refused_before_any_write(
    shared_lab: ManagedFleet, tmp_path: Path
) -> None:
    lab = shared_lab
    assert lab.info["fortimanager"]["packages"] == {"fgt-001": "mail-edge", "fgt-002": "mail-edge"}
    store = lab.fmg.state()
    code, payload, err = apply_json(lab.site, tmp_path / "journal")
    assert code == 5, err
    for name, other in (("fgt-001", "fgt-002"), ("fgt-002", "fgt-001")):
        result = device(payload, name)
        assert result["status"] == "refused"
        assert f"'mail-edge' also installs to {other}/root" in result["reason"]
        assert "without a probe or an undo" in result["reason"]
        assert f"give {name} its own policy package" in result["reason"]
        assert result["changes"] == []
        assert result["probe"]["passed"] is None  # refused before the baseline probe
    # Judged by the lab: FortiManager only read (no lock, no write, no install), its store as it was.
    fmg = lab.fmg.requests()
    assert (fmg["writes"], fmg["installs"]) == (0, 0)
    assert fmg["log"]
    assert all(entry["method"] == "get" for entry in fmg["log"])
    assert json.dumps(lab.fmg.state(), sort_keys=True) == json.dumps(store, sort_keys=True)
    assert lab.states() == lab.pristine
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}

    done = run_cli("plan", lab.site, timeout=120)
    assert_no_traceback(done.stdout, done.stderr)
    text = " ".join(done.stdout.split())
    assert (
        "apply would be refused: FortiManager policy package 'mail-edge' also installs to fgt-002/root"
        in text
    )
    assert (
        "apply would be refused: FortiManager policy package 'mail-edge' also installs to fgt-001/root"
        in text
    )
    assert all(entry["method"] == "get" for entry in lab.fmg.requests()["log"])
    assert json.dumps(lab.fmg.state(), sort_keys=True) == json.dumps(store, sort_keys=True)


def test_a_rerun_is_a_no_op_without_writes_or_install(lab: ManagedFleet, tmp_path: Path) -> None:
    code, _, _ = apply_json(lab.site, tmp_path / "journal", "--limit", "fgt-001")
    assert code == 0
    applied = lab.states(["fgt-001"])
    before = lab.fmg.requests()
    code, payload, _ = apply_json(lab.site, tmp_path / "journal", "--limit", "fgt-001")
    one = device(payload, "fgt-001")
    assert (code, one["status"], one["changes"]) == (0, "unchanged", [])
    after = lab.fmg.requests()
    assert (after["writes"], after["installs"]) == (before["writes"], before["installs"])
    new = after["log"][len(before["log"]) :]
    assert new
    assert all(entry["method"] == "get" for entry in new)
    report = one["requests"]["fortimanager"]
    assert (report["writes"], report["installs"], report["install_tasks"]) == (0, 0, [])
    assert lab.states(["fgt-001"]) == applied
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}


def test_a_failed_probe_is_undone_through_fortimanager_and_reinstalled(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    lab.faults({"fgt-001": "banner-hold-on-utm"})
    pristine = lab.states(["fgt-001"])
    objects = lab.fmg.state()["store"]
    code, payload, err = apply_json(no_fallback_site(lab), tmp_path / "journal", "--limit", "fgt-001")
    one = device(payload, "fgt-001")
    assert (code, one["status"]) == (3, "rolled_back"), (one["reason"], err)
    assert "F4" in one["reason"]
    # Undone in FortiManager and installed again: the unit is byte-identical, its API never written.
    assert lab.states(["fgt-001"]) == pristine
    assert lab.fmg.state()["store"] == objects
    assert lab.fmg.requests()["installs"] == 2
    assert one["requests"]["fortimanager"]["installs"] == 2
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}
    stages = [p["stage"] for p in one["probes"]]
    assert stages[0] == "baseline"
    assert "after" in stages
    assert stages[-1] == "confirm"


def test_an_install_that_fails_half_way_is_undone_and_reinstalled(lab: ManagedFleet, tmp_path: Path) -> None:
    lab.fmg.faults("install-fail-after=2")
    pristine = lab.states(["fgt-001"])
    code, payload, err = apply_json(no_fallback_site(lab), tmp_path / "journal", "--limit", "fgt-001")
    one = device(payload, "fgt-001")
    # Two changes landed on the unit, then the install failed: undone in FortiManager, re-installed.
    assert (code, one["status"]) == (3, "rolled_back"), (one["reason"], err)
    assert "install failed after 2 change(s)" in one["reason"]
    assert one["left_over"] == []
    assert lab.states(["fgt-001"]) == pristine
    assert lab.fmg.requests()["installs"] == 2
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}
    assert [p["stage"] for p in one["probes"]] == ["baseline"]  # never probed a half-installed unit


def test_a_workspace_lock_held_by_another_admin_refuses_before_any_write(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    lab.fmg.faults("lock-held-by=jdoe")
    before = lab.fmg.requests()
    code, payload, _ = apply_json(lab.site, tmp_path / "journal", "--limit", "fgt-001")
    one = device(payload, "fgt-001")
    assert (code, one["status"]) == (5, "refused")
    assert "locked by 'jdoe'" in one["reason"]
    assert "nothing was changed" in one["reason"]
    after = lab.fmg.requests()
    new = after["log"][len(before["log"]) :]
    assert all(entry["method"] == "get" for entry in new)  # no lock, no write, no install
    assert after["installs"] == 0
    assert lab.states() == lab.pristine
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}
    assert one["probe"]["passed"] is None  # refused before the baseline probe


def test_plan_names_the_route_and_reads_only(lab: ManagedFleet) -> None:
    lab.fmg.faults("lock-held-by=jdoe")
    done = run_cli("plan", lab.site, "--limit", "fgt-001", timeout=120)
    assert_no_traceback(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "changed through FortiManager" in text
    assert "package mail-edge-fgt-001, device fgt-001/root" in text
    assert "apply would be refused: FortiManager ADOM 'root' is locked by 'jdoe'" in text
    assert all(entry["method"] == "get" for entry in lab.fmg.requests()["log"])
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}


def test_rollback_of_a_run_undoes_through_fortimanager(lab: ManagedFleet, tmp_path: Path) -> None:
    code, payload, _ = apply_json(lab.site, tmp_path / "journal", "--limit", "fgt-001")
    assert code == 0
    done = run_cli(
        "rollback",
        "--yes",
        "--run",
        payload["run_id"],
        "--journal-dir",
        tmp_path / "journal",
        "-o",
        "json",
        timeout=120,
    )
    assert_no_traceback(done.stdout, done.stderr)
    result = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert device(result, "fgt-001")["status"] == "rolled_back"
    assert lab.states() == lab.pristine
    assert lab.fmg.requests()["installs"] == 2
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}


def test_an_undo_that_cannot_be_installed_is_left_over_and_says_so(lab: ManagedFleet, tmp_path: Path) -> None:
    """The probe fails; while it runs, FortiManager's install tasks get stuck: the undo is not on the unit."""
    lab.faults({"fgt-001": "banner-hold-on-utm"})
    site = no_fallback_site(lab, install_timeout=2)
    journal = tmp_path / "journal"
    proc = spawn_cli(
        "apply", site, "--yes", "--output", "json", "--journal-dir", journal, "--limit", "fgt-001"
    )

    def installed_once() -> bool:
        return lab.fmg.requests()["installs"] == 1

    wait_until(installed_once, 60, "the first install")
    lab.fmg.faults("task-stuck")
    code, out, err = finish(proc, timeout=120)
    assert_no_traceback(out, err)
    one = device(json.loads(out), "fgt-001")
    assert (code, one["status"]) == (4, "failed"), (one["reason"], err)
    assert "rollback incomplete, needs a human" in one["reason"]
    assert any("the undo was not installed on the unit" in line for line in one["left_over"])
    assert any("did not end within 2 s" in line for line in one["left_over"])
    # The unit still holds the change (the stuck install never touched it), and the result says so.
    assert policy(lab, "fgt-001")["ssl-ssh-profile"] == "protect-mx1"
    assert one["requests"]["fortimanager"]["installs"] == 2
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}


def test_a_left_over_unit_gets_the_undo_command_in_text_output(lab: ManagedFleet, tmp_path: Path) -> None:
    """Text output names the back-out command for a unit changed through FortiManager (no unit writes)."""
    lab.fmg.faults("install-fail-after=2")
    journal = tmp_path / "journal"
    done = run_cli(
        "apply", no_fallback_site(lab), "--yes", "--journal-dir", journal, "--limit", "fgt-001", timeout=120
    )
    assert_no_traceback(done.stdout, done.stderr)
    assert done.returncode == 3, done.stderr
    text = " ".join(done.stdout.split())
    assert "undo with: fortiauto rollback --run" in text
    assert f"--journal-dir {journal.resolve()}" in text


def test_the_fallback_rung_is_tried_through_fortimanager_after_the_undo(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    lab.faults({"fgt-001": "banner-hold-on-utm"})
    code, payload, err = apply_json(lab.site, tmp_path / "journal", "--limit", "fgt-001")
    one = device(payload, "fgt-001")
    assert (code, one["status"], one["fallback_used"]) == (6, "fallback", "certificate-inspection"), err
    # The full fix installed, undone and installed back, then the rung installed: three installs.
    assert one["requests"]["fortimanager"]["installs"] == 3
    assert lab.fmg.requests()["installs"] == 3
    bound = policy(lab, "fgt-001")
    assert (bound["ssl-ssh-profile"], bound["inspection-mode"], bound["emailfilter-profile"]) == (
        "certificate-inspection",
        "proxy",
        "mail-inbound",
    )
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}


# --- an ADOM object another unit's package uses is never updated ------------------------------


def fmg_rpc(lab: ManagedFleet, method: str, url: str, data: Any = None) -> Any:
    """One JSON-RPC call to the mock FortiManager with the lab's API key, as another admin's tool makes it."""
    param: dict[str, Any] = {"url": url}
    if data is not None:
        param["data"] = data
    response = lab.fmg.http.post("/jsonrpc", json={"id": 1, "method": method, "params": [param]})
    response.raise_for_status()
    result = response.json()["result"][0]
    assert result["status"]["code"] == 0, result
    return result.get("data")


def seed_shared_profile(lab: ManagedFleet) -> None:
    """In FortiManager: email filter profile ``mail-shared``, used by a new policy of fgt-002's package."""
    pkg = "/pm/config/adom/root/pkg/mail-edge-fgt-002/firewall/policy"
    fmg_rpc(lab, "exec", "/dvmdb/adom/root/workspace/lock")
    fmg_rpc(lab, "add", "/pm/config/adom/root/obj/emailfilter/profile", {"name": "mail-shared"})
    branch = {k: v for k, v in fmg_rpc(lab, "get", f"{pkg}/1").items() if k != "uuid"}
    branch |= {"policyid": 9, "name": "branch-smtp", "emailfilter-profile": ["mail-shared"]}
    fmg_rpc(lab, "add", pkg, branch)
    fmg_rpc(lab, "exec", "/dvmdb/adom/root/workspace/commit")
    fmg_rpc(lab, "exec", "/dvmdb/adom/root/workspace/unlock")


def site_naming(lab: ManagedFleet, profile: str) -> Path:
    """The lab's site with fgt-001's mail server naming email filter profile ``profile``."""
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    unit = next(d for d in data["devices"] if d["name"] == "fgt-001")
    unit["mail_servers"][0]["emailfilter_profile"] = profile
    out = lab.site.with_name(f"site-fmg-{profile}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def test_a_profile_another_units_package_uses_is_refused_and_one_of_its_own_applies(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    seed_shared_profile(lab)
    store = json.dumps(lab.fmg.state(), sort_keys=True)
    seeded = len(lab.fmg.requests()["log"])
    code, payload, err = apply_json(
        site_naming(lab, "mail-shared"), tmp_path / "journal", "--limit", "fgt-001"
    )
    one = device(payload, "fgt-001")
    assert (code, one["status"]) == (5, "refused"), (one["reason"], err)
    assert "emailfilter/profile 'mail-shared' is used by policy package mail-edge-fgt-002" in one["reason"]
    assert "without a probe or an undo; nothing was changed" in one["reason"]
    assert "emailfilter_profile: mail-shared-fgt-001" in one["reason"]
    assert one["changes"] == []
    # Judged by the lab: FortiManager only read (no lock, no write, no install), its store as it was.
    fmg = lab.fmg.requests()
    new = fmg["log"][seeded:]
    assert new
    assert all(entry["method"] == "get" for entry in new)
    assert fmg["installs"] == 0
    assert ("get", "/pm/config/adom/root/pkg/mail-edge-fgt-002/firewall/policy") in [
        (e["method"], e["url"]) for e in new
    ]
    assert json.dumps(lab.fmg.state(), sort_keys=True) == store
    assert lab.states() == lab.pristine
    assert unit_writes(lab) == {"fgt-001": 0, "fgt-002": 0}

    done = run_cli("plan", site_naming(lab, "mail-shared"), "--limit", "fgt-001", timeout=120)
    assert_no_traceback(done.stdout, done.stderr)
    text = " ".join(done.stdout.split())
    assert "apply would be refused: fortiauto would update FortiManager ADOM objects" in text
    assert json.dumps(lab.fmg.state(), sort_keys=True) == store

    # A profile of its own for the mail server: created, applied and proven; the shared one untouched.
    shared = next(
        p
        for p in lab.fmg.state()["store"]["vdoms"]["root"]["emailfilter/profile"]
        if p["name"] == "mail-shared"
    )
    code, payload, err = apply_json(
        site_naming(lab, "mail-inbound-fgt-001"), tmp_path / "journal", "--limit", "fgt-001"
    )
    one = device(payload, "fgt-001")
    assert (code, one["status"]) == (0, "changed"), (one["reason"], err)
    assert ("emailfilter", "create") in [(c["task"], c["action"]) for c in one["changes"]]
    assert policy(lab, "fgt-001")["emailfilter-profile"] == "mail-inbound-fgt-001"
    assert lab.fmg.requests()["installs"] == 1
    after = lab.fmg.state()["store"]["vdoms"]["root"]["emailfilter/profile"]
    assert next(p for p in after if p["name"] == "mail-shared") == shared
    assert lab.states(["fgt-002"]) == {"fgt-002": lab.pristine["fgt-002"]}


@pytest.mark.parametrize("auth", ["token", "password"])
def test_debug_output_through_fortimanager_holds_no_secret(
    lab: ManagedFleet, tmp_path: Path, auth: str
) -> None:
    """``--debug`` apply and rollback through FortiManager: its traffic is logged, no credential or key."""
    site = lab.site
    if auth == "password":  # a session login (exec /sys/login/user) instead of the API key
        secret_file = lab.state_dir / "tokens" / "fortimanager.password"
        secret_file.write_text(lab.info["fortimanager"]["password"] + "\n")
        secret_file.chmod(0o600)
        login = (
            f"  username: {lab.info['fortimanager']['username']}\n"
            "  password: ${file:tokens/fortimanager.password}\n"
        )
        site = lab.state_dir / "site-fmg-password.yml"
        site.write_text(lab.site.read_text().replace("  token: ${file:tokens/fortimanager.token}\n", login))
        assert "fortimanager.token" not in site.read_text()  # the password is the only credential
    journal = tmp_path / "journal"
    applied = run_cli(
        "--debug", "apply", site, "--yes", "--journal-dir", journal, "--limit", "fgt-001", timeout=120
    )
    assert applied.returncode == 0, applied.stderr[-2000:]
    undone = run_cli("--debug", "rollback", "--last", "--yes", "--journal-dir", journal, timeout=120)
    assert undone.returncode == 0, undone.stderr[-2000:]
    assert "fortimanager for fgt-001: " in applied.stderr  # --debug really logged FortiManager's calls
    assert lab.states() == lab.pristine
    texts = {
        "apply stdout": applied.stdout,
        "apply stderr": applied.stderr,
        "rollback stdout": undone.stdout,
        "rollback stderr": undone.stderr,
        **{str(path): path.read_text() for path in journal.rglob("*") if path.is_file()},
    }
    secrets = [*lab.secrets(), lab.info["fortimanager"]["token"], lab.info["fortimanager"]["password"]]
    for where, text in texts.items():
        leaked = [secret[:4] + "..." for secret in secrets if secret in text]
        assert not leaked, f"{where}: {leaked}"
