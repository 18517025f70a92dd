"""Real-world device states, set as lab faults: FortiManager, HA pair, read-only token.

Each refusal happens before any write (the lab's own request log shows none) and leaves the
device byte for byte as it was; the override and the HA primary go through. Runtime: about 6 s.
"""

from __future__ import annotations

import pytest

from tests.integration.day2.daykit import site_copy, writes_since
from tests.integration.engine.labkit import apply


async def _refused(lab, tmp_path, fault: str):
    control = lab.control()
    control.faults(fault)
    pristine = control.state()
    mark = control.requests()
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "refused", device.reason
    assert device.reason.startswith("refused: ")
    assert run.exit_code == 5
    assert device.requests.writes == 0
    assert writes_since(control, mark) == 0
    assert control.state() == pristine
    return device


async def test_fortimanager_managed_device_is_refused(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    device = await _refused(lab, tmp_path, "fortimanager-managed")
    assert "managed by FortiManager 192.0.2.40" in device.reason
    assert "conflict" in device.reason
    assert "allow_fortimanager_managed: true" in device.reason
    assert device.probe is None
    assert device.baseline is None

    planned = await apply(lab.site, tmp_path / "j", check=True, probe=False, command="plan")
    plan = planned.devices[0].plan
    assert plan is not None
    assert plan.changes
    assert any(w.startswith("apply would be refused: ") for w in plan.warnings)


async def test_fortimanager_managed_device_changes_when_the_site_allows_it(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    lab.control().faults("fortimanager-managed")
    site = site_copy(lab.site, "fmg-allowed", device={"allow_fortimanager_managed": True})
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    assert device.plan is not None
    assert any("managed by FortiManager 192.0.2.40" in w and "out of sync" in w for w in device.plan.warnings)


async def test_ha_secondary_is_refused_with_the_primary_named(lab_factory, tmp_path):
    lab = lab_factory("7.4")
    device = await _refused(lab, tmp_path, "ha-secondary")
    assert "HA secondary (serial FGVMLAB000000001)" in device.reason
    assert "the primary is fgt-001-a (FGVMLABP00000001, primary)" in device.reason
    # The lab's secondary itself refuses writes, as the pre-flight check assumed.
    answer = lab.control().http.put("/api/v2/cmdb/firewall/policy/1", json={"comments": "x"})
    assert answer.status_code == 500
    assert answer.json()["error"] == -37


async def test_ha_primary_is_changed_and_the_plan_lists_the_cluster(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    lab.control().faults("ha-primary")
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    assert device.plan is not None
    cluster = [w for w in device.plan.warnings if w.startswith("HA a-p cluster: ")]
    assert cluster == [
        "HA a-p cluster: fgt-001 (FGVMLAB000000001, this unit); fgt-001-b (FGVMLABP00000001); "
        "this unit is the primary"
    ]
    # The budget of a first apply (with its read-back and log settings), plus the member list.
    assert device.requests.total <= 28  # as test_apply's first apply (27), plus the member list


@pytest.mark.parametrize("version", ["6.4", "7.4"])
async def test_read_only_token_is_refused_before_any_write(lab_factory, tmp_path, version):
    lab = lab_factory(version)
    device = await _refused(lab, tmp_path, "read-only-token")
    assert "cannot write" in device.reason
    assert "fortiauto-read-only" in device.reason
    assert "firewall/policy (fwgrp: read)" in device.reason
    # The lab enforces the profile: the same token's write would have been refused half-way.
    answer = lab.control().http.put("/api/v2/cmdb/firewall/policy/1", json={"comments": "x"})
    assert answer.status_code == 403


async def test_read_only_token_still_plans(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    lab.control().faults("read-only-token")
    planned = await apply(lab.site, tmp_path / "j", check=True, probe=False, command="plan")
    device = planned.devices[0]
    assert device.status == "changed"  # "would change": an audit with a read-only token works
    assert device.plan is not None
    assert any("apply would be refused: the API admin fortiauto-api" in w for w in device.plan.warnings)


async def test_fleet_run_refuses_only_the_managed_device(lab_factory, tmp_path):
    # The --faults spec of `fortiauto lab up`, set at start-up and kept across resets.
    lab = lab_factory("7.0", devices=2, faults="fgt-002:fortimanager-managed")
    run = await apply(lab.site, tmp_path / "j")
    by_name = {d.name: d for d in run.devices}
    assert by_name["fgt-001"].status == "changed", by_name["fgt-001"].reason
    assert by_name["fgt-002"].status == "refused"
    assert "FortiManager" in by_name["fgt-002"].reason
    assert run.exit_code == 5
