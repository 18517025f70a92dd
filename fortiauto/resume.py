"""Resuming a run killed during its retirement: what is left is deleting the old certificates.

A rotation commits once the probe pinned to the new certificate has passed; only then does it
delete the certificate it retired (``transaction/retire.py``). A run killed in between (kill -9,
a crash, a reboot) leaves a journal with a ``commit`` line for the device, perhaps the ``pre`` of
a delete, and no ``end`` line, so it counts as unfinished and blocks the device. Undoing it would
undo a rotation that was proven; *resuming* it means finishing the retirement, which is what
``retirement_left`` finds: the deletes journaled after the commit and not done, or ``None`` when
the run is not of that kind (it wrote anything but certificate deletes after its commit, or
never committed: then ``fortiauto rollback`` is the way). Pure, over journal entries.

The transaction finishes them with ``TransactionOptions.finish_retirement``: each delete is
re-read first and made only when the certificate is still there and nothing references it, as
in any retirement, so a delete that did land before the kill is simply found done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fortiauto.journal import change_from_json
from fortiauto.results import Change

__all__ = ["CERTIFICATE_PATH", "Resumable", "retirement_left"]

CERTIFICATE_PATH = "vpn.certificate/local"


@dataclass(frozen=True)
class Resumable:
    """An unfinished run whose only remaining work on a device is deleting retired certificates."""

    run_id: str
    device: str
    deletes: tuple[Change, ...]  # journaled after the commit, not recorded as done

    @property
    def note(self) -> str:
        names = ", ".join(str(c.mkey) for c in self.deletes) or "none journaled"
        return (
            f"resuming run {self.run_id} on {self.device}: it committed its rotation and was interrupted "
            f"before retiring the old certificate ({names}); this run finishes the retirement"
        )


def retirement_left(run_id: str, entries: Iterable[Mapping[str, Any]], device: str) -> Resumable | None:
    """The retirement ``run_id`` left unfinished on ``device``, or None when it is not resumable that way."""
    mine = [e for e in entries if e.get("device") == device]
    kinds = [e.get("type") for e in mine]
    if "end" in kinds or "commit" not in kinds:
        return None
    committed_at = kinds.index("commit")
    after = mine[committed_at + 1 :]
    pres = [e for e in after if e.get("type") == "pre"]
    if not all(_is_certificate_delete(e.get("change")) for e in pres):
        return None
    settled = {e.get("seq") for e in after if e.get("type") in ("done", "failed")}
    deletes = tuple(change_from_json(dict(e["change"])) for e in pres if e.get("seq") not in settled)
    return Resumable(run_id, device, deletes)


def _is_certificate_delete(change: Any) -> bool:
    return (
        isinstance(change, Mapping)
        and change.get("action") == "delete"
        and change.get("path") == CERTIFICATE_PATH
    )
