"""The run journal: append-only JSON lines, fsynced, mode 0600, a pre-image before every write.

Every write the engine makes is preceded by a ``pre`` line holding the change (the managed keys
as they were, and as they will be) and followed by a ``done`` line; every undo by an ``undo``
line. ``fortiauto rollback`` replays the un-undone ``pre`` lines in reverse from this file alone,
after a crash too. Certificates appear by name and SHA-256 only: no key, token or password is
ever written here.
"""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fortiauto.errors import InputError, JournalUnwritable
from fortiauto.results import Change

__all__ = [
    "Journal",
    "JournalEntry",
    "journal_dir",
    "latest_run_id",
    "pending_undos",
    "read_journal",
    "unfinished_runs",
]

ENV_VAR = "FORTIAUTO_JOURNAL_DIR"


def journal_dir(site_path: Path | None, override: Path | None = None) -> Path:
    """``--journal-dir``, else ``$FORTIAUTO_JOURNAL_DIR``, else ``.fortiauto/journal`` beside the site."""
    if override is not None:
        return override
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    base = site_path.parent if site_path is not None else Path.cwd()
    return base / ".fortiauto" / "journal"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Journal:
    """One run's journal file; ``record`` returns only once the whole line is on disk.

    Opening it is the last check before any write: a directory that cannot hold it (missing
    rights, read-only, full) is an ``InputError`` naming the directory. Later, a line that cannot
    be made durable raises ``JournalUnwritable`` and leaves no torn line behind, so the write it
    guards is not sent and the next line starts clean.

    ``record`` fsyncs on the calling thread. ``record_durable`` is the same promise for the
    event loop: it appends the line, then waits on a journal thread for an fsync that covers it,
    so the loop keeps serving every other device meanwhile; lines appended while one fsync runs
    share the next one (group commit; 12 % of a 100-device apply's wall time was the loop
    blocked in fsync, bench/RESULTS.md). A line whose fsync fails stays whole in the file (other
    devices' lines may follow it) and its caller gets ``JournalUnwritable``, so the write it
    guards is not sent: a ``pre`` line without its write is one the undo re-reads and leaves.
    """

    def __init__(self, directory: Path, run_id: str) -> None:
        self.path = directory / f"{run_id}.jsonl"
        self.run_id = run_id
        try:
            if not directory.is_dir():  # an existing directory keeps its mode: it may be shared
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.fchmod(fd, 0o600)
        except OSError as exc:
            raise InputError(
                f"journal directory {directory} cannot hold the journal: {exc.strerror or exc}"
            ) from None
        self._fd = fd
        self._appended = 0  # lines appended so far
        self._durable = 0  # of them, the first this many are known to be on disk
        self._syncing: asyncio.Future[None] | None = None  # the fsync in flight, if any
        self._syncer: ThreadPoolExecutor | None = None

    def record(self, kind: str, **fields: Any) -> None:
        start = self._append(kind, fields)
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._cut(start)
            raise self._unwritable(exc) from None
        self._durable = self._appended

    async def record_durable(self, kind: str, **fields: Any) -> None:
        """``record`` without blocking the event loop: returns once this line is on disk."""
        self._append(kind, fields)
        line = self._appended
        while self._durable < line:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync_batch())
            # Shielded: a device cancelled while waiting must not cancel the fsync others wait on.
            await asyncio.shield(self._syncing)

    def _append(self, kind: str, fields: dict[str, Any]) -> int:
        """Write one whole line (no fsync yet); return the offset it starts at."""
        line = json.dumps({"t": _now(), "type": kind, **fields}, sort_keys=True, default=str)
        data = (line + "\n").encode()
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, "short write (disk full?)")
        except OSError as exc:
            self._cut(start)
            raise self._unwritable(exc) from None
        self._appended += 1
        return start

    async def _sync_batch(self) -> None:
        covered = self._appended  # every line appended before this fsync starts
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-fsync")
        try:
            await asyncio.get_running_loop().run_in_executor(self._syncer, os.fsync, self._fd)
        except OSError as exc:
            raise self._unwritable(exc) from None
        finally:
            self._syncing = None
        self._durable = max(self._durable, covered)

    def _unwritable(self, exc: OSError) -> JournalUnwritable:
        return JournalUnwritable(f"journal {self.path} cannot record: {exc.strerror or exc}")

    def _cut(self, size: int) -> None:
        # Drop a torn line so that the journal stays a list of whole lines.
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            return

    def close(self) -> None:
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)  # an fsync in flight finishes before the fd goes
            self._syncer = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class JournalEntry:
    device: str
    seq: int
    change: Change


def change_to_json(change: Change) -> dict[str, Any]:
    return {
        "task": change.task,
        "path": change.path,
        "mkey": change.mkey,
        "action": change.action,
        "before": change.before,
        "after": change.after,
        "vdom": change.vdom,
    }


def change_from_json(data: dict[str, Any]) -> Change:
    return Change(
        task=data["task"],
        path=data["path"],
        mkey=data["mkey"],
        action=data["action"],
        before=data.get("before"),
        after=data.get("after"),
        vdom=data.get("vdom", "root"),
    )


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a journal; a torn last line (crash mid-write) is ignored."""
    if not path.is_file():
        raise InputError(f"no journal at {path}")
    entries: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def _runs(directory: Path) -> list[Path]:
    """The run journals in the order the runs started: by the time on their first line.

    Run ids carry their start time to the second only; two runs in one second are told apart
    by the header's full timestamp (the file name breaks a tie).
    """
    return sorted(directory.glob("*.jsonl"), key=lambda p: (_started(p), p.name))


def _started(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "{}")
    except (OSError, ValueError):
        return ""
    return str(first.get("t", "")) if isinstance(first, dict) else ""


def latest_run_id(directory: Path) -> str:
    """The newest run that wrote to a device (``--last``), whether or not it is undone already.

    A second ``rollback --last`` therefore finds the same run with nothing left and says so; it
    never reaches back to an older run (``--run ID`` names one).
    """
    runs = _runs(directory) if directory.is_dir() else []
    for path in reversed(runs):
        if any(e.get("type") == "pre" for e in read_journal(path)):
            return path.stem
    raise InputError(f"no run with writes in journal directory {directory}")


def pending_undos(entries: list[dict[str, Any]]) -> dict[str, list[JournalEntry]]:
    """Per device, the writes not yet undone (nor committed-then-undone), newest first."""
    # Undone and verified, or refused by FortiOS (a refused write never happened): nothing to undo.
    undone = {
        (e["device"], e["seq"])
        for e in entries
        if (e.get("type") == "undo" and e.get("ok")) or e.get("type") == "failed"
    }
    out: dict[str, list[JournalEntry]] = {}
    for entry in entries:
        if entry.get("type") != "pre":
            continue
        key = (entry["device"], entry["seq"])
        if key in undone:
            continue
        out.setdefault(entry["device"], []).append(
            JournalEntry(entry["device"], entry["seq"], change_from_json(entry["change"]))
        )
    return {device: list(reversed(items)) for device, items in out.items()}


def unfinished_runs(directory: Path, *, exclude: str | None = None) -> dict[str, list[str]]:
    """Per device, the runs that wrote to it, never finished (no ``end`` line) and still have writes to undo.

    What a killed or crashed run leaves behind; a run that rolled back or was rolled back
    since has nothing pending and does not count.
    """
    found: dict[str, list[str]] = {}
    for path in _runs(directory) if directory.is_dir() else []:
        if path.stem == exclude:
            continue
        entries = read_journal(path)
        ended = {e.get("device") for e in entries if e.get("type") == "end"}
        for device in pending_undos(entries):
            if device not in ended:
                found.setdefault(device, []).append(path.stem)
    return found
