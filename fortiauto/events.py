"""Observers of a run: the engine emits events, reporters (console, JSON, Ansible ...) format them.

A nornir-style Processor protocol and a fan-out list; the engine never formats text. A reporter
that fails (a closed pipe on stdout, a full disk, a bug in a view) is dropped from the fan-out
and remembered in ``Events.failures``: reporting never aborts a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from fortiauto.results import Change, DeviceResult, Plan, ProbeResult

__all__ = ["Events", "NullReporter", "Reporter"]

_log = logging.getLogger(__name__)


class Reporter(Protocol):
    def device_started(self, device: str) -> None: ...

    def phase_started(self, device: str, phase: str, rung: str | None) -> None: ...

    def change_planned(self, device: str, plan: Plan) -> None: ...

    def change_applied(self, device: str, change: Change) -> None: ...

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None: ...

    def device_finished(self, result: DeviceResult) -> None: ...


class NullReporter:
    """Ignores everything; subclass and override what you need."""

    def device_started(self, device: str) -> None:
        return None

    def phase_started(self, device: str, phase: str, rung: str | None) -> None:
        return None

    def change_planned(self, device: str, plan: Plan) -> None:
        return None

    def change_applied(self, device: str, change: Change) -> None:
        return None

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None:
        return None

    def device_finished(self, result: DeviceResult) -> None:
        return None


class Events:
    """Fans each event out to every reporter, in order; a reporter that raises is dropped."""

    def __init__(self, reporters: list[Reporter] | None = None) -> None:
        self.reporters: list[Reporter] = list(reporters or [])
        self.failures: list[str] = []

    def device_started(self, device: str) -> None:
        self._emit("device_started", device)

    def phase_started(self, device: str, phase: str, rung: str | None) -> None:
        self._emit("phase_started", device, phase, rung)

    def change_planned(self, device: str, plan: Plan) -> None:
        self._emit("change_planned", device, plan)

    def change_applied(self, device: str, change: Change) -> None:
        self._emit("change_applied", device, change)

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None:
        self._emit("probe_finished", device, stage, result)

    def device_finished(self, result: DeviceResult) -> None:
        self._emit("device_finished", result)

    def _emit(self, event: str, *args: Any) -> None:
        for reporter in list(self.reporters):
            # Reporters written before an event existed keep working without it.
            handler: Callable[..., None] | None = getattr(reporter, event, None)
            if handler is None:
                continue
            try:
                handler(*args)
            except Exception as exc:
                self.reporters.remove(reporter)
                self.failures.append(f"{type(reporter).__name__}.{event}: {type(exc).__name__}: {exc}")
                _log.debug("reporter dropped after %s failed", event, exc_info=True)
