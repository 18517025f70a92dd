"""The one undo: reverse journaled writes newest first, touching only what this run left behind.

Used by a transaction's own rollback, by ``fortiauto rollback`` (from the journal alone) and by
the Ansible module. Each write is undone in the scrapli_cfg shape *check, one call, record*:

- read the object and compare it with what this run left (the change's post-image) and with
  what it found (the pre-image);
- already as before (the write never landed, or was undone): nothing to do;
- as this run left it: restore the pre-image (delete what was created, put back what was
  updated), then read again to verify;
- anything else: someone edited it since; it is not touched (unless ``force``) and is reported.

What could not be restored is returned as ``Leftover`` lines; an answer that cannot be read
makes the object's state unknown, never "restored".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fortiauto.errors import FortiautoError, NotFound
from fortiauto.fortios.normalise import canonical, project
from fortiauto.journal import JournalEntry
from fortiauto.results import Change
from fortiauto.tasks.base import FortiOSApi

__all__ = ["ObjectState", "UndoReport", "undo_entries"]

CERTIFICATES = "vpn.certificate/local"
Record = Callable[..., None]


class ObjectState(StrEnum):
    BEFORE = "before"  # as the run found it: nothing to undo
    AFTER = "after"  # as the run left it: safe to restore
    CHANGED_SINCE = "changed_since"  # neither: another admin's edit, not ours to revert


@dataclass(frozen=True)
class UndoReport:
    """What an undo left: one line per object it could not restore, and whether a human edit is involved."""

    left: tuple[str, ...] = ()
    changed_since: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.left


def _managed(current: dict[str, Any] | None, image: dict[str, Any]) -> Any:
    return canonical(project(current, image))


def object_state(change: Change, current: dict[str, Any] | None) -> ObjectState:
    """Where the object stands between this change's pre-image and post-image (pure)."""
    if change.action in ("create", "import", "delete"):
        return _presence_state(change, current)
    before, after = change.before or {}, change.after or {}
    if _managed(current, before) == canonical(before):
        return ObjectState.BEFORE
    if _managed(current, after) == canonical(after):
        return ObjectState.AFTER
    return ObjectState.CHANGED_SINCE


def _presence_state(change: Change, current: dict[str, Any] | None) -> ObjectState:
    """For a create, an import or a delete: does the object exist, and is it the one this run made?"""
    existed_before = change.action == "delete"
    if (current is not None) == existed_before:
        return ObjectState.BEFORE
    if current is None or change.action != "create":
        return ObjectState.AFTER  # deleted as planned, or an import (named by its fingerprint: ours)
    after = _comparable(change.after or {})
    return ObjectState.AFTER if _managed(current, after) == canonical(after) else ObjectState.CHANGED_SINCE


def _comparable(image: dict[str, Any]) -> dict[str, Any]:
    # Keys fortiauto sends but FortiOS does not echo as such (an import's fingerprint) are not compared.
    return {k: v for k, v in image.items() if k != "sha256"}


async def _restore(api: FortiOSApi, change: Change) -> None:
    """The one write that reverses ``change``."""
    if change.action in ("create", "import"):
        with contextlib.suppress(NotFound):  # gone meanwhile: the goal holds
            await api.delete(change.path, change.mkey, vdom=change.vdom)
    elif change.action == "update":
        await api.update(change.path, change.mkey, change.before or {}, vdom=change.vdom)
    else:
        await api.create(change.path, change.before or {}, vdom=change.vdom)


def _where(change: Change) -> str:
    return f"{change.action} {change.path}/{change.mkey} (vdom {change.vdom})"


def irreversible(change: Change) -> str | None:
    """Why ``change`` cannot be undone by fortiauto at all, before any write is tried."""
    if change.action == "delete" and change.path == CERTIFICATES:
        return (
            f"certificate {change.mkey} was deleted after its successor passed the probe; fortiauto "
            "never stores private keys: re-import it from its files to go back"
        )
    return None


async def undo_one(api: FortiOSApi, change: Change, *, force: bool = False) -> tuple[bool, str, bool]:
    """Undo one change; returns ``(restored, why_not, changed_since)``."""
    why = irreversible(change)
    current = await api.get_one(change.path, change.mkey, vdom=change.vdom)
    state = object_state(change, current)
    if state is ObjectState.BEFORE:
        return True, "", False
    if why is not None:
        return False, why, False
    if state is ObjectState.CHANGED_SINCE and not force:
        return False, "changed on the device since this run wrote it; not touched (--force restores it)", True
    await _restore(api, change)
    verified = object_state(change, await api.get_one(change.path, change.mkey, vdom=change.vdom))
    if verified is ObjectState.BEFORE:
        return True, "", False
    return False, "re-read after the undo differs from the pre-image", False


async def undo_entries(
    api: FortiOSApi,
    entries: Sequence[JournalEntry],
    record: Record | None = None,
    *,
    force: bool = False,
) -> UndoReport:
    """Undo journaled writes in the order given (newest first), verify each; report what is left.

    ``record`` journals each outcome (``undo`` lines); a journal that cannot be written does not
    stop the undo, which matters more than its record.
    """
    blocked = await _blocked(api, entries)
    if blocked is not None:
        return blocked
    left: list[str] = []
    changed_since: list[str] = []
    for entry in entries:
        try:
            restored, why, edited = await undo_one(api, entry.change, force=force)
        except FortiautoError as exc:
            restored, why, edited = False, f"state unknown: {exc}", False
        _record(record, seq=entry.seq, ok=restored)
        if not restored:
            left.append(f"{_where(entry.change)}: {why}")
            if edited:
                changed_since.append(_where(entry.change))
    return UndoReport(tuple(left), tuple(changed_since))


async def _blocked(api: FortiOSApi, entries: Sequence[JournalEntry]) -> UndoReport | None:
    """An undo that cannot reach the pre-change state (a deleted certificate) makes no write at all.

    Restoring the rest (e.g. rebinding a profile to the deleted certificate) could only fail
    half-way; the report says why and what would bring the device back.
    """
    for entry in entries:
        why = irreversible(entry.change)
        if why is None:
            continue
        try:
            current = await api.get_one(entry.change.path, entry.change.mkey, vdom=entry.change.vdom)
        except FortiautoError as exc:
            return UndoReport((f"{_where(entry.change)}: state unknown: {exc}; nothing was undone",))
        if object_state(entry.change, current) is not ObjectState.BEFORE:
            return UndoReport(
                (f"{_where(entry.change)}: {why}; nothing was undone: the device stays as the run left it",)
            )
    return None


def _record(record: Record | None, **fields: Any) -> None:
    if record is None:
        return
    with contextlib.suppress(OSError, FortiautoError):
        record("undo", **fields)
