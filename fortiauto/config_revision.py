"""Before a device's first write: save a configuration revision, FortiOS's own safety net.

Apply phase of a device transaction, once, just before the first journaled write: ``POST
monitor/system/config-revision/save`` with the run id as ``comments`` stores a snapshot of the
whole configuration on the unit, so an admin can also go back with FortiOS's own tools
(System > Configuration > Revisions, or ``execute revision``) whatever fortiauto's journal says.
Its id goes into the journal and the device's result.

The save endpoint's answer is not documented (fortinet.fortios ``fortios_monitor`` lists the
endpoint and its ``comments`` parameter only); an id in the answer is used when there is one,
else the revision list (``GET monitor/system/config-revision``: ``revisions`` with ``id`` and
``comment``, as in fortigate_exporter's testdata) is read once for the revision carrying this
run's comment. A unit that cannot save one (an older build, a profile without the right) is
not a reason to stop: fortiauto's own journal and undo are the primary way back; the plan says
the revision is missing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fortiauto.errors import FortiOSError

__all__ = ["LIST_PATH", "SAVE_PATH", "SavedRevision", "save_revision"]

SAVE_PATH = "system/config-revision/save"
LIST_PATH = "system/config-revision"
_ID_KEYS = ("config_id", "revision_id", "id")


class RevisionApi(Protocol):
    async def monitor_post(self, path: str, body: Any, *, vdom: Any = ..., params: Any = None) -> Any: ...

    async def monitor_get(self, path: str, *, vdom: Any = ..., params: Any = None) -> Any: ...


@dataclass(frozen=True)
class SavedRevision:
    """The revision saved before the first write: its id (None when none could be saved) and cost."""

    id: str | None
    cost_ms: float
    requests: int
    note: str | None = None  # why there is no id, for the plan's warnings

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cost_ms": round(self.cost_ms, 1),
            "requests": self.requests,
            "note": self.note,
        }


async def save_revision(api: RevisionApi, run_id: str) -> SavedRevision:
    """Save a revision commented with ``run_id``; never raises for a FortiOS answer."""
    started = time.monotonic()
    requests = 1
    try:
        answer = await api.monitor_post(SAVE_PATH, {"comments": run_id})
        found = _id_in(getattr(answer, "results", answer))
        if found is None:
            requests += 1
            found = _id_for(await api.monitor_get(LIST_PATH), run_id)
    except FortiOSError as exc:
        return SavedRevision(None, _ms(started), requests, f"configuration revision not saved: {exc}")
    note = None if found is not None else "configuration revision saved, but its id was not in the answers"
    return SavedRevision(found, _ms(started), requests, note)


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _id_in(results: Any) -> str | None:
    if isinstance(results, Mapping):
        for key in _ID_KEYS:
            value = results.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def _id_for(listing: Any, run_id: str) -> str | None:
    """The newest revision whose comment is ``run_id`` (list entries may come newest first or last)."""
    rows = listing.get("revisions") if isinstance(listing, Mapping) else listing
    if not isinstance(rows, list):
        return None
    ours = [r for r in rows if isinstance(r, Mapping) and r.get("comment") == run_id and "id" in r]
    if not ours:
        return None
    newest = max(ours, key=lambda r: (int(r.get("time") or 0), str(r["id"])))
    return str(newest["id"])
