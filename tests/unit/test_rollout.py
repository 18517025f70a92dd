"""Fleet scheduling against fake FortiGates: canary, batches, concurrency, halt rule, window, lock, stop."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import os
import socket
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from fortiauto.errors import InputError, LockHeld, WindowClosed
from fortiauto.fleet import FleetOptions, device_lock, run_fleet, site_lock
from fortiauto.site import ChangeWindow, Rollout, Site
from tests.unit.fakes import FakeFortiGate, FakeProber, make_device


class Fleet:
    """N fake FortiGates; the prober finds a device's gate by its probe port."""

    def __init__(self, n: int, failing: set[int] = frozenset()) -> None:
        self.devices = [make_device(name=f"fgt-{i:03d}", port=3000 + i) for i in range(1, n + 1)]
        self.gates = {d.name: FakeFortiGate() for d in self.devices}
        self.probers = {
            3000 + i: FakeProber(self.gates[f"fgt-{i:03d}"], fail_after=i in failing) for i in range(1, n + 1)
        }
        self.in_flight = 0
        self.max_in_flight = 0
        self.events: list[tuple[str, str]] = []

    def factory(self):
        @asynccontextmanager
        async def open_client(device):
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.events.append(("start", device.name))
            try:
                await asyncio.sleep(0.01)  # let the scheduler interleave devices
                yield self.gates[device.name]
            finally:
                self.in_flight -= 1
                self.events.append(("end", device.name))

        return open_client

    async def prober(self, spec, **kwargs):
        return await self.probers[spec.port](spec, **kwargs)

    def site(self, tmp_path, **kwargs) -> Site:
        return Site(version=1, devices=tuple(self.devices), path=tmp_path / "site.yml", **kwargs)


def options(tmp_path, **kwargs) -> FleetOptions:
    return FleetOptions(
        run_id="run-1", journal_dir=tmp_path / "journal", lock_dir=tmp_path / "locks", **kwargs
    )


async def test_failing_canary_halts_with_everything_else_untouched(tmp_path):
    fleet = Fleet(6, failing={1})
    site = fleet.site(tmp_path, rollout=Rollout(canary=1, batch_size=2, concurrency=2, max_failures=3))
    run = await run_fleet(
        site, options=options(tmp_path), client_factory=fleet.factory(), prober=fleet.prober
    )
    statuses = [d.status for d in run.devices]
    assert statuses == ["rolled_back"] + ["skipped"] * 5
    assert all(d.reason == "halted: the canary failed" for d in run.devices[1:])
    assert all(fleet.gates[f"fgt-{i:03d}"].total == 0 for i in range(2, 7))
    assert run.exit_code == 3


async def test_batches_run_one_after_another_within_the_concurrency_bound(tmp_path):
    fleet = Fleet(7)
    site = fleet.site(tmp_path, rollout=Rollout(canary=1, batch_size=3, concurrency=2, max_failures=1))
    run = await run_fleet(
        site, options=options(tmp_path), client_factory=fleet.factory(), prober=fleet.prober
    )
    assert {d.status for d in run.devices} == {"changed"}
    assert fleet.max_in_flight == 2
    order = fleet.events
    # a batch starts only after every device of the previous batch has ended
    batches = [["fgt-001"], ["fgt-002", "fgt-003", "fgt-004"], ["fgt-005", "fgt-006", "fgt-007"]]
    for earlier, later in itertools.pairwise(batches):
        last_end = max(order.index(("end", n)) for n in earlier)
        first_start = min(order.index(("start", n)) for n in later)
        assert last_end < first_start
    assert run.exit_code == 0


async def test_max_failures_halts_the_remaining_batches(tmp_path):
    fleet = Fleet(7, failing={2, 3})
    site = fleet.site(tmp_path, rollout=Rollout(canary=1, batch_size=3, concurrency=3, max_failures=2))
    run = await run_fleet(
        site, options=options(tmp_path), client_factory=fleet.factory(), prober=fleet.prober
    )
    by_name = {d.name: d for d in run.devices}
    assert by_name["fgt-002"].status == "rolled_back"
    assert by_name["fgt-003"].status == "rolled_back"
    assert by_name["fgt-004"].status == "changed"
    assert [by_name[f"fgt-{i:03d}"].status for i in (5, 6, 7)] == ["skipped"] * 3
    assert "max_failures 2" in by_name["fgt-005"].reason
    assert fleet.gates["fgt-006"].total == 0


async def test_percentage_max_failures(tmp_path):
    fleet = Fleet(4, failing={2})
    site = fleet.site(tmp_path, rollout=Rollout(canary=0, batch_size=2, concurrency=2, max_failures="50%"))
    run = await run_fleet(
        site, options=options(tmp_path), client_factory=fleet.factory(), prober=fleet.prober
    )
    assert [d.status for d in run.devices] == ["changed", "rolled_back", "changed", "changed"]


async def test_ended_window_refuses_with_zero_requests(tmp_path):
    fleet = Fleet(3)
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    window = ChangeWindow(start=now - timedelta(hours=5), end=now - timedelta(hours=1))
    site = fleet.site(tmp_path, change_window=window)
    with pytest.raises(WindowClosed):
        await run_fleet(
            site,
            options=options(tmp_path, now=lambda: now),
            client_factory=fleet.factory(),
            prober=fleet.prober,
        )
    assert sum(g.total for g in fleet.gates.values()) == 0


async def test_device_not_started_when_it_cannot_finish_in_the_window(tmp_path):
    fleet = Fleet(2)
    now = datetime(2026, 11, 25, 1, 59, 50, tzinfo=UTC)
    window = ChangeWindow(start=now - timedelta(hours=2), end=now + timedelta(seconds=10))
    site = fleet.site(tmp_path, change_window=window, rollout=Rollout(canary=0))
    run = await run_fleet(
        site, options=options(tmp_path, now=lambda: now), client_factory=fleet.factory(), prober=fleet.prober
    )
    assert {d.status for d in run.devices} == {"skipped"}
    assert "does not fit the change window" in run.devices[0].reason
    forced = await run_fleet(
        site,
        options=options(tmp_path, now=lambda: now, ignore_window=True),
        client_factory=fleet.factory(),
        prober=fleet.prober,
    )
    assert {d.status for d in forced.devices} == {"changed"}
    assert any("--ignore-window" in note for note in forced.notes)


async def test_a_second_run_is_refused_while_the_lock_is_held(tmp_path):
    fleet = Fleet(1)
    lock = site_lock(tmp_path / "journal")
    lock.acquire("other-run")
    try:
        with pytest.raises(LockHeld, match="other-run"):
            await run_fleet(
                fleet.site(tmp_path),
                options=options(tmp_path),
                client_factory=fleet.factory(),
                prober=fleet.prober,
            )
    finally:
        lock.release()
    assert fleet.gates["fgt-001"].total == 0


def test_a_dead_holders_lock_is_free_and_its_note_replaced(tmp_path):
    lock = site_lock(tmp_path)
    note = lock.holder_path
    holder = {"host": socket.gethostname(), "pid": 999999999, "run_id": "dead"}
    note.write_text(json.dumps(holder))  # what a killed run leaves: its note, but no kernel lock
    assert lock.holder() is None
    lock.acquire("new")
    assert '"new"' in note.read_text()
    assert oct(note.stat().st_mode & 0o777) == "0o600"
    assert site_lock(tmp_path).holder()["run_id"] == "new"
    lock.release()
    assert not note.exists()


def test_one_device_lock_per_firewall_whatever_the_journal(tmp_path):
    first = device_lock("https://FW.example.net:443/", "edge-a", lock_dir=tmp_path)
    first.acquire("run-a", device="edge-a")
    try:
        with pytest.raises(LockHeld, match="run-a"):
            device_lock("https://fw.example.net", "edge-b", lock_dir=tmp_path).acquire("run-b")
    finally:
        first.release()
    device_lock("https://fw.example.net", "edge-b", lock_dir=tmp_path).acquire("run-b")


async def test_limit_selects_by_glob_and_rejects_unmatched(tmp_path):
    fleet = Fleet(3)
    run = await run_fleet(
        fleet.site(tmp_path),
        options=options(tmp_path, limit=("fgt-00[23]",)),
        client_factory=fleet.factory(),
        prober=fleet.prober,
    )
    assert [d.name for d in run.devices] == ["fgt-002", "fgt-003"]
    with pytest.raises(InputError, match="matches no device"):
        await run_fleet(
            fleet.site(tmp_path),
            options=options(tmp_path, limit=("nope",)),
            client_factory=fleet.factory(),
            prober=fleet.prober,
        )


async def test_stop_request_starts_no_new_device(tmp_path):
    fleet = Fleet(4)
    stop = asyncio.Event()
    stop.set()
    site = fleet.site(tmp_path, rollout=Rollout(canary=0, batch_size=2))
    run = await run_fleet(
        site, options=options(tmp_path), client_factory=fleet.factory(), prober=fleet.prober, stop=stop
    )
    assert {d.status for d in run.devices} == {"skipped"}
    assert sum(g.total for g in fleet.gates.values()) == 0


def test_asking_who_holds_a_lock_never_makes_it_look_held(tmp_path):
    lock = site_lock(tmp_path)
    lock.acquire("run-a")
    lock.release()  # the file stays, nobody holds it
    probe = os.open(lock.path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # another process asking at the same moment
    try:
        assert site_lock(tmp_path).holder() is None
    finally:
        os.close(probe)
    site_lock(tmp_path).acquire("run-b")
