"""The whole pipeline against the lab over real sockets, for each supported FortiOS major.

The recommended configuration is checked through pyfortiapi (an independent client), the
request budget from the lab's own request log, and rollback by comparing the lab's canonical
state dump byte for byte.
"""

from __future__ import annotations

import pytest

from fortiauto.report.to_fortios_cli import plan_to_cli, rollback_to_cli
from tests.integration.engine.labkit import apply, cmdb, pyfortiapi_for, rollback_last

VERSIONS = ["6.4", "7.0", "7.2", "7.4"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_apply_noop_rollback(lab_factory, monkeypatch, tmp_path, version, golden):
    lab = lab_factory(version)
    control = lab.control()
    pristine = control.state()
    before = control.requests()

    plan = await apply(lab.site, tmp_path / "j", check=True, probe=False, command="plan")
    assert plan.devices[0].plan is not None
    golden(
        f"lab-plan-cli-{version}.txt",
        plan_to_cli(plan.devices[0].plan) + rollback_to_cli(plan.devices[0].plan),
    )
    assert control.requests()["writes"] == before["writes"]
    assert control.state() == pristine

    first = await apply(lab.site, tmp_path / "j")
    device = first.devices[0]
    assert device.status == "changed", device.reason
    assert device.effect == "logged"
    assert first.exit_code == 0
    counted = control.requests()
    # 14 for the change (facts, pre-flight, re-read before each update, writes), 5 read-back reads,
    # 4 log-settings reads (at once) for where the device logs, 2 for the policy check (VIP,
    # services), 1 for the VDOM's NGFW mode (the policy is about to change), 1 configuration
    # revision saved before the first write.
    assert device.requests.total <= 27
    assert counted["total"] - before["total"] >= device.requests.total  # the lab saw at least what we counted

    fgt = pyfortiapi_for(lab.info["devices"][0], lab.ca, monkeypatch)
    profile = cmdb(fgt, "emailfilter/profile/mail-inbound")[0]
    log_key = "log-all"
    assert profile["feature-set"] == "proxy"
    assert profile["spam-log"] == "enable"
    for container in ("smtp", "imap", "pop3", "msn-hotmail", "gmail"):
        assert profile[container][log_key] == "enable"
    ssl = cmdb(fgt, "firewall/ssl-ssh-profile/protect-mx1")[0]
    assert ssl["server-cert-mode"] == "replace"
    bound = ssl["server-cert"]
    names = {bound} if isinstance(bound, str) else {c["name"] for c in bound}
    assert len(names) == 1
    assert next(iter(names)).startswith("fa-mx1-")
    policy = next(p for p in cmdb(fgt, "firewall/policy") if p["name"] == "inbound-smtp")
    assert policy["inspection-mode"] == "proxy"
    assert policy["ssl-ssh-profile"] == "protect-mx1"
    assert policy["emailfilter-profile"] == "mail-inbound"
    assert policy["profile-protocol-options"] == "smtp-inbound"

    mark = control.requests()
    second = await apply(lab.site, tmp_path / "j")
    again = second.devices[0]
    assert again.status == "unchanged"
    assert again.requests.writes == 0
    assert again.requests.total <= 12  # 8 facts and pre-flight reads, 4 log-settings reads (at once)
    assert control.requests()["writes"] == mark["writes"]
    assert again.plan is not None
    assert len(again.plan.noop_reasons) == 5

    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"]
    assert control.state() == pristine
    twice = await rollback_last(tmp_path / "j")
    assert [d.status for d in twice.devices] == ["unchanged"]
    assert control.state() == pristine


@pytest.mark.parametrize("fault", ["http500-on-write", "reset-on-write"])
@pytest.mark.parametrize("write", [1, 2, 3, 4, 5])
async def test_failure_at_each_write_restores_the_device(lab_factory, tmp_path, fault, write):
    lab = lab_factory("7.0")
    control = lab.control()
    pristine = control.state()
    control.faults(f"{fault}={write}")
    run = await apply(lab.site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "rolled_back", device.reason
    assert run.exit_code == 3
    control.faults({})
    assert control.state() == pristine
