"""Locks: one run per journal directory, and one run per firewall on this machine.

A lock is a file held with the kernel's advisory lock (filelock), so it is freed when its holder
dies, however it dies; a reused pid cannot confuse it. Beside each lock a small JSON file says
who holds it (host, pid, run id, since when) for the refusal message. The device locks live in
one directory for the whole machine (``FORTIAUTO_LOCK_DIR``, else ``~/.cache/fortiauto/locks``),
keyed by the device's URL, so two runs from different site files or journal directories can
never change one firewall at the same time. Devices changed through one FortiManager ADOM take
turns on a lock of the same directory (``fortimanager_lock``): they share its objects and
packages, and another process (an Ansible fork, a second CLI run) must not read them between
one device's write and its install or undo. That lock is waited for, not refused.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import filelock

from fortiauto.errors import InputError, LockHeld

__all__ = ["LOCK_DIR_ENV", "Lock", "device_lock", "fortimanager_lock", "site_lock"]

LOCK_DIR_ENV = "FORTIAUTO_LOCK_DIR"


class Lock:
    """A non-blocking lock with a holder note; ``acquire`` raises ``LockHeld`` naming the holder."""

    def __init__(self, path: Path, *, what: str) -> None:
        self.path = path
        self.what = what
        self.holder_path = path.with_name(path.name + ".holder.json")
        # A moment's patience: another run may be asking who holds it (a brief shared probe).
        self._lock = filelock.FileLock(str(path), timeout=0.5, mode=0o600)

    def acquire(self, run_id: str, **about: Any) -> None:
        _private_dir(self.path.parent)
        if not self._take(timeout=None):
            raise LockHeld(f"another run holds the lock on {self.what} ({self.path}): {self._describe()}")
        self._write_note(run_id, about)

    async def wait_acquire(self, run_id: str, *, poll: float = 0.1, **about: Any) -> None:
        """``acquire``, waiting for the holder to let go; the event loop runs on meanwhile (cancellable)."""
        _private_dir(self.path.parent)
        while not self._take(timeout=0):
            await asyncio.sleep(poll)
        self._write_note(run_id, about)

    def _take(self, *, timeout: float | None) -> bool:
        """One try (``timeout=0``) or the lock's moment of patience (None); False while another holds it."""
        try:
            if timeout is None:
                self._lock.acquire()
            else:
                self._lock.acquire(timeout=timeout)
        except filelock.Timeout:
            return False
        except OSError as exc:
            raise InputError(f"cannot take the lock {self.path}: {exc.strerror or exc}") from None
        return True

    def _write_note(self, run_id: str, about: dict[str, Any]) -> None:
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run_id": run_id,
            "started": _now(),
            **about,
        }
        fd = os.open(self.holder_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a note left by someone else keeps its mode otherwise
        with os.fdopen(fd, "w") as handle:
            json.dump(info, handle)

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock now, or None when it is free (a dead holder's note does not count).

        Asks the kernel with a shared, non-blocking probe on a descriptor of its own: two runs
        asking at once never see each other as the holder, and a probe never blocks the holder.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None  # no lock file: nobody ever took it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self._note() or {}
        finally:
            os.close(fd)  # closing drops a probe that succeeded
        return None

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def release(self) -> None:
        if self._lock.is_locked:
            self.holder_path.unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _note(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.holder_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _describe(self) -> str:
        note = self._note()
        if not note:
            return "holder unknown"
        run, pid, host, since = (note.get(k) for k in ("run_id", "pid", "host", "started"))
        return f"run {run} pid {pid} on {host} since {since}"


def site_lock(journal_dir: Path) -> Lock:
    """One run per journal directory (apply and rollback of the same journal never overlap)."""
    return Lock(journal_dir / "fortiauto.lock", what=f"journal {journal_dir}")


def device_lock(url: str, name: str, *, lock_dir: Path | None = None) -> Lock:
    """One run per firewall on this machine, whatever site file or journal names it."""
    key = _device_key(url)
    directory = lock_dir or _machine_lock_dir()
    return Lock(
        directory / f"device-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock",
        what=f"device {name} ({key})",
    )


def fortimanager_lock(url: str, adom: str, *, lock_dir: Path | None = None) -> Lock:
    """The turn of one writing device at a time in a FortiManager ADOM, machine-wide (see the module)."""
    key = f"{_device_key(url)}/{adom}"
    directory = lock_dir or _machine_lock_dir()
    return Lock(
        directory / f"fortimanager-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock",
        what=f"FortiManager ADOM {adom} ({_device_key(url)})",
    )


def _device_key(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _machine_lock_dir() -> Path:
    if os.environ.get(LOCK_DIR_ENV):
        return Path(os.environ[LOCK_DIR_ENV])
    return Path.home() / ".cache" / "fortiauto" / "locks"


def _private_dir(directory: Path) -> None:
    """Create ``directory`` 0700 if missing; an existing directory keeps its mode (it may be shared)."""
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def _now() -> str:
    return datetime.now(UTC).isoformat()
