"""The device transaction against an in-memory fake FortiGate and a fake prober.

The lab (tests/integration) proves the same over real sockets; here every branch of the
transaction is driven exactly: a failure at each write, a lost response, a concurrent edit,
a failing probe with and without fallback, a broken baseline, cancellation.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from fortiauto.errors import AuthError, NotFound
from fortiauto.journal import Journal, pending_undos, read_journal
from fortiauto.transaction import DeviceTransaction as DeviceRun
from fortiauto.transaction import TransactionOptions as EngineOptions
from tests.unit.fakes import FakeFortiGate, FakeProber, factory, make_device


async def run(gate, tmp_path, *, prober=None, fallback=(), check=False, force=False):  # force: the baseline
    journal = Journal(tmp_path / "journal", "run-1")
    device_run = DeviceRun(
        make_device(fallback),
        options=EngineOptions(run_id="run-1", check=check, force_baseline=force),
        client_factory=factory(gate),
        prober=prober or FakeProber(gate),
        journal=journal,
    )
    result = await device_run.run()
    journal.close()
    return result, read_journal(journal.path)


async def test_full_apply_changes_everything_and_proves_the_effect(tmp_path):
    gate = FakeFortiGate()
    result, entries = await run(gate, tmp_path)
    assert result.status == "changed"
    assert [c.task for c in result.changes] == [
        "certificate",
        "protocol_options",
        "ssl_profile",
        "emailfilter",
        "policy",
    ]
    assert result.effect == "logged"
    assert gate.objects[("firewall/policy", "1")]["ssl-ssh-profile"] == "protect-mx1"
    assert [e["type"] for e in entries].count("pre") == 5
    assert [e["type"] for e in entries[-2:]] == ["commit", "end"]
    # the journal holds pre-images, never key material
    assert "key_file_content" not in json.dumps(entries)


async def test_the_effect_counts_only_when_the_inbound_policy_logged_it(tmp_path):
    # A probe that came in another way (an inside host: the hairpin policy) proves nothing.
    result, _ = await run(FakeFortiGate(), tmp_path, prober=None)
    assert result.effect_evidence is not None
    assert result.effect_evidence["policy_id"] is None
    gate = FakeFortiGate()
    result, _ = await run(gate, tmp_path / "other", prober=FakeProber(gate, logged_by=7))
    assert (result.status, result.effect) == ("unproven", "not_logged")
    assert "logged by policy 7, not by the inbound policy 1" in result.reason
    assert "probe.via" in result.reason
    gate = FakeFortiGate()
    result, _ = await run(gate, tmp_path / "same", prober=FakeProber(gate, logged_by=1))
    assert (result.status, result.effect) == ("changed", "logged")
    assert result.effect_evidence is not None
    assert result.effect_evidence["policy_id"] == 1


async def test_second_apply_is_a_noop_with_reasons_and_zero_writes(tmp_path):
    gate = FakeFortiGate()
    await run(gate, tmp_path)
    writes = gate.writes
    result, _ = await run(gate, tmp_path)
    assert result.status == "unchanged"
    assert gate.writes == writes
    assert result.plan is not None
    assert set(result.plan.noop_reasons) == {
        "mx1/certificate",
        "mx1/protocol_options",
        "mx1/ssl_profile",
        "mx1/emailfilter",
        "mx1/policy",
    }


@pytest.mark.parametrize("failing_write", [1, 2, 3, 4, 5])
async def test_failure_at_each_write_restores_the_exact_pre_state(tmp_path, failing_write):
    gate = FakeFortiGate()
    before = gate.state()
    gate.fail_write = failing_write
    result, entries = await run(gate, tmp_path)
    assert result.status == "rolled_back"
    assert "injected" in result.reason
    assert gate.state() == before
    assert pending_undos(entries) == {}


@pytest.mark.parametrize("lost_write", [1, 3, 5])
async def test_lost_response_is_not_re_sent_and_rolls_back(tmp_path, lost_write):
    gate = FakeFortiGate()
    before = gate.state()
    gate.lose_write = lost_write
    sent: list[int] = []
    gate.on_write = sent.append
    result, entries = await run(gate, tmp_path)
    assert result.status == "rolled_back"
    assert "lost" in result.reason
    assert gate.state() == before
    # the writes up to the lost one, then only the undos of what actually changed: nothing re-sent
    assert len(sent) == lost_write + lost_write
    assert pending_undos(entries) == {}


async def test_concurrent_edit_stops_and_rolls_back(tmp_path):
    gate = FakeFortiGate()
    before = gate.state()

    def someone_else_edits(n: int) -> None:
        if n == 2:  # between plan and the policy write, another admin changes the policy
            gate.objects[("firewall/policy", "1")]["emailfilter-profile"] = "theirs"

    gate.on_write = someone_else_edits
    result, _ = await run(gate, tmp_path)
    assert result.status == "rolled_back"
    assert "changed on the device since it was planned" in result.reason
    policy = gate.objects[("firewall/policy", "1")]
    assert policy["emailfilter-profile"] == "theirs"  # their edit is kept, ours never written
    gate.objects[("firewall/policy", "1")]["emailfilter-profile"] = "default"
    assert gate.state() == before


async def test_probe_failure_rolls_back_and_confirms_mail_flows(tmp_path):
    gate = FakeFortiGate()
    before = gate.state()
    prober = FakeProber(gate, fail_after=True)
    result, _ = await run(gate, tmp_path, prober=prober)
    assert result.status == "rolled_back"
    assert "F4 banner-timeout" in result.reason
    assert gate.state() == before
    assert result.mttr_ms is not None
    assert prober.calls[-1] == ("other", True)  # the confirming probe passed


async def test_fallback_rung_sticks_when_the_full_fix_breaks_mail(tmp_path):
    gate = FakeFortiGate()
    result, _ = await run(
        gate, tmp_path, prober=FakeProber(gate, fail_after=True), fallback=("certificate-inspection",)
    )
    # Compliant with the fallback, not with the fix: its own status and exit code (6), not success.
    assert (result.status, result.exit_code) == ("fallback", 6)
    assert result.fallback_used == "certificate-inspection"
    assert result.failed_probe is not None
    assert result.failed_probe.rung is None  # the full fix's probe
    policy = gate.objects[("firewall/policy", "1")]
    assert policy["ssl-ssh-profile"] == "certificate-inspection"
    assert policy["emailfilter-profile"] == "mail-inbound"
    assert (
        "vpn.certificate/local",
        "fa-mx1-ab12cd34",
    ) not in gate.objects  # the full rung's import was undone
    assert result.effect == "not_logged"  # STARTTLS mail still unseen: not the full fix


async def test_broken_baseline_skips_unless_forced(tmp_path):
    gate = FakeFortiGate()
    result, _ = await run(gate, tmp_path, prober=FakeProber(gate, fail_baseline=True))
    assert result.status == "skipped"
    assert "baseline probe failed" in result.reason
    assert gate.writes == 0
    forced, _ = await run(gate, tmp_path, prober=FakeProber(gate, fail_baseline=True), force=True)
    assert forced.status == "changed"
    assert forced.forced


async def test_check_mode_reads_only(tmp_path):
    gate = FakeFortiGate()
    result, _ = await run(gate, tmp_path, check=True)
    assert result.status == "changed"
    assert len(result.changes) == 5
    assert gate.writes == 0


async def test_unsupported_version_is_refused_before_any_write(tmp_path):
    gate = FakeFortiGate(version="6.2.9")
    result, _ = await run(gate, tmp_path)
    assert result.status == "failed"
    assert result.exit_code == 2
    assert "supported: 6.4, 7.0, 7.2, 7.4" in result.reason
    assert gate.writes == 0


async def test_cancellation_mid_apply_rolls_back(tmp_path):
    gate = FakeFortiGate()
    before = gate.state()
    started = asyncio.Event()
    release = asyncio.Event()
    original = gate.update

    async def slow_update(*args, **kwargs):
        started.set()
        await release.wait()
        return await original(*args, **kwargs)

    gate.update = slow_update  # the policy write hangs until cancelled
    task = asyncio.create_task(run(gate, tmp_path))
    await started.wait()
    task.cancel()
    gate.update = original
    result, entries = await task
    assert result.status == "rolled_back"
    assert gate.state() == before
    assert pending_undos(entries) == {}


# -- pre-flight: device states the engine must refuse before any write ------------------------


def _profile(**groups):
    base = {g: "read-write" for g in ("fwgrp", "utmgrp", "vpngrp")}
    return {"name": "automation", **base, **groups}


async def test_fortimanager_managed_is_refused_before_probing_or_writing(tmp_path):
    gate = FakeFortiGate()
    gate.web_ui_state["centrally_managed"] = True
    gate.objects[("system/central-management", "-")] = {"type": "fortimanager", "fmg": "10.9.9.9"}
    prober = FakeProber(gate)
    result, entries = await run(gate, tmp_path, prober=prober)
    assert result.status == "refused"
    assert result.exit_code == 5
    assert "managed by FortiManager 10.9.9.9" in result.reason
    assert gate.writes == 0
    assert prober.calls == []
    assert [e["type"] for e in entries if e["type"] == "pre"] == []


async def test_fortigate_cloud_management_is_not_fortimanager(tmp_path):
    gate = FakeFortiGate()
    gate.web_ui_state["centrally_managed"] = True
    gate.objects[("system/central-management", "-")] = {"type": "fortiguard"}
    result, _ = await run(gate, tmp_path)
    assert result.status == "changed", result.reason


async def test_ha_secondary_is_refused_and_a_primary_lists_its_members(tmp_path):
    members = [
        {"serial_no": "FGVMFAKE00000001", "hostname": "edge-a", "priority": 200},
        {"serial_no": "FGVMFAKE00000002", "hostname": "edge-b", "priority": 100},
    ]
    gate = FakeFortiGate()
    gate.web_ui_state |= {"ha_mode": 2, "is_ha_master": 0}
    gate.monitor["system/ha-peer"] = members
    result, _ = await run(gate, tmp_path)
    assert result.status == "refused"
    assert "HA secondary (serial FGVMFAKE00000001) of an a-p cluster" in result.reason
    assert gate.writes == 0

    gate = FakeFortiGate()
    gate.web_ui_state |= {"ha_mode": 2, "is_ha_master": 1}
    gate.monitor["system/ha-peer"] = members
    result, _ = await run(gate, tmp_path)
    assert result.status == "changed", result.reason
    assert result.plan is not None
    assert (
        "HA a-p cluster: edge-a (FGVMFAKE00000001, this unit); edge-b (FGVMFAKE00000002); "
        "this unit is the primary"
    ) in result.plan.warnings


@pytest.mark.parametrize(
    ("groups", "refused"),
    [
        ({"fwgrp": "read"}, "firewall/policy (fwgrp: read)"),
        ({"fwgrp": "custom", "fwgrp-permission": {"policy": "read"}}, "firewall/policy (fwgrp: custom)"),
        ({"utmgrp": "custom", "utmgrp-permission": {"emailfilter": "none"}}, "emailfilter/profile"),
        ({"vpngrp": "none"}, "vpn.certificate/local (vpngrp: none)"),
        ({"fwgrp": "custom", "fwgrp-permission": {"policy": "read-write"}}, None),
        ({"utmgrp": "custom", "utmgrp-permission": {"emailfilter": "read-write"}}, None),
    ],
)
async def test_write_rights_are_checked_against_the_planned_tables(tmp_path, groups, refused):
    gate = FakeFortiGate()
    gate.web_ui_state["admin"] = {"name": "robot", "super_admin": False, "profile": _profile(**groups)}
    result, _ = await run(gate, tmp_path)
    if refused is None:
        assert result.status == "changed", result.reason
    else:
        assert result.status == "refused"
        assert refused in result.reason
        assert "the API admin robot (access profile automation) cannot write" in result.reason
        assert gate.writes == 0


async def test_read_only_token_on_a_compliant_device_is_simply_unchanged(tmp_path):
    gate = FakeFortiGate()
    await run(gate, tmp_path)
    gate.web_ui_state["admin"] = {"name": "audit", "super_admin": False, "profile": _profile(fwgrp="read")}
    result, _ = await run(gate, tmp_path)
    assert result.status == "unchanged", result.reason


async def test_without_web_ui_state_the_checks_are_skipped_with_a_note(tmp_path):
    gate = FakeFortiGate()

    async def missing(path, *, vdom=None, params=None):
        gate.total += 1
        raise NotFound("no such path", http_status=404, error_code=-3)

    gate.monitor_get = missing
    result, _ = await run(gate, tmp_path)
    assert result.status == "changed", result.reason
    assert result.plan is not None
    assert any(w.startswith("pre-flight checks not done (web-ui/state") for w in result.plan.warnings)


async def test_a_rejected_token_on_web_ui_state_is_not_swallowed(tmp_path):
    gate = FakeFortiGate()

    async def unauthorised(path, *, vdom=None, params=None):
        raise AuthError("token rejected", http_status=401)

    gate.monitor_get = unauthorised
    result, _ = await run(gate, tmp_path)
    assert result.status == "failed"
    assert result.exit_code == 2
    assert gate.writes == 0
