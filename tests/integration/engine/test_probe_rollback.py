"""Probe, change, probe: the field failures reproduced by the lab, and what fortiauto does about them."""

from __future__ import annotations

import pytest

from tests.integration.engine.labkit import apply, cmdb, pyfortiapi_for, site_variant

# Short probe budgets keep the failing cases quick; the lab's own site file uses 5 s.
FAST = {"timeout": 1.5, "retries": 2, "retry_delay": 0.1}


async def test_banner_hold_rolls_back_and_mail_flows_again(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    control = lab.control()
    pristine = control.state()
    control.faults("banner-hold-on-utm")
    site = site_variant(lab.site, "nofallback", fallback=None, probe=FAST)
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "rolled_back", device.reason
    assert run.exit_code == 3
    assert device.probe is not None
    assert device.probe.failure_class == "F4 banner-timeout"
    assert device.mttr_ms is not None
    assert control.state() == pristine
    # the confirming probe after the rollback delivered its message: mail flows again
    subjects = [m.get("subject", "") for m in control.messages()]
    assert any(s.startswith("fortiauto probe") for s in subjects)


async def test_fallback_rung_keeps_mail_flowing_with_logging_on(lab_factory, monkeypatch, tmp_path):
    lab = lab_factory("7.0")
    control = lab.control()
    control.faults("banner-hold-on-utm")
    run = await apply(
        site_variant(lab.site, "fast", probe=FAST), tmp_path / "j"
    )  # fallback: [certificate-inspection]
    device = run.devices[0]
    # Mail flows, but on the fallback rung, not with the full fix: status and exit code say so.
    assert device.status == "fallback", device.reason
    assert run.exit_code == 6
    assert device.fallback_used == "certificate-inspection"
    assert device.failed_probe is not None
    assert device.failed_probe.result.failure_class.startswith("F4")
    assert (
        device.effect == "not_logged"
    )  # STARTTLS mail passes certificate-inspection unseen: not the full fix
    fgt = pyfortiapi_for(lab.info["devices"][0], lab.ca, monkeypatch)
    profile = cmdb(fgt, "emailfilter/profile/mail-inbound")[0]
    assert profile["smtp"]["log-all"] == "enable"
    policy = next(p for p in cmdb(fgt, "firewall/policy") if p["name"] == "inbound-smtp")
    assert policy["ssl-ssh-profile"] == "certificate-inspection"
    assert policy["inspection-mode"] == "proxy"
    certs = [c["name"] for c in cmdb(fgt, "vpn.certificate/local")]
    assert not any(name.startswith("fa-") for name in certs)  # the full rung's import was undone


@pytest.mark.parametrize(
    ("fault", "failure_class"),
    [
        ("blackhole-after-data", "F17 not-delivered"),  # 250 after the dot, never delivered
        ("wrong-cert", "F12 certificate-mismatch"),  # the FortiGate presents another certificate
    ],
)
async def test_mail_broken_after_the_change_rolls_back(lab_factory, tmp_path, fault, failure_class):
    lab = lab_factory("7.0")
    control = lab.control()
    pristine = control.state()
    control.faults(fault)
    run = await apply(site_variant(lab.site, "nofallback", fallback=None, probe=FAST), tmp_path / "j")
    device = run.devices[0]
    assert device.status == "rolled_back", device.reason
    assert device.probe is not None
    assert device.probe.failure_class == failure_class
    assert control.state() == pristine


async def test_broken_baseline_is_skipped_untouched(lab_factory, monkeypatch, tmp_path):
    lab = lab_factory("7.0")
    control = lab.control()
    fgt = pyfortiapi_for(lab.info["devices"][0], lab.ca, monkeypatch)
    policy = next(p for p in cmdb(fgt, "firewall/policy") if p["name"] == "inbound-smtp")
    url = fgt.urlbase + f"api/v2/cmdb/firewall/policy/{policy['policyid']}"
    assert fgt.put(url, "{'status': 'disable'}") == 200  # mail is already broken before fortiauto starts
    broken = control.state()
    writes = control.requests()["writes"]
    run = await apply(site_variant(lab.site, "fast", probe=FAST), tmp_path / "j")
    device = run.devices[0]
    assert device.status == "skipped"
    assert "baseline probe failed" in device.reason
    assert control.requests()["writes"] == writes
    assert control.state() == broken
