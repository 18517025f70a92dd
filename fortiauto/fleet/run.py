"""A fleet run: the device transaction scheduled over the site's devices, and its undo.

``run_fleet`` checks the change window, takes the journal directory's lock and each device's
machine-wide lock, and runs ``transaction.DeviceTransaction`` per device: canary first, then
batches, bounded concurrency, the halt rule (``schedule.py``). A stop request (Ctrl-C, SIGTERM,
SIGHUP) starts no new device and lets in-flight ones finish or roll back. ``rollback_run``
undoes a run from its journal. Both derive the exit code from the device results with
``outcome.fleet_exit_code``; one device's failure is a result, never an exception.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from fortiauto.errors import FortiautoError, InputError, LockHeld
from fortiauto.events import Events
from fortiauto.fleet import fallback_memory
from fortiauto.fleet.lock import device_lock, site_lock
from fortiauto.fleet.schedule import estimate_seconds, halt_reason, schedule, select_devices
from fortiauto.fleet.window import check_window, fits_window, wait_for_window, window_text
from fortiauto.journal import (
    Journal,
    JournalEntry,
    latest_run_id,
    pending_undos,
    read_journal,
    unfinished_runs,
)
from fortiauto.probe.delivery import DeliveryCheck
from fortiauto.results import DeviceResult, Plan, RequestCounts, RunResult
from fortiauto.resume import Resumable, retirement_left
from fortiauto.site import Device, Site
from fortiauto.site.models import FortiManagerSpec
from fortiauto.transaction import (
    ClientFactory,
    DeviceApi,
    DeviceTransaction,
    Ending,
    Prober,
    TransactionOptions,
    UndoReport,
    conclude,
    fleet_exit_code,
    undo_entries,
)
from fortiauto.transaction.device import Installs
from fortiauto.transaction.planning import Planner

__all__ = ["FleetOptions", "new_run_id", "rollback_device", "rollback_run", "run_fleet"]

_NOT_STARTED = "interrupted: not started"


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class FleetOptions:
    run_id: str
    journal_dir: Path
    check: bool = False
    probe: bool = True
    force_baseline: bool = False  # change devices whose baseline probe fails
    ignore_window: bool = False
    wait: bool = False
    limit: tuple[str, ...] = ()
    command: str = "apply"
    retry_full: bool = False  # try the full fix on devices remembered on a fallback rung
    lock_dir: Path | None = None  # where the machine-wide device locks live (tests)
    # apply --plan: (device, fresh plan) -> why it is not the saved plan, or None (planfile.py)
    saved_plan: Callable[[str, Plan], str | None] | None = None
    planner: Planner | None = None  # fortiauto remove: its plan on the same transaction (remove.py)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def device_header(device: Device, fortimanager: FortiManagerSpec | None = None) -> dict[str, Any]:
    """What the journal keeps to reach a device again without the site file (never a credential).

    A device routed through FortiManager also names where it lives there (url, ADOM, package,
    device name and vdom): that is where its journaled objects are.
    """
    header = {
        "name": device.name,
        "url": device.url,
        "vdom": device.vdom,
        "verify_tls": str(device.verify_tls),
        "timeout": device.timeout,
        "username": device.username,
        "credential": getattr(device, "credential_ref", None),
    }
    if device.fortimanager is not None and fortimanager is not None:
        from fortiauto.fortimanager.connect import route_for  # noqa: PLC0415 - light, no client

        header["fortimanager"] = route_for(device, fortimanager).to_json()
    return header


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
    writing = not options.check
    notes = [
        n
        for n in [check_window(site.change_window, started, wait=options.wait, ignore=options.ignore_window)]
        if writing and n
    ]
    if writing and options.wait:
        await wait_for_window(site.change_window, options.now)
    lock = site_lock(options.journal_dir)
    if writing:
        lock.acquire(options.run_id, command=options.command)
    journal: Journal | None = None
    try:
        if writing:
            journal = Journal(options.journal_dir, options.run_id)
            header = {"site": str(site.path.resolve()), "command": options.command}
            journal.record(
                "run",
                devices=[d.name for d in devices],
                reach=[device_header(d, site.fortimanager) for d in devices],
                **header,
            )
        unfinished = unfinished_runs(options.journal_dir, exclude=options.run_id)
        runner = _Runner(site, options, client_factory, prober, events, journal, delivery, notes, unfinished)
        results = await runner.run_groups(devices, stop)
    finally:
        lock.release()
        if journal is not None:
            journal.close()
    ordered = tuple(results[d.name] for d in devices)
    not_started = sum(1 for r in ordered if r.ending in (Ending.NOT_STARTED, Ending.INTERRUPTED))
    if not_started:
        notes.append(f"interrupted or halted: {not_started} device(s) not started or rolled back")
    return RunResult(
        run_id=options.run_id,
        started=started,
        finished=options.now(),
        devices=ordered,
        exit_code=fleet_exit_code(ordered),
        command=options.command,
        notes=tuple(notes),
        window=window_text(site.change_window),
        journal_dir=None if options.check else str(options.journal_dir.resolve()),
    )


@dataclass
class _Runner:
    site: Site
    options: FleetOptions
    client_factory: ClientFactory
    prober: Prober
    events: Events
    journal: Journal | None
    delivery: DeliveryCheck | None
    notes: list[str]
    unfinished: dict[str, list[str]]

    async def run_groups(self, devices: Sequence[Device], stop: asyncio.Event) -> dict[str, DeviceResult]:
        plan = schedule(devices, self.site.rollout)
        results: dict[str, DeviceResult] = {}
        halted: str | None = None
        for index, group in enumerate(plan.groups):
            if halted or stop.is_set():
                reason = halted or _NOT_STARTED
                results.update({d.name: conclude(d.name, Ending.NOT_STARTED, reason) for d in group})
                continue
            batch = await self._batch(group, stop)
            results.update({r.name: r for r in batch})
            if not self.options.check:
                halted = halt_reason(plan, index, list(results.values()))
        if halted:
            self.notes.append(halted)
        return results

    async def _batch(self, group: Sequence[Device], stop: asyncio.Event) -> list[DeviceResult]:
        gate = asyncio.Semaphore(self.site.rollout.concurrency)

        async def guarded(device: Device) -> DeviceResult:
            try:
                await gate.acquire()
            except asyncio.CancelledError:  # a second Ctrl-C while waiting for a slot: never started
                return conclude(device.name, Ending.NOT_STARTED, _NOT_STARTED)
            try:
                return await self._one(device, stop)
            finally:
                gate.release()

        # Named so that a second Ctrl-C (cli) can cancel exactly the in-flight devices.
        tasks = [asyncio.create_task(guarded(d), name=f"fortiauto-device:{d.name}") for d in group]
        return list(await asyncio.gather(*tasks))

    async def _one(self, device: Device, stop: asyncio.Event) -> DeviceResult:
        if stop.is_set():
            return conclude(device.name, Ending.NOT_STARTED, _NOT_STARTED)
        writing = not self.options.check
        if writing and not fits_window(self.site.change_window, self.options.now(), estimate_seconds(device)):
            if not self.options.ignore_window:
                return conclude(
                    device.name,
                    Ending.NOT_STARTED,
                    "not started: its estimated duration does not fit the change window",
                )
            self.notes.append(
                f"{device.name}: started though it may not finish in the window (--ignore-window)"
            )
        resumable = self._resumable(device)
        unfinished = self._unfinished(device)
        if unfinished and writing and resumable is None:
            return conclude(device.name, Ending.REFUSED, f"refused: {unfinished}")
        lock = device_lock(device.url, device.name, lock_dir=self.options.lock_dir)
        if writing:
            try:
                lock.acquire(self.options.run_id, device=device.name)
            except LockHeld as exc:
                return conclude(device.name, Ending.REFUSED, f"refused: {exc}", error=exc)
        try:
            result = await self._transaction(device, resumable).run()
        finally:
            lock.release()
        if writing:
            fallback_memory.update_from(self.options.journal_dir, result)
            if resumable is not None and not result.failed:
                self._mark_resumed(device, resumable)
        return result

    def _resumable(self, device: Device) -> Resumable | None:
        """The unfinished runs on this device, when all that is left of them is a retirement to finish."""
        runs = self.unfinished.get(device.name) or []
        found = [
            retirement_left(r, read_journal(self.options.journal_dir / f"{r}.jsonl"), device.name)
            for r in runs
        ]
        resumable = [f for f in found if f is not None]
        if not runs or len(resumable) != len(runs):
            return None
        deletes = tuple(c for r in resumable for c in r.deletes)
        return Resumable(resumable[-1].run_id, device.name, deletes)

    def _mark_resumed(self, device: Device, resumable: Resumable) -> None:
        """The resumed runs are finished for this device now: they no longer block it."""
        for run_id in self.unfinished.get(device.name) or []:
            try:
                with Journal(self.options.journal_dir, run_id) as old:
                    old.record("end", device=device.name, ending="resumed", resumed_by=self.options.run_id)
            except FortiautoError:
                continue  # the next run will find it unfinished and resume again, writing nothing

    def _unfinished(self, device: Device) -> str | None:
        runs = self.unfinished.get(device.name)
        if not runs:
            return None
        where = f"--journal-dir {self.options.journal_dir}"
        return (
            f"run {runs[-1]} wrote to {device.name} and never finished (killed or crashed); nothing more "
            f"is changed on it until that run is undone: fortiauto rollback --run {runs[-1]} {where}"
        )

    def _transaction(self, device: Device, resumable: Resumable | None = None) -> DeviceTransaction:
        notes = [resumable.note] if resumable is not None else [n for n in [self._unfinished(device)] if n]
        remembered = (
            None if self.options.retry_full else fallback_memory.recall(self.options.journal_dir, device.name)
        )
        return DeviceTransaction(
            device,
            options=TransactionOptions(
                run_id=self.options.run_id,
                check=self.options.check,
                probe=self.options.probe,
                force_baseline=self.options.force_baseline,
                templates=self.site.templates,
                notes=tuple(notes),
                start_rung=remembered.rung if remembered else None,
                start_note=remembered.note() if remembered else "",
                saved_plan=None
                if self.options.saved_plan is None
                else partial(self.options.saved_plan, device.name),
                planner=self.options.planner,
                finish_retirement=resumable.deletes if resumable is not None else (),
            ),
            client_factory=self.client_factory,
            prober=self.prober,
            journal=self.journal,
            events=self.events,
            delivery=self.delivery,
        )


async def rollback_device(
    device: Device,
    entries: Sequence[JournalEntry],
    *,
    client_factory: ClientFactory,
    journal: Journal | None = None,
    events: Events | None = None,
    force: bool = False,
) -> DeviceResult:
    """Undo a device's pending journal entries (``fortiauto rollback``, the Ansible module); idempotent."""
    events = events or Events()
    events.device_started(device.name)

    def record(kind: str, **fields: Any) -> None:
        if journal is not None:
            journal.record(kind, device=device.name, **fields)

    counts = RequestCounts()
    changes = tuple(e.change for e in entries)
    if not entries:
        result = conclude(device.name, Ending.NOTHING_TO_UNDO, "nothing left to undo")
        events.device_finished(result)
        return result
    try:
        async with client_factory(device) as api:
            try:
                report = await _installed(api, await undo_entries(api, entries, record, force=force))
            finally:
                counts = api.counts
    except Exception as exc:
        result = conclude(device.name, Ending.UNKNOWN, f"{exc}; nothing more was undone", changes=changes)
    else:
        if report.complete:
            result = conclude(device.name, Ending.RESTORED, "restored from the journal", changes=changes)
        else:
            hint = " (--force restores objects changed since)" if report.changed_since else ""
            result = conclude(
                device.name,
                Ending.LEFT_OVER,
                f"rollback incomplete, needs a human{hint}: {report.left[0]}",
                left_over=report.left,
                changes=changes,
            )
    result = replace(result, requests=counts)
    events.device_finished(result)
    return result


async def _installed(api: DeviceApi, report: UndoReport) -> UndoReport:
    """Push an undo staged in FortiManager to the unit (``Installs``); a failed install is left over."""
    if not isinstance(api, Installs):
        return report
    try:
        await api.install("undo")
    except FortiautoError as exc:
        return UndoReport(
            (*report.left, f"the undo was not installed on the unit: {exc}"), report.changed_since
        )
    return report


def _rollback_site(
    header: dict[str, Any], needed: set[str], load_site: Callable[[Path], Site] | None
) -> Site:
    """The devices a rollback must reach: from the run's site file when it still has them, else
    from the journal's own record of how to reach each (URL, vdom, TLS, the credential's reference)."""
    from fortiauto.site import load_site as default_load  # noqa: PLC0415

    site_path = Path(str(header.get("site", "<journal>")))
    try:
        site: Site | None = (load_site or default_load)(site_path)
    except InputError:  # gone, changed beyond loading, or a credential of another device unset
        site = None
    known = {d.name for d in site.devices} if site is not None else set()
    reach = [r for r in header.get("reach", []) if isinstance(r, dict) and r.get("name") in needed - known]
    if not reach:
        if site is None:
            raise InputError(
                f"cannot load {site_path}, and the journal does not say how to reach its devices"
            )
        return site
    extra = site_from_journal([_device_data(r) for r in reach], site_path)
    return extra if site is None else site.model_copy(update={"devices": site.devices + extra.devices})


def _device_data(entry: dict[str, Any]) -> dict[str, Any]:
    verify = {"True": True, "False": False}.get(str(entry.get("verify_tls")), entry.get("verify_tls"))
    data = {k: entry[k] for k in ("name", "url", "vdom", "timeout") if entry.get(k) is not None}
    data["verify_tls"] = verify
    credential = entry.get("credential")
    if entry.get("username"):
        data.update(username=entry["username"], password=credential)
    elif credential:
        data["token"] = credential
    return data


def site_from_journal(devices: list[dict[str, Any]], site_path: Path) -> Site:
    """A site of just these devices, their credentials resolved from their references now."""
    from fortiauto.site import load_site_data  # noqa: PLC0415

    source = f"the journal of {site_path}"
    return load_site_data({"version": 1, "devices": devices}, base_dir=site_path.parent, source=source)


async def rollback_run(
    directory: Path,
    *,
    run_id: str | None = None,
    client_factory: ClientFactory | None = None,
    events: Events | None = None,
    concurrency: int = 10,
    force: bool = False,
    load_site: Callable[[Path], Site] | None = None,
) -> RunResult:
    """Undo every device of run ``run_id`` (``--last``: the newest run that wrote) that has writes left."""
    started = datetime.now(UTC)
    run_id = run_id or latest_run_id(directory)
    entries = read_journal(directory / f"{run_id}.jsonl")
    header = next((e for e in entries if e.get("type") == "run"), None)
    if header is None or ("site" not in header and not header.get("reach")):
        raise InputError(f"journal {run_id} has no run header saying how to reach its devices")
    pending = pending_undos(entries)
    site = _rollback_site(header, set(pending), load_site)
    connections = None
    from fortiauto.fortimanager.connect import connect_for, route_change  # noqa: PLC0415

    if client_factory is None:
        # Direct units get their REST client; units routed through FortiManager share one session.
        client_factory = connections = connect_for(site)
    events = events or Events()
    gate = asyncio.Semaphore(concurrency)
    factory = client_factory

    async def one(name: str, journal: Journal) -> DeviceResult:
        async with gate:
            try:
                device = site.device(name)
            except KeyError:
                why = f"device {name} is not in {site.path}, and the journal does not say how to reach it"
                return conclude(name, Ending.UNKNOWN, why)
            moved = route_change(entries, device, site.fortimanager) if pending.get(name) else None
            if moved:
                why = f"refused: {moved}; nothing was undone (it needs the site file's route the run used)"
                return conclude(name, Ending.REFUSED, why)
            with device_lock(device.url, device.name) as lock:
                try:
                    lock.acquire(f"rollback-{run_id}", device=name)
                except LockHeld as exc:
                    return conclude(name, Ending.REFUSED, f"refused: {exc}", error=exc)
                return await rollback_device(
                    device,
                    pending.get(name, []),
                    client_factory=factory,
                    journal=journal,
                    events=events,
                    force=force,
                )

    names = list(dict.fromkeys(header.get("devices", []) + list(pending)))
    try:
        with site_lock(directory) as lock, Journal(directory, run_id) as journal:
            lock.acquire(f"rollback-{run_id}", command="rollback")
            journal.record("rollback", devices=names)
            results = tuple(await asyncio.gather(*(one(n, journal) for n in names)))
    finally:
        if connections is not None:
            await connections.aclose()
    notes = [f"warning: {w}" for w in site.warnings]
    if not any(pending.values()):
        notes.append(f"run {run_id} has nothing left to undo (older runs: fortiauto rollback --run ID)")
    return RunResult(
        run_id=run_id,
        started=started,
        finished=datetime.now(UTC),
        devices=results,
        exit_code=fleet_exit_code(results),
        command="rollback",
        notes=tuple(notes),
        journal_dir=str(directory.resolve()),
    )
