"""Tell this client's writes from someone else's, using the configuration revision FortiOS reports.

Every CMDB answer carries the device's configuration ``revision`` (one 32-hex value for the
whole configuration, moved by any change); a write answer adds the ``old_revision`` it was
applied on. The client records the revision of each read (``read``) and each of its own writes
(``wrote``). A write whose ``old_revision`` is the revision of the last read of that object,
or one this client's own writes led to since, proves nobody else changed the configuration in
between; any other value proves someone did (not necessarily this object: the engine re-reads it
to decide). ``Envelope.concurrent_edit`` carries the verdict to the engine. No I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fortiauto.fortios.envelope import Envelope

__all__ = ["RevisionTrail"]

_Key = tuple[str | None, str, str | None]


@dataclass(frozen=True)
class _Seen:
    order: int
    revision: str
    blind: int  # unrevisioned writes of this client before this read


class RevisionTrail:
    """The revisions one client has seen, per object read, and the transitions its own writes made."""

    def __init__(self) -> None:
        self._order = 0
        self._seen: dict[_Key, _Seen] = {}
        self._own: dict[str, str] = {}  # old_revision -> revision, for each of this client's writes
        self._blind = 0

    def read(self, vdom: str | None, path: str, mkey: object, revision: str | None) -> None:
        """A read of ``path`` (a member when ``mkey`` is set, else the table) answered at ``revision``."""
        if not revision:
            return
        self._order += 1
        self._seen[(vdom, path, _mkey(mkey))] = _Seen(self._order, revision, self._blind)

    def unrevisioned_write(self) -> None:
        """A write whose answer names no revision (a monitor action such as a certificate import)."""
        self._blind += 1

    def wrote(self, vdom: str | None, path: str, mkey: object, envelope: Envelope) -> Envelope:
        """Record a successful write of ``path``/``mkey`` and return its envelope with the verdict."""
        baseline = self._baseline(vdom, path, mkey)
        verdict: bool | None = None
        seen: str | None = None
        old = envelope.old_revision
        if baseline is not None:
            chain = self._chain(baseline.revision)
            seen = chain[-1]
            if old is not None:
                if old in chain:
                    verdict, seen = False, old
                elif self._blind == baseline.blind:
                    verdict = True
        if old is not None and envelope.revision is not None:
            if old != envelope.revision:
                self._own[old] = envelope.revision
        else:
            self._blind += 1
        return dataclasses.replace(envelope, revision_seen=seen, concurrent_edit=verdict)

    def _baseline(self, vdom: str | None, path: str, mkey: object) -> _Seen | None:
        candidates = [self._seen.get((vdom, path, _mkey(mkey))), self._seen.get((vdom, path, None))]
        found = [c for c in candidates if c is not None]
        return max(found, key=lambda c: c.order) if found else None

    def _chain(self, revision: str) -> list[str]:
        chain = [revision]
        while chain[-1] in self._own and self._own[chain[-1]] not in chain:
            chain.append(self._own[chain[-1]])
        return chain


def _mkey(mkey: object) -> str | None:
    return None if mkey is None else str(mkey)
