"""Observers of a run: the engine emits events, reporters (console, JSON, Ansible ...) format them.

A nornir-style Processor protocol and a fan-out list; the engine never formats text.
"""

from __future__ import annotations

from typing import Protocol

from fortiauto.results import Change, DeviceResult, Plan, ProbeResult

__all__ = ["Events", "NullReporter", "Reporter"]


class Reporter(Protocol):
    def device_started(self, device: str) -> None: ...

    def change_planned(self, device: str, plan: Plan) -> None: ...

    def change_applied(self, device: str, change: Change) -> None: ...

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None: ...

    def device_finished(self, result: DeviceResult) -> None: ...


class NullReporter:
    """Ignores everything; subclass and override what you need."""

    def device_started(self, device: str) -> None:
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
    """Fans each event out to every reporter, in order."""

    def __init__(self, reporters: list[Reporter] | None = None) -> None:
        self.reporters: list[Reporter] = list(reporters or [])

    def device_started(self, device: str) -> None:
        for r in self.reporters:
            r.device_started(device)

    def change_planned(self, device: str, plan: Plan) -> None:
        for r in self.reporters:
            r.change_planned(device, plan)

    def change_applied(self, device: str, change: Change) -> None:
        for r in self.reporters:
            r.change_applied(device, change)

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None:
        for r in self.reporters:
            r.probe_finished(device, stage, result)

    def device_finished(self, result: DeviceResult) -> None:
        for r in self.reporters:
            r.device_finished(result)
