"""The rollout schedule, pure: which devices, in which groups, and when the halt rule stops the rest.

Like nornir's runners: no I/O, no clock. ``select_devices`` applies ``--limit``; ``schedule``
cuts the canary and the batches; ``halt_reason`` decides, after each group, whether the
remaining groups are skipped.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from fortiauto.errors import InputError
from fortiauto.results import DeviceResult
from fortiauto.site import Device, Rollout, Site

__all__ = ["Schedule", "estimate_seconds", "halt_reason", "schedule", "select_devices"]

_REQUEST_BUDGET = 15  # requests of a first apply of one mail server (bench/RESULTS.md)
_SECONDS_PER_REQUEST = 0.5


def select_devices(site: Site, limit: Sequence[str]) -> list[Device]:
    """Devices matching any ``--limit`` glob (all when none); an unmatched pattern is an input error."""
    if not limit:
        return list(site.devices)
    for pattern in limit:
        if not any(fnmatch.fnmatchcase(d.name, pattern) for d in site.devices):
            raise InputError(f"--limit {pattern!r} matches no device in {site.path}")
    return [d for d in site.devices if any(fnmatch.fnmatchcase(d.name, pat) for pat in limit)]


@dataclass(frozen=True)
class Schedule:
    """The canary group (possibly empty) then the batches, and how many failures halt the rest."""

    groups: tuple[tuple[Device, ...], ...]
    canary: bool
    allowed_failures: int
    max_failures: int | str


def schedule(devices: Sequence[Device], rollout: Rollout) -> Schedule:
    canary, rest = tuple(devices[: rollout.canary]), devices[rollout.canary :]
    batches = [tuple(rest[i : i + rollout.batch_size]) for i in range(0, len(rest), rollout.batch_size)]
    groups = tuple(g for g in (canary, *batches) if g)
    return Schedule(groups, bool(canary), _allowed(rollout.max_failures, len(devices)), rollout.max_failures)


def halt_reason(plan: Schedule, index: int, done: Sequence[DeviceResult]) -> str | None:
    """After group ``index``: why the remaining groups must not start, or None."""
    if index == 0 and plan.canary and any(r.failed for r in done[-len(plan.groups[0]) :]):
        return "halted: the canary failed"
    failures = sum(1 for r in done if r.failed)
    if failures >= plan.allowed_failures:
        return f"halted: {failures} device(s) failed (max_failures {plan.max_failures})"
    return None


def estimate_seconds(device: Device) -> float:
    """Worst case for one device: three probes (baseline, after, confirm) with retries, plus its requests."""
    # Each step of an attempt has its own timeout; a stalled attempt waits on about four of them
    # (connect/banner, EHLO, TLS, the final dot) before it is given up.
    probes = sum(
        3 * ms.probe.retries * (ms.probe.timeout * 4 + ms.probe.retry_delay) for ms in device.mail_servers
    )
    return probes + _REQUEST_BUDGET * len(device.mail_servers or [1]) * _SECONDS_PER_REQUEST


def _allowed(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return max(1, int(total * float(value[:-1]) / 100 + 0.999))
    return max(1, int(value))
