"""Chaos helpers: the fortiauto CLI as a subprocess, site variants, fault triggers and the invariant.

The invariant every chaos test holds fortiauto to: after any fault, a device ends either
byte-identical to its pre-change state (the lab's canonical ``/__lab__/state`` dump) or fully
applied (a fresh plan has nothing left to change) and probe-green (``fortiauto probe``). Nothing
else. What fortiauto *said* must match as well: ``rolled_back`` means pristine, ``changed`` means
applied; a device it could not restore (``failed``, exit 4) is handed to ``fortiauto rollback
--last`` once the fault is cleared, and must then be pristine.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from fortiauto.fleet import FleetOptions, new_run_id, rollback_run, run_fleet
from fortiauto.fortios.connect import client_for
from fortiauto.probe import run_probe
from fortiauto.site import Device
from fortiauto.site.loader import load_site
from tests.integration.engine.labkit import Control

# A site's probe kept short so that failing data-plane cases stay quick (the lab's own uses 5 s).
FAST_PROBE = {"timeout": 1.0, "retries": 1, "retry_delay": 0.1}
CLI_TIMEOUT = 90  # seconds; any fortiauto command that takes longer is itself a failure
_WRITES = frozenset({"POST", "PUT", "DELETE"})


@dataclass(frozen=True)
class Cli:
    """A finished ``fortiauto`` subprocess."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        head = f"fortiauto {' '.join(self.args)} -> {self.code}"
        return f"{head}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def cli_env(journal_dir: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORTIAUTO_")}
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    if journal_dir is not None:
        env["FORTIAUTO_JOURNAL_DIR"] = str(journal_dir)
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fortiauto", *args]


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = CLI_TIMEOUT) -> Cli:
    done = subprocess.run(
        cli_command(*args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return Cli(tuple(args), done.returncode, done.stdout, done.stderr)


def variant(
    site: Path,
    name: str,
    *,
    devices: Sequence[str] | None = None,
    timeout: float | None = None,
    probe: dict[str, Any] | None = None,
    fallback: list[str] | None = None,
    rollout: dict[str, Any] | None = None,
    urls: dict[str, str] | None = None,
    **defaults: Any,
) -> Path:
    """A copy of the lab's site file beside it (relative token/cert paths keep working).

    ``devices`` keeps only those; ``timeout`` and ``defaults`` go into ``defaults``; ``probe``
    updates every mail server's probe; ``fallback`` replaces the rungs (``[]`` removes them);
    ``urls`` points devices elsewhere (a proxy in front of them).
    """
    yaml = YAML()
    data = yaml.load(site.read_text())
    if devices is not None:
        data["devices"] = [d for d in data["devices"] if d["name"] in devices]
    if timeout is not None:
        data["defaults"]["timeout"] = timeout
    data["defaults"].update(defaults)
    if rollout is not None:
        data["rollout"] = rollout
    for device in data["devices"]:
        device["url"] = (urls or {}).get(device["name"], device["url"])
        for server in device["mail_servers"]:
            server["probe"].update(probe if probe is not None else FAST_PROBE)
            if fallback is not None:
                server.pop("fallback", None)
                if fallback:
                    server["fallback"] = fallback
    out = site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def write_request_numbers(log: list[dict[str, Any]]) -> list[int]:
    """1-based positions of the configuration writes in a lab request log (control requests are not
    logged; saving a configuration revision before the first write changes no configuration)."""
    return [
        i
        for i, entry in enumerate(log, start=1)
        if entry["method"] in _WRITES and "config-revision" not in str(entry.get("path", ""))
    ]


def wait_for_requests(control: Control, total: int, *, deadline: float = 10.0) -> None:
    """Wait until the lab has finished ``total`` API requests (answered or not).

    A request the client gave up on still runs to completion on the device, as on a real
    FortiGate: a rollback must not race a slow write that is still landing.
    """
    end = time.monotonic() + deadline
    while control.requests()["total"] < total and time.monotonic() < end:
        time.sleep(0.05)


class TripAtWrite:
    """A client factory (the engine's one client seam) that calls ``arm`` right before write ``k``.

    The lab counts ``http500-on-write`` and ``reset-on-write`` itself; latency it applies to every
    request, so only the client side knows exactly when write ``k`` is about to leave. ``disarm``
    (optional) runs as soon as that write has returned or failed: a fault that lasted one request.
    """

    def __init__(
        self, *, write: int, arm: Callable[[], None], disarm: Callable[[], None] | None = None
    ) -> None:
        self.write = write
        self.arm = arm
        self.disarm = disarm
        self.sent = 0  # requests that may have reached the device, summed over every client

    def __call__(self, device: Device) -> Any:
        return self._open(device)

    @asynccontextmanager
    async def _open(self, device: Device) -> AsyncIterator[Any]:
        async with client_for(device) as api:
            try:
                yield _Tripwire(api, self)
            finally:
                self.sent += api.counts.total


def latency_at_write(control: Control, write: int, latency_ms: int) -> TripAtWrite:
    return TripAtWrite(write=write, arm=lambda: control.faults(f"api-latency={latency_ms}"))


class _Tripwire:
    """Delegates to the real client; counts writes and trips the fault before the k-th."""

    def __init__(self, api: Any, trip: TripAtWrite) -> None:
        self._api = api
        self._trip = trip
        self._writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._writes += 1
        armed = self._writes == self._trip.write
        if armed:
            self._trip.arm()
        try:
            return await getattr(self._api, method)(*args, **kwargs)
        finally:
            if armed and self._trip.disarm is not None:
                self._trip.disarm()

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write("create", *args, **kwargs)

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write("update", *args, **kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write("delete", *args, **kwargs)

    async def monitor_post(self, *args: Any, **kwargs: Any) -> Any:
        return await self._write("monitor_post", *args, **kwargs)


# --- the invariant ------------------------------------------------------------------------------


class CliOps:
    """The invariant's two checks as a user runs them: ``fortiauto plan``/``probe``/``rollback`` processes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def applied_and_green(self, site: Path, names: Sequence[str]) -> dict[str, str]:
        """Per device: "" when a fresh plan is empty and ``fortiauto probe`` passes, else why not."""
        problems = dict.fromkeys(names, "")
        plan = run_cli("plan", str(site), "--output", "json", *[f"--limit={n}" for n in names], env=self.env)
        assert plan.code in (0, 4), plan
        for device in plan.json()["devices"]:
            if device["name"] in problems and (device["changes"] or device["status"] != "unchanged"):
                problems[device["name"]] = f"plan not empty: {device['status']} {device['reason']}"
        probe = run_cli("probe", str(site), "--output", "json", env=self.env)
        assert probe.code in (0, 3), probe
        for entry in probe.json():
            if entry["device"] in problems and not entry["probe"]["passed"]:
                problems[entry["device"]] += f" probe failed: {entry['probe'].get('failure_class')}"
        return problems

    def rollback_last(self) -> None:
        undo = run_cli("rollback", "--yes", "--last", env=self.env)
        assert undo.code == 0, undo


class InProcessOps:
    """The same checks through the library calls the CLI makes (no process start: for many runs)."""

    def __init__(self, journal_dir: Path) -> None:
        self.journal_dir = journal_dir

    def applied_and_green(self, site: Path, names: Sequence[str]) -> dict[str, str]:
        return asyncio.run(self._applied_and_green(site, names))

    async def _applied_and_green(self, site_path: Path, names: Sequence[str]) -> dict[str, str]:
        site = load_site(site_path)
        options = FleetOptions(
            run_id=new_run_id(), journal_dir=self.journal_dir, check=True, probe=False, limit=tuple(names)
        )
        plan = await run_fleet(site, options=options, client_factory=client_for, prober=run_probe)
        problems = {
            d.name: "" if d.status == "unchanged" else f"plan not empty: {d.status} {d.reason}"
            for d in plan.devices
        }
        for device in (d for d in site.devices if d.name in problems):
            for ms in device.mail_servers:
                probe = await run_probe(ms.probe, pin_sha256=ms.certificate.fingerprint_sha256 or None)
                if not probe.passed:
                    problems[device.name] += f" probe failed: {probe.failure_class}"
        return problems

    def rollback_last(self) -> None:
        undo = asyncio.run(rollback_run(self.journal_dir))
        assert undo.exit_code == 0, [(d.name, d.status, d.reason) for d in undo.devices]


def settle(
    site: Path,
    controls: dict[str, Control],
    pristine: dict[str, bytes],
    reported: Mapping[str, str],
    ops: CliOps | InProcessOps,
    results: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """Hold a faulted run to the invariant; returns each device's end state (pristine | applied).

    With ``results`` (each device's JSON), also what the report claims: a ``failed`` device that
    is not pristine lists what is left, and nothing that was not read back is called verified.

    ``reported`` is the status fortiauto gave each device of the run. ``rolled_back`` and
    ``skipped`` must be pristine as reported; ``changed`` and any other device that is not
    pristine and not ``failed`` must be applied and green (checked with faults cleared). When a
    device is ``failed`` (fortiauto could not restore it), its faults are cleared and ``fortiauto
    rollback --last`` runs: that undoes the whole run, so every device must then be pristine.
    """
    ends: dict[str, str] = {}
    for name, status in reported.items():
        ends[name] = "pristine" if controls[name].state() == pristine[name] else "applied"
        if results is not None:
            _honest(name, status, ends[name], results[name])
        if status in ("rolled_back", "skipped"):
            assert ends[name] == "pristine", f"{name}: reported {status} but it is not pristine"
        if status in ("changed", "unchanged"):
            assert ends[name] == "applied", f"{name}: reported {status} but it is pristine"
        controls[name].faults({})
    # A failed device that is pristine had nothing written (e.g. its token expired first).
    failed = [n for n, status in reported.items() if status == "failed" and ends[n] != "pristine"]
    claimed = [n for n, end in ends.items() if end == "applied" and n not in failed]
    if claimed:
        problems = {n: p for n, p in ops.applied_and_green(site, claimed).items() if p}
        assert not problems, f"neither pristine nor applied and green: {problems}"
    if failed:
        ops.rollback_last()
        for name in reported:
            assert controls[name].state() == pristine[name], f"{name}: not pristine after rollback --last"
        ends = dict.fromkeys(reported, "pristine")
    return ends


def _honest(name: str, status: str, end: str, result: Mapping[str, Any]) -> None:
    """What the report says about a device matches what its configuration is."""
    reason = str(result.get("reason", ""))
    if status == "failed":
        assert "pre-change state verified" not in reason, f"{name}: failed, yet 'verified': {reason}"
        if end != "pristine":
            assert result.get("left_over"), f"{name}: failed and changed, but lists nothing left: {reason}"
    if "pre-change state verified" in reason:
        assert end == "pristine", f"{name}: says verified in its pre-change state, but is not: {reason}"
