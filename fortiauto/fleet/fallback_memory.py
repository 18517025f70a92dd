"""Which devices sit on a fallback rung, since when and why: remembered beside the journal.

A device whose full fix broke mail and that runs on a fallback rung would otherwise retry the
full change on every timer run, breaking mail for the length of a probe each time. After a run
leaves it on a rung, ``remember`` writes ``state/<device>.json`` in the journal directory; later
runs start on that rung (``TransactionOptions.start_rung``) and say so, until ``--retry-full``
tries the full fix again, or a run applies the full fix, which clears the note.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fortiauto.results import DeviceResult
from fortiauto.transaction.outcome import Ending

__all__ = ["OnFallback", "forget", "recall", "remember", "update_from"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class OnFallback:
    rung: str
    since: str
    because: str

    def note(self) -> str:
        return (
            f"on fallback rung {self.rung} since {self.since} because the full fix failed ({self.because}); "
            "the full fix is not retried (--retry-full tries it again)"
        )


def _path(journal_dir: Path, device: str) -> Path:
    return journal_dir / "state" / f"{_SAFE.sub('_', device)}.json"


def recall(journal_dir: Path, device: str) -> OnFallback | None:
    try:
        data = json.loads(_path(journal_dir, device).read_text())
        return OnFallback(str(data["rung"]), str(data["since"]), str(data["because"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(journal_dir: Path, device: str, state: OnFallback) -> None:
    path = _path(journal_dir, device)
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"rung": state.rung, "since": state.since, "because": state.because}, handle)
    os.replace(partial, path)


def forget(journal_dir: Path, device: str) -> None:
    _path(journal_dir, device).unlink(missing_ok=True)


def update_from(journal_dir: Path, result: DeviceResult) -> None:
    """After a device's run: remember a fresh fall-back, forget it once the full fix holds."""
    try:
        if result.ending == Ending.FALLBACK and result.fallback_used and result.failed_probe is not None:
            because = result.failed_probe.result.failure_class or "probe failed"
            since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            remember(journal_dir, result.name, OnFallback(result.fallback_used, since, because))
        elif (
            result.ending in (Ending.APPLIED, Ending.COMPLIANT, Ending.UNPROVEN) and not result.fallback_used
        ):
            forget(journal_dir, result.name)
    except OSError:
        return  # a note that cannot be written costs a retried full fix next time, nothing worse
