"""The journal's fsync off the event loop: a write still waits for its own line to be on disk.

``Journal.record_durable`` appends the line and waits for an fsync on the journal's own thread
that started after the line was appended; concurrent devices share one fsync. The fsync seam is
``os.fsync`` as the journal module calls it, replaced here by a version that blocks or fails on
command, so what is asserted is order (line on disk -> write sent), never a duration.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import threading

import pytest

import fortiauto.journal as journal_module
from fortiauto.errors import JournalUnwritable
from fortiauto.events import Events
from fortiauto.journal import Journal, change_to_json, read_journal
from fortiauto.results import Change
from fortiauto.transaction.apply import Applier

REAL_FSYNC = os.fsync
CHANGE = Change("policy", "firewall/policy", 1, "update", {"a": "1"}, {"a": "2"})


class _Disk:
    """``os.fsync`` that remembers how much of the file each finished fsync covered."""

    def __init__(self) -> None:
        self.covered: list[int] = []  # file size at the start of each fsync that returned
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.fail: OSError | None = None

    def fsync(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        self.started.set()
        self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        REAL_FSYNC(fd)
        self.covered.append(size)


@pytest.fixture
def disk(monkeypatch) -> _Disk:
    fake = _Disk()
    monkeypatch.setattr(journal_module.os, "fsync", fake.fsync)
    return fake


async def test_each_line_returns_only_once_an_fsync_covered_it_and_devices_share_fsyncs(tmp_path, disk):
    journal = Journal(tmp_path, "run-1")

    async def device(n: int) -> None:
        await journal.record_durable("pre", device=f"fgt-{n}", seq=1, change=change_to_json(CHANGE))
        text = (tmp_path / "run-1.jsonl").read_bytes()[: max(disk.covered)]
        assert f'"device": "fgt-{n}"'.encode() in text  # this line was inside a finished fsync

    await asyncio.gather(*(device(n) for n in range(50)))
    journal.close()
    assert len(read_journal(tmp_path / "run-1.jsonl")) == 50
    assert len(disk.covered) < 50  # group commit: lines appended meanwhile share an fsync


async def test_the_write_is_not_sent_before_its_line_is_on_disk_and_the_loop_keeps_running(tmp_path, disk):
    journal = Journal(tmp_path, "run-1")
    applier = Applier("fgt-1", {}, journal.record_durable, Events())
    sent: list[str] = []

    async def send() -> None:
        sent.append("sent")

    disk.gate.clear()  # the disk is slow: the fsync blocks until released
    write = asyncio.create_task(applier.write(CHANGE, send))
    await asyncio.to_thread(disk.started.wait, 30)
    ticks = 0
    for _ in range(20):  # other devices' work runs while the fsync is in flight
        await asyncio.sleep(0)
        ticks += 1
    assert (ticks, sent, disk.covered) == (20, [], [])
    disk.gate.set()
    await write
    assert sent == ["sent"]
    journal.close()
    assert [e["type"] for e in read_journal(tmp_path / "run-1.jsonl")] == ["pre", "done"]


async def test_a_failed_fsync_stops_the_write_and_the_journal_recovers_for_later_lines(tmp_path, disk):
    journal = Journal(tmp_path, "run-1")
    applier = Applier("fgt-1", {}, journal.record_durable, Events())
    sent: list[str] = []

    async def send() -> None:
        sent.append("sent")

    disk.fail = OSError(errno.EIO, "Input/output error")
    with pytest.raises(JournalUnwritable, match="cannot record: Input/output error"):
        await applier.write(CHANGE, send)
    assert sent == []
    assert applier.writes == []  # nothing for the undo to send back either
    disk.fail = None
    await journal.record_durable("undo", device="fgt-1", seq=1, ok=True)
    journal.close()
    lines = (tmp_path / "run-1.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["pre", "undo"]  # whole lines only
