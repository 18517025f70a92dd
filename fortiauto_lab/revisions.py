"""Saved configuration revisions of one mock FortiGate: FortiOS's own safety net.

``monitor/system/config-revision/save`` (body ``{"comments": ...}``) stores a snapshot of the
whole configuration; ``monitor/system/config-revision`` lists them newest first, shaped like
the real answer (fortigate_exporter testdata ``config-revision.jsonnet``: ``revisions`` with
``id``, ``time``, ``version_id``, ``admin``, ``comment``; ``categories``;
``current_config_unsaved``); ``monitor/system/config/restore`` with ``source: revision`` and
``config_id`` puts a snapshot back ([A] fortios_monitor ``restore.system.config``). The answer
of ``save`` is not documented; the lab answers ``results: {"config_id": N}``. No I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Revision", "Revisions"]

_MAX_REVISIONS = 100  # FortiOS keeps a bounded number of revisions (older ones roll off)


@dataclass(frozen=True)
class Revision:
    id: int
    time: int
    admin: str
    comment: str
    snapshot: bytes = field(repr=False)  # a store dump with secrets, for restore

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "time": self.time,
            "version_id": "1",
            "admin": self.admin,
            "comment": self.comment,
        }


@dataclass
class Revisions:
    """The revisions saved on one device, oldest first."""

    saved: list[Revision] = field(default_factory=list)
    _next_id: int = 1

    def save(self, snapshot: bytes, *, admin: str, comment: str) -> Revision:
        revision = Revision(self._next_id, int(time.time()), admin, comment, snapshot)
        self._next_id += 1
        self.saved.append(revision)
        del self.saved[:-_MAX_REVISIONS]
        return revision

    def get(self, config_id: int) -> Revision | None:
        return next((r for r in self.saved if r.id == config_id), None)

    def delete(self, ids: set[int]) -> int:
        before = len(self.saved)
        self.saved = [r for r in self.saved if r.id not in ids]
        return before - len(self.saved)

    def comment(self, config_id: int, text: str) -> bool:
        for index, revision in enumerate(self.saved):
            if revision.id == config_id:
                self.saved[index] = Revision(
                    revision.id, revision.time, revision.admin, text, revision.snapshot
                )
                return True
        return False

    def newest_first(self) -> list[Revision]:
        return list(reversed(self.saved))
