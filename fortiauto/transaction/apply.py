"""Journaled writes: check, journal durably, write, record; then read back what was written.

The apply phase of a device transaction. For each step of the plan, in order:

1. *check*: re-read an object to update (it must still match what the plan read), so another
   admin's edit since the plan is never overwritten (``ConcurrentEdit``);
2. *journal*: a ``pre`` line with the change (pre- and post-image) is on disk before the write
   is sent; if it cannot be written (full disk, read-only), the write is not sent;
3. *write*, one request;
4. *record*: ``done`` when FortiOS accepted it, ``failed`` when it refused it (a refused write
   did not happen, so the undo leaves that object alone: it may be someone else's). A journal
   that cannot record raises, and the transaction rolls back what it wrote.

A write whose answer was lost is never re-sent: it stays ``unanswered`` and the undo re-reads
first. After the last write, ``read_back`` reads every written object concurrently and checks
the managed keys: a write answered "success" that did not take effect is a failure.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fortiauto.errors import APIError, ConcurrentEdit, ReadBackMismatch, ResponseLost
from fortiauto.events import Events
from fortiauto.fortios.normalise import canonical, project
from fortiauto.journal import JournalEntry, change_to_json
from fortiauto.plan import Step
from fortiauto.results import Change
from fortiauto.tasks import Task
from fortiauto.tasks.base import FortiOSApi

__all__ = ["Applier", "Write"]

# Returns once the journal line is on disk (``Journal.record_durable``), without blocking the loop.
Record = Callable[..., Awaitable[None]]


@dataclass
class Write:
    """One write this transaction sent (or tried to): what undo works from."""

    seq: int
    change: Change
    refused: bool = False  # FortiOS answered with an error: the write did not happen
    unanswered: bool = False  # sent, its answer timed out: it may still land on the device

    def entry(self, device: str) -> JournalEntry:
        return JournalEntry(device, self.seq, self.change)


class Applier:
    """Sends a plan's steps for one device and keeps the list of writes an undo must consider."""

    def __init__(self, device: str, tasks: dict[str, Task], record: Record, events: Events) -> None:
        self.device = device
        self.tasks = tasks
        self.writes: list[Write] = []
        self.first_write_at: float | None = None
        self._record = record
        self._events = events
        self._seq = 0

    @property
    def pending(self) -> list[Write]:
        """Writes that may be on the device (everything but those FortiOS refused), newest first."""
        return [w for w in reversed(self.writes) if not w.refused]

    def forget(self) -> None:
        """After commit or a verified undo: nothing of this attempt is left to undo."""
        self.writes.clear()

    async def apply(self, api: FortiOSApi, steps: Sequence[Step]) -> None:
        for step in steps:
            await self._check(api, step)
            task = self.tasks[step.change.task]
            await self.write(step.change, functools.partial(task.apply, api, step.change, step.target))

    async def write(self, change: Change, send: Callable[[], Awaitable[Any]]) -> None:
        """Journal ``change``, send it with ``send()``, record the answer (the one write path)."""
        self._seq += 1
        write = Write(self._seq, change)
        await self._record("pre", seq=write.seq, change=change_to_json(change))  # raises: nothing sent
        self.writes.append(write)
        if self.first_write_at is None:
            self.first_write_at = time.monotonic()
        try:
            answer = await send()
        except ResponseLost as exc:
            write.unanswered = exc.in_flight
            raise
        except APIError:
            write.refused = True
            await self._record("failed", seq=write.seq)
            raise
        await self._record("done", seq=write.seq)
        self._events.change_applied(self.device, change)
        if getattr(answer, "concurrent_edit", None) is True:
            # FortiOS's revision moved under us: someone else changed the configuration between
            # our read and this write. Stop here; the undo compares objects before touching them.
            raise ConcurrentEdit(
                f"{change.path}/{change.mkey}: the device's configuration changed while it was written "
                "(another admin is editing); stopping"
            )

    async def _check(self, api: FortiOSApi, step: Step) -> None:
        """Re-read before writing: if someone edited the object since the plan, stop."""
        change = step.change
        if change.action != "update":
            # A create of an object someone made meanwhile is refused by FortiOS ("duplicate entry"),
            # which marks the write refused: the undo never deletes their object.
            return
        current = await self.tasks[change.task].read(api, step.target)
        before = change.before or {}
        if canonical(project(current, before)) != canonical(before):
            raise ConcurrentEdit(
                f"{change.path}/{change.mkey} changed on the device since it was planned; not writing"
            )

    async def read_back(self, api: FortiOSApi, steps: Sequence[Step]) -> None:
        """Read every written object at once and check its managed keys; raise on any mismatch."""
        outcomes = await asyncio.gather(*(self._read_back(api, s) for s in steps), return_exceptions=True)
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:
            raise failure
        mismatched = [o for o in outcomes if isinstance(o, str)]
        if mismatched:
            raise ReadBackMismatch("read-back after the writes differs: " + "; ".join(mismatched))

    async def _read_back(self, api: FortiOSApi, step: Step) -> str | None:
        task = self.tasks[step.change.task]
        diff = task.diff(step.target, await task.read(api, step.target))
        if not diff.changes:
            return None
        keys = ", ".join(sorted(diff.changes[0].diff)) or "the object is missing"
        return f"{step.change.path}/{step.change.mkey}: {keys}"
