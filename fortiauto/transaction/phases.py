"""The phases of a device transaction, which only move forward, each announced as an event.

connect -> preflight -> baseline -> plan -> apply -> verify -> commit | rollback -> done. A
fallback rung is a new *attempt*: only a rollback may lead to the plan of the next rung, so
the order stays forward within an attempt and attempts only count up (pyinfra's
``StateStage``). An illegal move is a bug in the engine and raises ``PhaseError``.
"""

from __future__ import annotations

import time
from enum import StrEnum

from fortiauto.errors import FortiautoError
from fortiauto.events import Events
from fortiauto.results import TimelineMark

__all__ = ["Phase", "PhaseError", "PhaseTracker"]


class Phase(StrEnum):
    CONNECT = "connect"
    PREFLIGHT = "preflight"
    BASELINE = "baseline"
    PLAN = "plan"
    APPLY = "apply"
    VERIFY = "verify"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    DONE = "done"


_ORDER = tuple(Phase)
# Moves that skip ahead or branch: everything else must be the next phase in _ORDER.
_BRANCHES: dict[Phase, frozenset[Phase]] = {
    Phase.CONNECT: frozenset({Phase.DONE}),
    Phase.PREFLIGHT: frozenset({Phase.PLAN, Phase.DONE}),  # check mode and refusals skip the baseline
    Phase.BASELINE: frozenset({Phase.DONE}),
    Phase.PLAN: frozenset({Phase.DONE}),  # nothing to change, check mode, refused
    Phase.APPLY: frozenset({Phase.ROLLBACK, Phase.DONE}),  # done: the first write was never sent
    Phase.VERIFY: frozenset({Phase.ROLLBACK}),
    Phase.COMMIT: frozenset({Phase.DONE}),
    Phase.ROLLBACK: frozenset({Phase.DONE}),
}


class PhaseError(FortiautoError):
    """The engine tried to move a transaction backwards (a bug)."""


class PhaseTracker:
    """The current phase of one device; ``enter`` refuses to go backwards and emits the event."""

    def __init__(self, device: str, events: Events) -> None:
        self.device = device
        self.phase = Phase.CONNECT
        self.rung: str | None = None
        self._events = events
        self._started = time.monotonic()
        self._marks: list[TimelineMark] = [TimelineMark(Phase.CONNECT.value, 0.0)]

    def enter(self, phase: Phase, *, rung: str | None = None) -> None:
        """Move to ``phase``; a ``rung`` other than the current one starts a new attempt."""
        if phase is self.phase and phase is Phase.DONE:
            return  # finishing twice (an interrupt during the report) is harmless
        new_attempt = phase is Phase.PLAN and self.phase is Phase.ROLLBACK
        if not (new_attempt or self._forward(phase)):
            raise PhaseError(f"{self.device}: phase {self.phase} cannot be followed by {phase}")
        self.phase = phase
        self.rung = rung if phase is Phase.PLAN else self.rung
        self._marks.append(TimelineMark(phase.value, (time.monotonic() - self._started) * 1000, self.rung))
        self._events.phase_started(self.device, phase.value, self.rung)

    @property
    def timeline(self) -> tuple[TimelineMark, ...]:
        return tuple(self._marks)

    def _forward(self, phase: Phase) -> bool:
        here = _ORDER.index(self.phase)
        return (here + 1 < len(_ORDER) and _ORDER[here + 1] is phase and self.phase is not Phase.COMMIT) or (
            phase in _BRANCHES.get(self.phase, frozenset())
        )
