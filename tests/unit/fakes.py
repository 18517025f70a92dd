"""Fakes for unit tests: an in-memory FortiGate CMDB and a prober that reacts to its policy.

Fakes over mocks (STYLE.md 10): small classes that behave like the real thing at the engine's
seams (``engine.DeviceApi``, ``engine.Prober``). The lab proves the same over real sockets.
"""

from __future__ import annotations

import asyncio
import copy
import json
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fortiauto.errors import AlreadyExists, MalformedAnswer, NotFound, ResponseLost, ServerError
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.results import ProbeResult, RequestCounts
from fortiauto.site import CertificateSpec, Device, MailServer, PolicyRef, ProbeSpec

FP = "ab12cd34" + "0" * 56


class Status:
    def __init__(self, version: str) -> None:
        self.version = FortiOSVersion.parse(version)
        self.serial = "FGVMFAKE00000001"


SUPER_ADMIN = {"name": "api", "super_admin": True, "profile": {"name": "super_admin"}}


class FakeFortiGate:
    """Just enough CMDB: objects per (path, mkey); writes counted; failures scheduled by write number."""

    def __init__(self, version: str = "7.0.15") -> None:
        self.version = version
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.total = 0
        self.writes = 0
        self.fail_write: int | None = None
        self.lose_write: int | None = None
        self.swallow_write: int | None = None  # answered "success", never applied (a proxy ate it)
        self.mangle_after_write: int | None = None  # from this write on, every answer is garbage
        self.read_delay = 0.0
        self.revision_moved_on_write: int | None = None  # this write's answer says someone else edited
        self.on_write: Any = None
        self.log: list[str] = []
        # What monitor/web-ui/state answers (pre-flight): a standalone unit, a super-admin token.
        self.web_ui_state: dict[str, Any] = {"admin": SUPER_ADMIN, "ha_mode": 0, "is_ha_master": 1}
        self.monitor: dict[str, Any] = {}  # other monitor GETs by path
        self.revisions: list[str] = []  # comments of the configuration revisions saved (not writes)
        self.objects[("firewall/policy", "1")] = {
            "policyid": 1,
            "name": "inbound-smtp",
            "dstaddr": [{"name": "vip-mx1", "q_origin_key": "vip-mx1"}],
            "service": [{"name": "SMTP", "q_origin_key": "SMTP"}],
            "action": "accept",
            "inspection-mode": "flow",
            "utm-status": "enable",
            "ssl-ssh-profile": "certificate-inspection",
            "emailfilter-profile": "default",
            "profile-protocol-options": "default",
        }

        # What the policy check reads: the VIP the policy sends to, the SMTP service.
        self.objects[("firewall/vip", "vip-mx1")] = {"name": "vip-mx1", "mappedip": [{"range": "10.0.0.25"}]}
        self.objects[("firewall.service/custom", "SMTP")] = {"name": "SMTP", "tcp-portrange": "25"}

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
        self._answer()
        return [copy.deepcopy(v) for (p, _), v in sorted(self.objects.items()) if p == path]

    async def get_one(
        self, path: str, mkey: Any, *, vdom: Any = None, params: Any = None
    ) -> dict[str, Any] | None:
        self.total += 1
        if self.read_delay:
            await asyncio.sleep(self.read_delay)
        self._answer()
        obj = self.objects.get((path, str(mkey)))
        return copy.deepcopy(obj) if obj is not None else None

    def _mangled(self) -> bool:
        return self.mangle_after_write is not None and self.writes > self.mangle_after_write

    def _answer(self) -> None:
        if self._mangled():
            raise MalformedAnswer("200 with an HTML body, not a FortiOS envelope")

    def _write(self) -> bool:
        """Count a write; raise the scheduled failure; True when the answer must be lost."""
        self.total += 1
        self.writes += 1
        if self.on_write is not None:
            self.on_write(self.writes)
        if self.fail_write == self.writes:
            raise ServerError("injected", http_status=500, error_code=-1)
        return self.lose_write == self.writes

    def _swallowed(self) -> bool:
        return self.swallow_write == self.writes

    async def create(
        self, path: str, body: Any, *, vdom: Any = None, params: Any = None, mkey: Any = None
    ) -> None:
        lost = self._write()
        key = (path, str(body["name"]))
        if key in self.objects:
            raise AlreadyExists("exists", error_code=-5)
        if not self._swallowed():
            self.objects[key] = copy.deepcopy(body)
        self._answer()
        if lost:
            raise ResponseLost("lost", in_flight=False)

    async def update(self, path: str, mkey: Any, body: Any, *, vdom: Any = None, params: Any = None) -> Any:
        lost = self._write()
        obj = self.objects.get((path, str(mkey)))
        if obj is None:
            raise NotFound("missing", http_status=404, error_code=-3)
        if self._swallowed():
            return None
        for key, value in body.items():
            if isinstance(value, dict) and isinstance(obj.get(key), dict):
                obj[key].update(copy.deepcopy(value))
            else:
                obj[key] = copy.deepcopy(value)
        self._answer()
        if lost:
            raise ResponseLost("lost", in_flight=False)
        # What the client reads off the write envelope's revisions (fortios/revisions.py).
        return SimpleNamespace(concurrent_edit=self.revision_moved_on_write == self.writes)

    async def delete(self, path: str, mkey: Any, *, vdom: Any = None) -> None:
        self._write()
        if self.objects.pop((path, str(mkey)), None) is None:
            raise NotFound("missing", http_status=404, error_code=-3)

    async def monitor_get(self, path: str, *, vdom: Any = None, params: Any = None) -> Any:
        self.total += 1
        if path == "web-ui/state":
            return copy.deepcopy(self.web_ui_state)
        if path in self.monitor:
            return copy.deepcopy(self.monitor[path])
        raise NotFound("no such monitor path", http_status=404, error_code=-3)

    async def monitor_post(self, path: str, body: Any, *, vdom: Any = None, params: Any = None) -> Any:
        if path == "system/config-revision/save":  # a snapshot, not a configuration change
            self.total += 1
            self.revisions.append(str(body.get("comments")))
            return SimpleNamespace(results={"config_id": len(self.revisions)})
        lost = self._write()
        assert path == "vpn-certificate/local/import"
        assert "key_file_content" in body
        if not self._swallowed():
            self.objects[("vpn.certificate/local", body["certname"])] = {
                "name": body["certname"],
                "certificate": "",
            }
        self._answer()
        if lost:
            raise ResponseLost("lost", in_flight=False)

    async def log_get(self, path: str, *, vdom: Any = None, params: Any = None) -> str:
        self.total += 1
        return "\n".join(self.log)


class FakeProber:
    """Passes unless told which stages fail; logs the subject when the fake device 'logs'."""

    def __init__(
        self,
        gate: FakeFortiGate,
        *,
        fail_after: bool = False,
        fail_baseline: bool = False,
        logged_by: int | None = None,  # the policy id the log line names (None: no policyid field)
    ) -> None:
        self.gate = gate
        self.fail_after = fail_after
        self.fail_baseline = fail_baseline
        self.logged_by = logged_by
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
            policyid = "" if self.logged_by is None else f"policyid={self.logged_by} "
            self.gate.log.append(f'{policyid}subject="{subject}"')
        return ProbeResult(
            passed=not failing,
            mode="starttls",
            failure_class="F4 banner-timeout" if failing else None,
            subject=subject,
        )


def make_device(fallback: tuple[str, ...] = (), name: str = "fgt-1", port: int = 2525) -> Device:
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
        probe=ProbeSpec(host="127.0.0.1", port=port, transaction={"mail_from": "a@b.c", "rcpt_to": "d@e.f"}),
        fallback=fallback,
    )
    # One URL per device, as on a real fleet (the machine-wide device lock is keyed by it).
    return Device(name=name, url=f"https://127.0.0.1:{port}", token="x", mail_servers=(ms,))


def factory(gate: FakeFortiGate):
    @asynccontextmanager
    async def open_client(device: Device):
        yield gate

    return open_client


async def run_journaled(
    gate: FakeFortiGate,
    tmp_path: Path,
    *,
    device: Device | None = None,
    run_id: str = "run-1",
    **options: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    """One device transaction against ``gate`` with a real journal: the result and the journal's lines."""
    from fortiauto.journal import Journal, read_journal  # noqa: PLC0415 - only the transaction tests need it
    from fortiauto.transaction import DeviceTransaction, TransactionOptions  # noqa: PLC0415

    journal = Journal(tmp_path / "journal", run_id)
    result = await DeviceTransaction(
        device or make_device(),
        options=TransactionOptions(run_id=run_id, **options),
        client_factory=factory(gate),
        prober=FakeProber(gate),
        journal=journal,
    ).run()
    journal.close()
    return result, read_journal(journal.path)
