"""The device transaction against an in-memory fake FortiGate and a fake prober.

The lab (tests/integration) proves the same over real sockets; here every branch of the
transaction is driven exactly: a failure at each write, a lost response, a concurrent edit,
a failing probe with and without fallback, a broken baseline, cancellation.
"""

from __future__ import annotations

import asyncio
import copy
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from fortiauto.engine import DeviceRun, EngineOptions
from fortiauto.errors import AlreadyExists, NotFound, ResponseLost, ServerError
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.journal import Journal, pending_undos, read_journal
from fortiauto.model import ProbeResult, RequestCounts
from fortiauto.site import CertificateSpec, Device, MailServer, PolicyRef, ProbeSpec

FP = "ab12cd34" + "0" * 56


class Status:
    def __init__(self, version: str) -> None:
        self.version = FortiOSVersion.parse(version)


class FakeFortiGate:
    """Just enough CMDB: objects per (path, mkey); writes counted; failures scheduled by write number."""

    def __init__(self, version: str = "7.0.15") -> None:
        self.version = version
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.total = 0
        self.writes = 0
        self.fail_write: int | None = None
        self.lose_write: int | None = None
        self.on_write: Any = None
        self.log: list[str] = []
        self.objects[("firewall/policy", "1")] = {
            "policyid": 1,
            "name": "inbound-smtp",
            "dstaddr": [{"name": "vip-mx1", "q_origin_key": "vip-mx1"}],
            "action": "accept",
            "inspection-mode": "flow",
            "utm-status": "enable",
            "ssl-ssh-profile": "certificate-inspection",
            "emailfilter-profile": "default",
            "profile-protocol-options": "default",
        }

    def state(self) -> str:
        return json.dumps({f"{p}/{k}": v for (p, k), v in sorted(self.objects.items())}, sort_keys=True)

    @property
    def counts(self) -> RequestCounts:
        return RequestCounts(self.total, self.writes)

    async def system_status(self) -> Status:
        self.total += 1
        return Status(self.version)

    async def get(
        self, path: str, mkey: Any = None, *, vdom: Any = None, params: Any = None
    ) -> list[dict[str, Any]]:
        self.total += 1
        return [copy.deepcopy(v) for (p, _), v in sorted(self.objects.items()) if p == path]

    async def get_one(
        self, path: str, mkey: Any, *, vdom: Any = None, params: Any = None
    ) -> dict[str, Any] | None:
        self.total += 1
        obj = self.objects.get((path, str(mkey)))
        return copy.deepcopy(obj) if obj is not None else None

    def _write(self) -> bool:
        """Count a write; raise the scheduled failure; True when the answer must be lost."""
        self.total += 1
        self.writes += 1
        if self.on_write is not None:
            self.on_write(self.writes)
        if self.fail_write == self.writes:
            raise ServerError("injected", http_status=500, error_code=-1)
        return self.lose_write == self.writes

    async def create(self, path: str, body: Any, *, vdom: Any = None, params: Any = None) -> None:
        lost = self._write()
        key = (path, str(body["name"]))
        if key in self.objects:
            raise AlreadyExists("exists", error_code=-5)
        self.objects[key] = copy.deepcopy(body)
        if lost:
            raise ResponseLost("lost")

    async def update(self, path: str, mkey: Any, body: Any, *, vdom: Any = None, params: Any = None) -> None:
        lost = self._write()
        obj = self.objects.get((path, str(mkey)))
        if obj is None:
            raise NotFound("missing", http_status=404, error_code=-3)
        for key, value in body.items():
            if isinstance(value, dict) and isinstance(obj.get(key), dict):
                obj[key].update(copy.deepcopy(value))
            else:
                obj[key] = copy.deepcopy(value)
        if lost:
            raise ResponseLost("lost")

    async def delete(self, path: str, mkey: Any, *, vdom: Any = None) -> None:
        self._write()
        if self.objects.pop((path, str(mkey)), None) is None:
            raise NotFound("missing", http_status=404, error_code=-3)

    async def monitor_post(self, path: str, body: Any, *, vdom: Any = None, params: Any = None) -> None:
        lost = self._write()
        assert path == "vpn-certificate/local/import"
        assert "key_file_content" in body
        self.objects[("vpn.certificate/local", body["certname"])] = {
            "name": body["certname"],
            "certificate": "",
        }
        if lost:
            raise ResponseLost("lost")

    async def log_get(self, path: str, *, vdom: Any = None, params: Any = None) -> str:
        self.total += 1
        return "\n".join(self.log)


class FakeProber:
    """Passes unless told which stages fail; logs the subject when the fake device 'logs'."""

    def __init__(self, gate: FakeFortiGate, *, fail_after: bool = False, fail_baseline: bool = False) -> None:
        self.gate = gate
        self.fail_after = fail_after
        self.fail_baseline = fail_baseline
        self.calls: list[tuple[str | None, bool]] = []

    async def __call__(
        self, spec: ProbeSpec, *, pin_sha256=None, baseline=None, subject_token=None
    ) -> ProbeResult:
        stage = "after" if pin_sha256 else "other"
        policy = self.gate.objects[("firewall/policy", "1")]
        changed = policy["inspection-mode"] == "proxy"
        deep = policy["ssl-ssh-profile"] == "protect-mx1"
        failing = (self.fail_after and changed and deep) or (self.fail_baseline and not changed)
        self.calls.append((stage, not failing))
        subject = f"fortiauto probe {subject_token}"
        if not failing and changed and deep:
            self.gate.log.append(f'subject="{subject}"')
        return ProbeResult(
            passed=not failing,
            mode="starttls",
            failure_class="F4 banner-timeout" if failing else None,
            subject=subject,
        )


def make_device(fallback: tuple[str, ...] = ()) -> Device:
    ms = MailServer(
        name="mx1",
        policy=PolicyRef(vip="vip-mx1"),
        certificate=CertificateSpec(
            cert=Path("mx1.pem"),
            key=Path("mx1.key"),
            fingerprint_sha256=FP,
            cert_pem="-----BEGIN CERTIFICATE-----\n",
        ),
        emailfilter_profile="mail-inbound",
        ssl_profile="protect-mx1",
        protocol_options="smtp-inbound",
        probe=ProbeSpec(host="127.0.0.1", port=2525, transaction={"mail_from": "a@b.c", "rcpt_to": "d@e.f"}),
        fallback=fallback,
    )
    return Device(name="fgt-1", url="https://127.0.0.1:1", token="x", mail_servers=(ms,))


def factory(gate: FakeFortiGate):
    @asynccontextmanager
    async def open_client(device: Device):
        yield gate

    return open_client


async def run(gate, tmp_path, *, prober=None, fallback=(), check=False, force=False):
    journal = Journal(tmp_path / "journal", "run-1")
    device_run = DeviceRun(
        make_device(fallback),
        options=EngineOptions(run_id="run-1", check=check, force=force),
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
    assert entries[-1]["type"] == "commit"
    # the journal holds pre-images, never key material
    assert "key_file_content" not in json.dumps(entries)


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
async def test_lost_response_is_re_read_not_re_sent(tmp_path, lost_write):
    gate = FakeFortiGate()
    gate.lose_write = lost_write
    result, _ = await run(gate, tmp_path)
    assert result.status == "changed"
    assert gate.writes == 5  # the write that lost its answer was not sent again


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
    assert result.status == "changed"
    assert result.fallback_used == "certificate-inspection"
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
