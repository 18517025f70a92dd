"""Reports and renderings against golden files: FortiOS CLI (change + rollback), Markdown, JUnit, JSON.

Runs come from the real engine over the fake FortiGate, so the golden files show what a user
gets; a canary secret in the device settings must never reach any of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from fortiauto.report import write_reports
from fortiauto.report.console import render_change, render_plan
from fortiauto.report.to_fortios_cli import plan_to_cli, rollback_to_cli
from fortiauto.report.to_junit import run_to_junit
from fortiauto.report.to_markdown import run_to_markdown
from fortiauto.results import Change, Plan, RunResult
from fortiauto.transaction import DeviceTransaction, TransactionOptions
from fortiauto.transaction.outcome import fleet_exit_code
from tests.unit.fakes import FakeFortiGate, FakeProber, factory, make_device

CANARY = "CANARY-SECRET-7f3a"


async def _device(name: str = "fgt-1", *, fail: bool = False, fallback: bool = True, version: str = "7.0.15"):
    """One device through the real transaction over the fake FortiGate; ``fail``: the change breaks mail."""
    gate = FakeFortiGate(version)
    rungs = ("certificate-inspection",) if fail and fallback else ()
    device = make_device(rungs, name=name).model_copy(update={"token": SecretStr(CANARY)})
    return await DeviceTransaction(
        device,
        options=TransactionOptions(run_id="20261124T221503Z-1a2b3c"),
        client_factory=factory(gate),
        prober=FakeProber(gate, fail_after=fail),
    ).run()


def _run_of(*results) -> RunResult:
    when = datetime(2026, 11, 24, 22, 15, 3, tzinfo=UTC)
    return RunResult(
        run_id="20261124T221503Z-1a2b3c",
        started=when,
        finished=when,
        devices=tuple(results),
        exit_code=fleet_exit_code(results),
    )


async def _run(fail: bool = False, version: str = "7.0.15") -> RunResult:
    return _run_of(await _device(fail=fail, version=version))


async def test_plan_cli_equivalent_per_version(golden):
    for version in ("6.4.14", "7.0.15", "7.2.10", "7.4.8"):
        gate = FakeFortiGate(version)
        result = await DeviceTransaction(
            make_device(),
            options=TransactionOptions(run_id="r", check=True, probe=False),
            client_factory=factory(gate),
            prober=FakeProber(gate),
        ).run()
        assert result.plan is not None
        text = plan_to_cli(result.plan) + rollback_to_cli(result.plan)
        golden(f"plan-cli-{version}.txt", text)
        assert "private-key <private key, not shown>" in text
        assert gate.writes == 0


async def test_plan_text(golden):
    gate = FakeFortiGate()
    result = await DeviceTransaction(
        make_device(),
        options=TransactionOptions(run_id="r", check=True, probe=False),
        client_factory=factory(gate),
        prober=FakeProber(gate),
    ).run()
    assert result.plan is not None
    golden("plan-text-7.0.txt", render_plan(result.plan) + "\n")


async def test_change_record_markdown(golden):
    run = await _run()
    text = run_to_markdown(
        run, operator="ops@example", window="2026-11-24T22:00+01:00 - 2026-11-25T02:00+01:00"
    )
    golden("change-record-applied.md", text)
    assert "fortiauto rollback --run 20261124T221503Z-1a2b3c" in text


async def test_change_record_with_fallback(golden):
    run = await _run(fail=True)
    assert run.devices[0].fallback_used == "certificate-inspection"
    golden("change-record-fallback.md", run_to_markdown(run, operator="ops@example"))


async def test_junit(golden):
    run = await _run(fail=True)
    golden("run-fallback.junit.xml", run_to_junit(run))


async def test_json_contract(golden):
    run = await _run()
    data = run.to_json()
    assert set(data) >= {"run_id", "started", "finished", "exit_code", "devices"}
    device = data["devices"][0]
    assert set(device) >= {
        "name",
        "status",
        "reason",
        "changes",
        "requests",
        "probe",
        "effect",
        "fallback_used",
        "mttr_ms",
    }
    assert set(device["probe"]) >= {"passed", "mode", "failure_class", "steps"}
    assert set(device["changes"][0]) >= {"task", "path", "mkey", "action", "diff"}
    golden("run-applied.json", json.dumps(data, indent=2, sort_keys=True) + "\n")


async def test_report_files_are_private_and_hold_no_secret(tmp_path: Path):
    run = await _run(fail=True)
    paths = write_reports(run, tmp_path / "reports")
    assert {p.suffix for p in paths} == {".json", ".xml", ".md", ".html"}
    assert oct((tmp_path / "reports").stat().st_mode & 0o777) == "0o700"
    for path in paths:
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert CANARY not in path.read_text()


def test_a_rotated_out_certificate_renders_as_a_delete():
    change = Change(
        task="certificate",
        path="vpn.certificate/local",
        mkey="fa-mx1-0ld0ld00",
        action="delete",
        before={"name": "fa-mx1-0ld0ld00"},
        after=None,
    )
    plan = Plan(device="fgt-1", version="7.0.15", changes=(change,))
    assert "    delete fa-mx1-0ld0ld00" in plan_to_cli(plan)
    assert "re-import certificate fa-mx1-0ld0ld00" in rollback_to_cli(plan)
    assert render_change(change)[-1].strip() == "- (removed)"


async def test_change_record_of_a_rolled_back_device(golden):
    run = _run_of(await _device(fail=True, fallback=False))
    assert run.devices[0].status == "rolled_back"
    text = run_to_markdown(run, operator="ops@example", journal_dir="/srv/fortiauto/journal")
    golden("change-record-rolled-back.md", text)
    assert "Attempted plan: Plan A" in text
    assert "update firewall/policy/1" in text
    assert "### Failure that caused the rollback" in text
    assert "fortiauto rollback --run 20261124T221503Z-1a2b3c --journal-dir /srv/fortiauto/journal" in text


async def test_change_record_of_alike_devices_holds_their_plan_once():
    one = run_to_markdown(_run_of(await _device("fgt-001")), operator="ops@example")
    three = run_to_markdown(
        _run_of(*[await _device(f"fgt-00{i}") for i in (1, 2, 3)]), operator="ops@example"
    )
    assert three.count("FortiOS CLI equivalent") == 1
    assert "## Plan A: 3 device(s)" in three
    assert len(three) < 1.4 * len(one)  # was 3x (28 KB for three identical devices)


async def test_change_record_of_a_compliant_device_says_why_nothing_changed():
    gate = FakeFortiGate()
    first = await DeviceTransaction(
        make_device(),
        options=TransactionOptions(run_id="20261124T221503Z-1a2b3c"),
        client_factory=factory(gate),
        prober=FakeProber(gate),
    ).run()
    assert first.status == "changed"
    again = await DeviceTransaction(
        make_device(),
        options=TransactionOptions(run_id="20261124T221503Z-1a2b3d"),
        client_factory=factory(gate),
        prober=FakeProber(gate),
    ).run()
    assert again.status == "unchanged"
    assert again.plan is not None
    text = run_to_markdown(_run_of(again), operator="ops@example")
    assert "Nothing to change" in text
    for label in again.plan.noop_reasons:
        assert f"- {label}: " in text
