"""After commit: delete the certificates a rebind retired, if nothing uses them any more.

The commit phase of a rotation (``rotation.py`` decides which certificates a plan retires). The
probe pinned to the new certificate has passed, so the old one is no longer needed. Each delete
is journaled like any write. A certificate still referenced (``q_ref`` of a ``with_meta`` read),
or one whose delete fails, is kept with a note that says why: the device is compliant either
way. A lost answer to a delete is settled by reading again, never reported from a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fortiauto.errors import FortiautoError, ResponseLost
from fortiauto.results import Change
from fortiauto.tasks.base import FortiOSApi
from fortiauto.transaction.apply import Applier

__all__ = ["retire_certificates"]


async def retire_certificates(
    api: FortiOSApi, applier: Applier, retire: Sequence[Change]
) -> tuple[tuple[Change, ...], tuple[str, ...]]:
    """Delete each retired certificate that nothing references; returns (deleted, notes)."""
    done: list[Change] = []
    kept: list[str] = []
    for change in retire:
        try:
            current = await _read(api, change)
            if current is None:
                continue  # already gone: the goal holds
            refs = current.get("q_ref")
            if isinstance(refs, int) and refs > 0:
                kept.append(f"kept certificate {change.mkey}: still referenced by {refs} object(s)")
                continue
            await _delete(api, applier, change)
        except FortiautoError as exc:
            kept.append(f"kept certificate {change.mkey}: {exc}")
            continue
        done.append(change)
    applier.forget()
    return tuple(done), tuple(kept)


async def _read(api: FortiOSApi, change: Change) -> dict[str, Any] | None:
    return await api.get_one(change.path, change.mkey, vdom=change.vdom, params={"with_meta": "1"})


async def _delete(api: FortiOSApi, applier: Applier, change: Change) -> None:
    try:
        await applier.write(change, lambda: api.delete(change.path, change.mkey, vdom=change.vdom))
    except ResponseLost:
        if await _read(api, change) is not None:
            raise
