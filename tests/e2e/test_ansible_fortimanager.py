"""The Ansible collection through FortiManager: ``ansible-playbook`` against ``lab up --fortimanager``.

The lab runs as its own process with two FortiGates managed by the mock FortiManager (a policy
package ``mail-edge-<unit>`` each; a second lab, ``--fortimanager-packages shared``, has one
package ``mail-edge`` installed to both); the inventory is the collection's inventory plugin
over the lab's ``site.yml`` (which routes the units through FortiManager), so the module gets the
site file and the device name, as a shop using one site file for the CLI and Ansible runs it.
Most tests limit the play to ``fgt-001``; two run both hosts in parallel forks. Ground truth is
the lab's control APIs only: each unit's request log (its REST writes) and canonical state,
FortiManager's request log (its JSON-RPC calls, installs) and object store. Every test starts
from a reset lab. Cost: about 60 s on 2 cores (each playbook run starts Ansible: 2-4 s).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ansible_kit import PlaybookRun, run_playbook
from tests.e2e.clikit import assert_no_traceback, run_cli
from tests.e2e.test_fortimanager_cli import (
    PLANNED,
    ManagedFleet,
    emailfilter_log,
    fmg_changes,
    managed_running,
    no_fallback_site,
    policy,
    unit_writes,
)

pytestmark = pytest.mark.e2e

HOST, OTHER = "fgt-001", "fgt-002"
NO_UNIT_WRITES = {HOST: 0, OTHER: 0}


@pytest.fixture(scope="module")
def managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedFleet]:
    with managed_running(tmp_path_factory.mktemp("ansible-fmg") / "lab", 2) as fleet:
        yield fleet


@pytest.fixture
def lab(managed: ManagedFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ManagedFleet:
    """The lab back at its seed (units and FortiManager), device locks private to this test."""
    managed.reset()
    assert managed.states() == managed.pristine
    monkeypatch.setenv("FORTIAUTO_LOCK_DIR", str(tmp_path / "locks"))  # for the CLI runs too
    return managed


def site_inventory(site: Path, journal: Path) -> Path:
    """The collection's inventory plugin over ``site``: hosts that hand the module the site file."""
    config = site.with_name(f"{site.stem}.fortiauto.yml")
    config.write_text(f"plugin: fortiauto.fortigate.site\nsite: {site.name}\njournal_dir: {journal}\n")
    return config


def playbook(
    playbook: str, inventory: Path, tmp_path: Path, *args: str, limit: str | None = HOST, **extra: Any
) -> PlaybookRun:
    """``ansible-playbook`` on ``limit`` (None: every host, in parallel forks), ``extra`` as -e vars."""
    env = {"FORTIAUTO_LOCK_DIR": str(tmp_path / "locks")}
    args += ("--limit", limit) if limit else ()
    run = run_playbook(playbook, inventory, *args, home=tmp_path / "home", env=env, extra_vars=extra or None)
    assert "Traceback" not in run.output, run.output
    return run


def no_secrets(lab: ManagedFleet, *texts: str) -> None:
    secrets = [*lab.secrets(), lab.info["fortimanager"]["token"], lab.info["fortimanager"]["password"]]
    for text in texts:
        leaked = [secret[:4] + "..." for secret in secrets if secret in text]
        assert not leaked, f"secrets in the output: {leaked}"


def recommended(lab: ManagedFleet, name: str = HOST) -> tuple[str, str, str]:
    bound = policy(lab, name)
    return bound["ssl-ssh-profile"], bound["inspection-mode"], bound["emailfilter-profile"]


def only_reads(log: list[dict[str, Any]]) -> bool:
    return all(entry["method"] == "get" for entry in log)


@pytest.mark.timeout(180)
def test_apply_goes_through_fortimanager_and_a_rerun_changes_nothing(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    inventory = site_inventory(lab.site, journal)

    run = playbook("site.yml", inventory, tmp_path)

    assert run.returncode == 0, run.output
    assert run.recap[HOST]["changed"] == 1
    result = run.result(HOST)
    assert run.recap[HOST]["failed"] == 0
    assert (result["status"], result["changed"]) == ("changed", True), result["msg"]
    assert [(c["task"], c["action"]) for c in result["changes"]] == PLANNED
    # Judged by the lab: the unit's REST API was only read; FortiManager took the change, one install.
    assert unit_writes(lab) == NO_UNIT_WRITES
    fmg = lab.fmg.requests()
    assert fmg["installs"] == 1
    assert len(fmg_changes(fmg["log"])) == 6  # certificate + its dynamic mapping, 3 objects, the policy
    assert recommended(lab) == ("protect-mx1", "proxy", "mail-inbound")
    assert result["evidence"]["token"] in emailfilter_log(lab, HOST)
    report = result["requests"]["fortimanager"]
    assert (report["device"], report["package"], report["installs"], len(report["install_tasks"])) == (
        HOST,
        "mail-edge-fgt-001",
        1,
        1,
    )
    assert any("changed through FortiManager" in w for w in result["plan_warnings"])
    # The journal's run header names the route, so an undo from it goes back through FortiManager.
    text = Path(result["journal"]).read_text()
    header = next(json.loads(line) for line in text.splitlines() if json.loads(line)["type"] == "run")
    assert (header["command"], header["site"]) == ("ansible", str(lab.site.resolve()))
    assert header["reach"][0]["fortimanager"] == {
        "url": lab.info["fortimanager"]["url"],
        "adom": "root",
        "device": HOST,
        "package": "mail-edge-fgt-001",
        "vdom": "root",
    }
    no_secrets(lab, run.output, text)

    applied = lab.states()
    before = lab.fmg.requests()
    rerun = playbook("site.yml", inventory, tmp_path)

    assert rerun.returncode == 0, rerun.output
    assert (rerun.recap[HOST]["changed"], rerun.recap[HOST]["ok"]) == (0, 1)
    again = rerun.result(HOST)
    assert (again["status"], again["changed"], again["changes"], again["journal"]) == (
        "unchanged",
        False,
        [],
        None,
    )
    after = lab.fmg.requests()
    new = after["log"][len(before["log"]) :]
    assert new  # FortiManager was asked (the plan reads its objects) ...
    assert only_reads(new)  # ... and only read: no lock, write, commit or install
    assert after["installs"] == before["installs"]
    assert lab.states() == applied
    assert unit_writes(lab) == NO_UNIT_WRITES


@pytest.mark.timeout(120)
def test_check_mode_reports_the_diff_without_any_fortimanager_write(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    lab.fmg.faults("lock-held-by=jdoe")  # a lock check mode must not wait for, take or fail on
    objects = lab.fmg.state()["store"]
    journal = tmp_path / "journal"

    run = playbook("site.yml", site_inventory(lab.site, journal), tmp_path, "--check", "--diff")

    assert run.returncode == 0, run.output
    result = run.result(HOST)
    assert (result["status"], result["changed"]) == ("changed", True), result["msg"]
    assert [(c["task"], c["action"]) for c in result["changes"]] == PLANNED
    assert (result["probes"], result["journal"]) == ([], None)
    assert "+++ after: firewall/policy/1 (vdom root, update)" in run.stdout
    assert '-    "ssl-ssh-profile": "certificate-inspection"' in run.stdout
    assert '+    "ssl-ssh-profile": "protect-mx1"' in run.stdout
    assert "check mode: nothing written" in run.stdout
    # The plan says what apply would meet (the refusal), as `fortiauto plan` does.
    assert "apply would be refused: FortiManager ADOM 'root' is locked by 'jdoe'" in json.dumps(result)
    fmg = lab.fmg.requests()
    assert fmg["log"]
    assert only_reads(fmg["log"])
    assert fmg["installs"] == 0
    assert lab.fmg.state()["store"] == objects
    assert lab.states() == lab.pristine
    assert unit_writes(lab) == NO_UNIT_WRITES
    assert not journal.exists() or not list(journal.glob("*.jsonl"))


@pytest.mark.timeout(180)
def test_a_failed_probe_is_undone_through_fortimanager_and_the_task_fails(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    lab.faults({HOST: "banner-hold-on-utm"})
    pristine = lab.states()
    objects = lab.fmg.state()["store"]

    run = playbook("site.yml", site_inventory(no_fallback_site(lab), tmp_path / "journal"), tmp_path)

    assert run.returncode == 2, run.output  # ansible-playbook: a host failed
    assert run.recap[HOST]["failed"] == 1
    result = run.result(HOST)
    assert (result["status"], result["changed"], result["rolled_back"]) == ("rolled_back", False, True)
    assert result["exit_code"] == 3
    assert "probe failed after change (full: F4 banner-timeout" in result["msg"]
    assert "mail flows again" in result["msg"]
    # Undone in FortiManager and installed again: the unit byte-identical, its API never written.
    assert lab.states() == pristine
    assert lab.fmg.state()["store"] == objects
    assert lab.fmg.requests()["installs"] == 2
    assert result["requests"]["fortimanager"]["installs"] == 2
    assert unit_writes(lab) == NO_UNIT_WRITES
    assert [p["stage"] for p in result["probes"]][-1] == "confirm"
    no_secrets(lab, run.output)


@pytest.mark.timeout(180)
def test_the_rollback_playbook_undoes_through_fortimanager(lab: ManagedFleet, tmp_path: Path) -> None:
    inventory = site_inventory(lab.site, tmp_path / "journal")
    apply = playbook("site.yml", inventory, tmp_path)
    assert apply.returncode == 0, apply.output
    run_id = apply.result(HOST)["run_id"]
    applied, installs = lab.states(), lab.fmg.requests()["installs"]

    listed = playbook("rollback.yml", inventory, tmp_path, "--check", fortiauto_run_id=run_id)

    assert listed.returncode == 0, listed.output
    assert listed.result(HOST)["reason"] == "5 write(s) to undo"
    assert lab.states() == applied
    assert lab.fmg.requests()["installs"] == installs

    rollback = playbook("rollback.yml", inventory, tmp_path, fortiauto_run_id=run_id)

    assert rollback.returncode == 0, rollback.output
    result = rollback.result(HOST)
    assert (result["status"], result["changed"]) == ("rolled_back", True), result["msg"]
    assert lab.states() == lab.pristine
    assert lab.fmg.requests()["installs"] == installs + 1  # the undo, installed
    assert result["requests"]["fortimanager"]["installs"] == 1
    assert unit_writes(lab) == NO_UNIT_WRITES

    again = playbook("rollback.yml", inventory, tmp_path, fortiauto_run_id=run_id)

    assert again.returncode == 0, again.output
    assert (again.result(HOST)["status"], again.result(HOST)["changed"]) == ("unchanged", False)
    assert lab.fmg.requests()["installs"] == installs + 1
    no_secrets(lab, apply.output, rollback.output)


@pytest.mark.timeout(180)
def test_cli_rollback_last_of_the_playbooks_journal_goes_through_fortimanager(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    """From the journal alone; while the site file that routes the unit is gone, it refuses instead."""
    journal = tmp_path / "journal"
    site = lab.site.with_name("site-rollback.yml")  # a copy beside it (its token paths are relative)
    shutil.copy2(lab.site, site)
    apply = playbook("site.yml", site_inventory(site, journal), tmp_path)
    assert apply.returncode == 0, apply.output
    applied, before = lab.states(), lab.fmg.requests()
    site.rename(site.with_suffix(".gone"))

    gone = run_cli("rollback", "--yes", "--last", "--journal-dir", journal, "-o", "json", timeout=120)

    assert_no_traceback(gone.stdout, gone.stderr)
    assert gone.returncode == 5, gone.stdout + gone.stderr
    (refused,) = json.loads(gone.stdout)["devices"]
    assert refused["status"] == "refused"
    assert f"the run changed {HOST} through FortiManager" in refused["reason"]
    assert "these settings reach it directly" in refused["reason"]
    assert lab.states() == applied
    after = lab.fmg.requests()
    assert (after["writes"], after["installs"]) == (before["writes"], before["installs"])
    assert unit_writes(lab) == NO_UNIT_WRITES

    site.with_suffix(".gone").rename(site)
    done = run_cli("rollback", "--yes", "--last", "--journal-dir", journal, "-o", "json", timeout=120)

    assert_no_traceback(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["run_id"] == apply.result(HOST)["run_id"]
    (device,) = payload["devices"]
    assert (device["name"], device["status"]) == (HOST, "rolled_back")
    assert device["requests"]["fortimanager"]["installs"] == 1
    assert lab.states() == lab.pristine
    assert lab.fmg.requests()["installs"] == 2
    assert unit_writes(lab) == NO_UNIT_WRITES


@pytest.mark.timeout(180)
def test_an_undo_with_direct_settings_of_a_run_through_fortimanager_is_refused(
    lab: ManagedFleet, tmp_path: Path
) -> None:
    """The lab's argument-mode hosts.yml reaches the unit directly: its undo would write the unit."""
    journal = tmp_path / "journal"
    apply = playbook("site.yml", site_inventory(lab.site, journal), tmp_path)
    assert apply.returncode == 0, apply.output
    run_id = apply.result(HOST)["run_id"]
    applied, before = lab.states(), lab.fmg.requests()

    refused = playbook(
        "rollback.yml",
        lab.state_dir / "hosts.yml",
        tmp_path,
        fortiauto_run_id=run_id,
        fortiauto_journal_dir=str(journal),
    )

    assert refused.returncode == 2, refused.output
    result = refused.result(HOST)
    assert refused.recap[HOST]["failed"] == 1
    assert result["changed"] is False
    assert f"run {run_id} cannot be undone with these settings" in result["msg"]
    assert f"the run changed {HOST} through FortiManager {lab.info['fortimanager']['url']}" in result["msg"]
    assert "these settings reach it directly" in result["msg"]
    assert "nothing was written" in result["msg"]
    assert lab.states() == applied
    after = lab.fmg.requests()
    assert (after["writes"], after["installs"]) == (before["writes"], before["installs"])
    assert unit_writes(lab) == NO_UNIT_WRITES


def lock_sessions(log: list[dict[str, Any]]) -> list[str]:
    """FortiManager's workspace calls in order: ``lock`` ... ``unlock`` per device's turn."""
    return [
        e["url"].rsplit("/", 1)[-1]
        for e in log
        if e["url"].endswith(("/workspace/lock", "/workspace/unlock"))
    ]


@pytest.mark.timeout(180)
def test_parallel_forks_of_one_fortimanager_take_turns(lab: ManagedFleet, tmp_path: Path) -> None:
    """Both hosts at once (one fork each), each unit with its own package: both changed, in turns.

    They share the ADOM's objects, so the second reads FortiManager only after the first is done;
    without turns across the forks both would write the same ADOM objects at once and collide.
    """
    run = playbook("site.yml", site_inventory(lab.site, tmp_path / "journal"), tmp_path, limit=None)

    assert run.returncode == 0, run.output
    for name in (HOST, OTHER):
        result = run.result(name)
        assert (result["status"], result["changed"]) == ("changed", True), result["msg"]
        assert result["requests"]["fortimanager"]["package"] == f"mail-edge-{name}"
        assert result["requests"]["fortimanager"]["installs"] == 1
        assert recommended(lab, name) == ("protect-mx1", "proxy", "mail-inbound")
        assert result["evidence"]["token"] in emailfilter_log(lab, name)
        assert run.recap[name]["failed"] == 0
    fmg = lab.fmg.requests()
    assert fmg["installs"] == 2
    # One turn after the other: the ADOM lock is taken and given back once per unit, never overlapping.
    assert lock_sessions(fmg["log"]) == ["lock", "unlock", "lock", "unlock"]
    assert sorted(r["name"] for r in lab.fmg.state()["revisions"]) == [
        "mail-edge-fgt-001-fgt-001",
        "mail-edge-fgt-002-fgt-002",
    ]
    assert unit_writes(lab) == NO_UNIT_WRITES


@pytest.fixture(scope="module")
def shared_managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedFleet]:
    state_dir = tmp_path_factory.mktemp("ansible-fmg-shared") / "lab"
    with managed_running(state_dir, 2, "--fortimanager-packages", "shared") as fleet:
        yield fleet


@pytest.mark.timeout(180)
def test_parallel_forks_on_a_shared_package_are_both_refused_before_any_write(
    shared_managed: ManagedFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = shared_managed
    lab.reset()
    monkeypatch.setenv("FORTIAUTO_LOCK_DIR", str(tmp_path / "locks"))
    store = json.dumps(lab.fmg.state(), sort_keys=True)

    run = playbook("site.yml", site_inventory(lab.site, tmp_path / "journal"), tmp_path, limit=None)

    assert run.returncode == 2, run.output
    for name, other in ((HOST, OTHER), (OTHER, HOST)):
        result = run.result(name)
        assert (result["status"], result["changed"], result["exit_code"]) == ("refused", False, 5)
        assert f"'mail-edge' also installs to {other}/root" in result["msg"]
        assert "without a probe or an undo" in result["msg"]
        assert (result["left_over"], result["changes"]) == ([], [])
        assert run.recap[name]["failed"] == 1
    fmg = lab.fmg.requests()
    assert (fmg["writes"], fmg["installs"]) == (0, 0)
    assert fmg["log"]
    assert only_reads(fmg["log"])
    assert json.dumps(lab.fmg.state(), sort_keys=True) == store
    assert lab.states() == lab.pristine
    assert unit_writes(lab) == NO_UNIT_WRITES
