"""Fleet scheduling: change window, site lock, canary then batches, bounded concurrency, halt rule.

A fleet run is the per-device transaction (``engine.DeviceRun``) scheduled here. One device's
failure is a failed result, never an exception that stops the fleet; the halt rule decides
when the remaining devices are skipped instead of started. A stop request (Ctrl-C / SIGTERM)
starts no new device and lets in-flight ones finish or roll back.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fortiauto.engine import ClientFactory, DeviceRun, EngineOptions, Prober
from fortiauto.errors import InputError, LockHeld, WindowClosed
from fortiauto.events import Events
from fortiauto.journal import Journal
from fortiauto.probe.delivery import DeliveryCheck
from fortiauto.results import DeviceResult, RunResult, exit_code_for
from fortiauto.site import Device, Site

__all__ = ["FleetOptions", "SiteLock", "estimate_seconds", "new_run_id", "run_fleet", "select_devices"]

_REQUEST_BUDGET = 15  # requests of a first apply of one mail server (issue 4 budget)


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class FleetOptions:
    run_id: str
    journal_dir: Path
    check: bool = False
    probe: bool = True
    force: bool = False
    wait: bool = False
    limit: tuple[str, ...] = ()
    command: str = "apply"
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def select_devices(site: Site, limit: Sequence[str]) -> list[Device]:
    """Devices matching any ``--limit`` glob (all when none); an unmatched pattern is an input error."""
    if not limit:
        return list(site.devices)
    chosen = [d for d in site.devices if any(fnmatch.fnmatchcase(d.name, pat) for pat in limit)]
    for pattern in limit:
        if not any(fnmatch.fnmatchcase(d.name, pattern) for d in site.devices):
            raise InputError(f"--limit {pattern!r} matches no device in {site.path}")
    return chosen


def estimate_seconds(device: Device) -> float:
    """Worst case for one device: three probes (baseline, after, confirm) with retries, plus its requests."""
    # Each step of an attempt has its own timeout; a stalled attempt waits on about four of them
    # (connect/banner, EHLO, TLS, the final dot) before it is given up.
    probes = sum(
        3 * ms.probe.retries * (ms.probe.timeout * 4 + ms.probe.retry_delay) for ms in device.mail_servers
    )
    return probes + _REQUEST_BUDGET * len(device.mail_servers or [1]) * 0.5


def _max_failures(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return max(1, int(total * float(value[:-1]) / 100 + 0.999))
    return max(1, int(value))


class SiteLock:
    """One run per site at a time: a lock file with host, pid and start time; stale locks are taken over."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "fortiauto.lock"
        self._held = False

    def acquire(self, run_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id, "started": _iso_now()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and not self._stale(holder):
                    raise LockHeld(
                        f"another run holds the lock {self.path}: run {holder.get('run_id')} "
                        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
                    ) from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(info, handle)
            self._held = True
            return
        raise LockHeld(f"could not take the lock {self.path}")

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock now (host, pid, run_id, started), or None when free or stale."""
        holder = self._holder()
        return None if holder is None or self._stale(holder) else holder

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _stale(holder: dict[str, Any]) -> bool:
        if holder.get("host") != socket.gethostname():
            return False  # cannot tell for another host: treat as held
        try:
            os.kill(int(holder.get("pid", 0)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
        return False

    def __enter__(self) -> SiteLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


def check_window(site: Site, options: FleetOptions) -> str | None:
    """Raise WindowClosed outside the window (unless forced); returns a note for the report."""
    window = site.change_window
    if window is None or options.check:
        return None
    now = options.now()
    if now < window.start and options.wait:
        return None
    if window.start <= now < window.end:
        return None
    if options.force:
        return f"outside the change window {window.start.isoformat()} - {window.end.isoformat()} (--force)"
    raise WindowClosed(
        f"outside the change window {window.start.isoformat()} - {window.end.isoformat()} "
        f"(now {now.isoformat()}); --wait to wait for it, --force to override"
    )


async def _wait_for_window(site: Site, options: FleetOptions) -> None:
    window = site.change_window
    if window is None or options.check or not options.wait:
        return
    delay = (window.start - options.now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


def _skipped(device: Device, reason: str) -> DeviceResult:
    return DeviceResult(name=device.name, status="skipped", reason=reason)


async def run_fleet(
    site: Site,
    *,
    options: FleetOptions,
    client_factory: ClientFactory,
    prober: Prober,
    events: Events | None = None,
    stop: asyncio.Event | None = None,
    delivery: DeliveryCheck | None = None,
) -> RunResult:
    """Run the change on the selected devices: canary first, then batches; never raises for one device."""
    events = events or Events()
    stop = stop or asyncio.Event()
    started = options.now()
    devices = select_devices(site, options.limit)
    notes = [n for n in [check_window(site, options)] if n]
    await _wait_for_window(site, options)
    engine_options = EngineOptions(
        run_id=options.run_id,
        check=options.check,
        probe=options.probe,
        force=options.force,
        templates=site.templates,
    )
    results: dict[str, DeviceResult] = {}
    journal = None if options.check else Journal(options.journal_dir, options.run_id)
    lock = SiteLock(options.journal_dir)
    if not options.check:
        lock.acquire(options.run_id)
    try:
        if journal is not None:
            journal.record(
                "run",
                site=str(site.path.resolve()),
                command=options.command,
                devices=[d.name for d in devices],
            )
        rollout = site.rollout
        canary, rest = devices[: rollout.canary], devices[rollout.canary :]
        allowed_failures = _max_failures(rollout.max_failures, len(devices))
        halted: str | None = None
        failures = 0

        async def one(device: Device) -> DeviceResult:
            run = DeviceRun(
                device,
                options=engine_options,
                client_factory=client_factory,
                prober=prober,
                journal=journal,
                events=events,
                delivery=delivery,
            )
            return await run.run()

        groups = [canary] + [
            rest[i : i + rollout.batch_size] for i in range(0, len(rest), rollout.batch_size)
        ]
        for index, group in enumerate(g for g in groups if g):
            if halted or stop.is_set():
                reason = halted or "interrupted: not started"
                results.update({d.name: _skipped(d, reason) for d in group})
                continue
            batch = await _run_batch(
                group, one, rollout.concurrency, stop, site=site, options=options, notes=notes
            )
            results.update({r.name: r for r in batch})
            failures += sum(1 for r in batch if r.failed)
            if index == 0 and canary and any(r.failed for r in batch):
                halted = "halted: the canary failed"
            elif failures >= allowed_failures and not options.check:
                halted = f"halted: {failures} device(s) failed (max_failures {rollout.max_failures})"
        if halted:
            notes.append(halted)
        not_started = sum(1 for r in results.values() if r.reason.startswith("interrupted"))
        if not_started:
            notes.append(f"interrupted: {not_started} device(s) not started or rolled back")
    finally:
        lock.release()
        if journal is not None:
            journal.close()
    ordered = tuple(results[d.name] for d in devices)
    return RunResult(
        run_id=options.run_id,
        started=started,
        finished=options.now(),
        devices=ordered,
        exit_code=_interrupted_exit(exit_code_for(ordered), stop),
        command=options.command,
        notes=tuple(notes),
        window=_window_text(site),
    )


def _interrupted_exit(code: int, stop: asyncio.Event) -> int:
    """An interrupted run refused to finish: never report it as "every device compliant"."""
    return 5 if stop.is_set() and code == 0 else code


def _window_text(site: Site) -> str | None:
    window = site.change_window
    return None if window is None else f"{window.start.isoformat()} - {window.end.isoformat()}"


async def _run_batch(
    group: list[Device],
    one: Callable[[Device], Any],
    concurrency: int,
    stop: asyncio.Event,
    *,
    site: Site,
    options: FleetOptions,
    notes: list[str],
) -> list[DeviceResult]:
    gate = asyncio.Semaphore(concurrency)
    window = site.change_window

    async def guarded(device: Device) -> DeviceResult:
        try:
            await gate.acquire()
        except asyncio.CancelledError:  # a second Ctrl-C while waiting for a slot: never started
            return _skipped(device, "interrupted: not started")
        try:
            if stop.is_set():
                return _skipped(device, "interrupted: not started")
            if window is not None and not options.check:
                left = window.end - options.now()
                if left < timedelta(seconds=estimate_seconds(device)):
                    if not options.force:
                        return _skipped(
                            device, "not started: its estimated duration does not fit the change window"
                        )
                    notes.append(f"{device.name}: started though it may not finish in the window (--force)")
            result: DeviceResult = await one(device)
            return result
        finally:
            gate.release()

    # Named so that a second Ctrl-C (cli._run) can cancel exactly the in-flight devices.
    tasks = [asyncio.create_task(guarded(d), name=f"fortiauto-device:{d.name}") for d in group]
    return list(await asyncio.gather(*tasks))
