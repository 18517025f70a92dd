"""The journal on real filesystems: full, read-only, shared; and what a killed run leaves behind."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fortiauto.errors import InputError, JournalUnwritable
from fortiauto.fleet import FleetOptions, rollback_run, run_fleet
from fortiauto.journal import Journal, change_to_json, latest_run_id, read_journal, unfinished_runs
from fortiauto.results import Change
from fortiauto.site import Site
from tests.unit.fakes import FakeFortiGate, FakeProber, factory, make_device

CHANGE = Change("policy", "firewall/policy", 1, "update", {"a": "1"}, {"a": "2"})


@contextlib.contextmanager
def tmpfs(path: Path, *options: str) -> Iterator[Path]:
    """A real, small filesystem of our own (tmpfs); skipped where this machine cannot mount one."""
    path.mkdir()
    opts = ",".join(("size=64k", *options))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_refuses_the_line_and_leaves_no_torn_line(tmp_path):
    with tmpfs(tmp_path / "small") as disk:
        journal = Journal(disk, "run-1")
        journal.record("run", devices=["fgt-1"])
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as handle:
            while True:
                handle.write(b"x" * 1024)
                handle.flush()
        with pytest.raises(JournalUnwritable, match="cannot record"):
            journal.record("pre", device="fgt-1", seq=1, change=change_to_json(CHANGE), pad="y" * 8192)
        journal.close()
        filler.unlink()
        lines = (disk / "run-1.jsonl").read_text().splitlines()
        assert [json.loads(line)["type"] for line in lines] == ["run"]  # every line whole, none torn


def test_a_read_only_journal_directory_is_a_clear_refusal_before_anything(tmp_path):
    with tmpfs(tmp_path / "ro", "ro") as disk, pytest.raises(InputError, match=f"journal directory {disk}"):
        Journal(disk, "run-1")


def test_an_existing_shared_directory_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    Journal(shared, "run-1").close()
    assert oct(shared.stat().st_mode & 0o7777) == "0o1777"
    assert oct((shared / "run-1.jsonl").stat().st_mode & 0o777) == "0o600"
    fresh = tmp_path / "fresh" / "journal"
    Journal(fresh, "run-1").close()
    assert oct(fresh.stat().st_mode & 0o777) == "0o700"


def _killed_run(directory: Path, run_id: str, device: str = "fgt-1") -> None:
    """What kill -9 leaves: a write journaled (and maybe landed), no end line."""
    with Journal(directory, run_id) as journal:
        journal.record("run", devices=[device])
        journal.record("pre", device=device, seq=1, change=change_to_json(CHANGE))
        journal.record("done", device=device, seq=1)


def test_a_run_without_end_line_and_with_writes_left_is_unfinished(tmp_path):
    _killed_run(tmp_path, "20261201T000000Z-aaaaaa")
    assert unfinished_runs(tmp_path) == {"fgt-1": ["20261201T000000Z-aaaaaa"]}
    with Journal(tmp_path, "20261201T000000Z-aaaaaa") as journal:  # `fortiauto rollback` undid it
        journal.record("undo", device="fgt-1", seq=1, ok=True)
    assert unfinished_runs(tmp_path) == {}


async def test_a_device_with_an_unfinished_run_is_refused_until_it_is_undone(tmp_path):
    journal_dir = tmp_path / "journal"
    _killed_run(journal_dir, "20261201T000000Z-aaaaaa")
    gate = FakeFortiGate()
    site = Site(version=1, devices=(make_device(),), path=tmp_path / "site.yml")
    options = FleetOptions(run_id="20261201T000001Z-bbbbbb", journal_dir=journal_dir)
    run = await run_fleet(site, options=options, client_factory=factory(gate), prober=FakeProber(gate))
    device = run.devices[0]
    assert (device.status, run.exit_code) == ("refused", 5)
    assert "fortiauto rollback --run 20261201T000000Z-aaaaaa" in device.reason
    assert gate.total == 0  # not even read
    plan = await run_fleet(
        site,
        options=FleetOptions(
            run_id="20261201T000002Z-cccccc", journal_dir=journal_dir, check=True, probe=False
        ),
        client_factory=factory(gate),
        prober=FakeProber(gate),
    )
    assert plan.devices[0].plan is not None
    assert any("never finished" in w for w in plan.devices[0].plan.warnings)


async def test_a_finished_run_writes_its_end_line(tmp_path):
    gate = FakeFortiGate()
    site = Site(version=1, devices=(make_device(),), path=tmp_path / "site.yml")
    options = FleetOptions(run_id="20261201T000001Z-bbbbbb", journal_dir=tmp_path / "journal")
    await run_fleet(site, options=options, client_factory=factory(gate), prober=FakeProber(gate))
    entries = read_journal(tmp_path / "journal" / "20261201T000001Z-bbbbbb.jsonl")
    assert [e["ending"] for e in entries if e["type"] == "end"] == ["applied"]
    assert unfinished_runs(tmp_path / "journal") == {}
    assert os.stat(tmp_path / "journal").st_mode & 0o777 == 0o700


async def test_rollback_last_twice_never_reaches_back_to_an_older_run(tmp_path):
    journal_dir = tmp_path / "journal"
    gates = {"fgt-1": FakeFortiGate(), "fgt-2": FakeFortiGate()}
    devices = (make_device(name="fgt-1", port=2601), make_device(name="fgt-2", port=2602))
    site = Site(version=1, devices=devices, path=tmp_path / "site.yml")

    def by_name(device):
        return factory(gates[device.name])(device)

    older = FleetOptions(run_id="20261201T000001Z-aaaaaa", journal_dir=journal_dir, limit=("fgt-2",))
    await run_fleet(site, options=older, client_factory=by_name, prober=FakeProber(gates["fgt-2"]))
    newer = FleetOptions(run_id="20261201T000002Z-bbbbbb", journal_dir=journal_dir, limit=("fgt-1",))
    await run_fleet(site, options=newer, client_factory=by_name, prober=FakeProber(gates["fgt-1"]))
    applied_older = gates["fgt-2"].state()

    first = await rollback_run(journal_dir, client_factory=by_name, load_site=lambda _: site)
    assert first.run_id == "20261201T000002Z-bbbbbb"
    assert [d.status for d in first.devices] == ["rolled_back"]
    second = await rollback_run(journal_dir, client_factory=by_name, load_site=lambda _: site)
    assert second.run_id == "20261201T000002Z-bbbbbb"  # the same, newest run: nothing left, said so
    assert any("nothing left to undo" in note for note in second.notes)
    assert gates["fgt-2"].state() == applied_older  # the older run on another device is untouched


def test_the_newest_run_is_the_one_that_started_last_even_within_one_second(tmp_path):
    # Same second, and the later run's random suffix sorts first: the header's time decides.
    for run_id in ("20261201T000000Z-ffffff", "20261201T000000Z-000000"):
        with Journal(tmp_path, run_id) as journal:
            journal.record("run", devices=["fgt-1"])
            journal.record("pre", device="fgt-1", seq=1, change=change_to_json(CHANGE))
    assert latest_run_id(tmp_path) == "20261201T000000Z-000000"
