"""``fortiauto rollback``: undo a run from its journal alone, device by device, concurrently.

The journal names the site file it ran from (for the devices' URLs and credentials, which the
journal never holds) and every write with its pre-image. Undo lines go into the same journal,
so a second rollback finds nothing left and changes nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from fortiauto.engine import ClientFactory, rollback_device
from fortiauto.errors import InputError
from fortiauto.events import Events
from fortiauto.journal import Journal, latest_run_id, pending_undos, read_journal
from fortiauto.results import DeviceResult, RunResult, exit_code_for
from fortiauto.rollout import SiteLock
from fortiauto.site.loader import load_site

__all__ = ["rollback_run"]


async def rollback_run(
    directory: Path,
    *,
    run_id: str | None = None,
    client_factory: ClientFactory | None = None,
    events: Events | None = None,
    concurrency: int = 10,
) -> RunResult:
    """Undo every device of run ``run_id`` (the latest when None) that still has writes to undo."""
    started = datetime.now(UTC)
    run_id = run_id or latest_run_id(directory)
    entries = read_journal(directory / f"{run_id}.jsonl")
    header = next((e for e in entries if e.get("type") == "run"), None)
    if header is None or "site" not in header:
        raise InputError(f"journal {run_id} has no run header naming its site file")
    site = load_site(Path(header["site"]))
    if client_factory is None:
        from fortiauto.fortios.connect import client_for  # noqa: PLC0415

        client_factory = client_for
    events = events or Events()
    pending = pending_undos(entries)
    gate = asyncio.Semaphore(concurrency)
    factory = client_factory

    async def one(name: str, journal: Journal) -> DeviceResult:
        async with gate:
            try:
                device = site.device(name)
            except KeyError:
                return DeviceResult(
                    name=name, status="failed", reason=f"device {name} is no longer in {site.path}"
                )
            return await rollback_device(
                device, pending.get(name, []), client_factory=factory, journal=journal, events=events
            )

    names = list(dict.fromkeys(header.get("devices", []) + list(pending)))
    with SiteLock(directory) as lock, Journal(directory, run_id) as journal:
        lock.acquire(f"rollback-{run_id}")
        journal.record("rollback", devices=names)
        results = tuple(await asyncio.gather(*(one(n, journal) for n in names)))
    return RunResult(
        run_id=run_id,
        started=started,
        finished=datetime.now(UTC),
        devices=results,
        exit_code=exit_code_for([r for r in results if r.status != "rolled_back"]),
        command="rollback",
        notes=tuple(f"warning: {w}" for w in site.warnings),
    )
