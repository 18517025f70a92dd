"""The change board's summary (fortiauto/report/confirm.py): totals, durations, the outage bound."""

from __future__ import annotations

from datetime import UTC, datetime

from fortiauto.report.confirm import duration_text, outage_seconds, plan_totals, totals_line
from fortiauto.results import Change, DeviceResult, Plan, RunResult
from fortiauto.transaction.outcome import Ending, conclude
from tests.unit.fakes import make_device

NOW = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def _planned(name: str, *actions: str, warnings: tuple[str, ...] = ()) -> DeviceResult:
    changes = tuple(Change("t", "p", f"{name}-{i}", a, None, {}) for i, a in enumerate(actions))  # type: ignore[arg-type]
    plan = Plan(name, "7.0.15", changes, warnings=warnings)
    return conclude(name, Ending.PLANNED, "planned", changes=changes, plan=plan)


def test_totals_count_devices_by_outcome_and_objects_by_action():
    devices = (
        _planned("a", "import", "create", "update"),
        _planned("b", "update", "delete"),
        _planned("c", "update", warnings=("apply would be refused: HA secondary",)),
        conclude("d", Ending.COMPLIANT, "already compliant", plan=Plan("d", "7.0.15", ())),
        conclude("e", Ending.UNREACHABLE, "connection refused"),
        conclude("f", Ending.REFUSED, "FortiManager manages it"),
    )
    run = RunResult("r", NOW, NOW, devices, 0)
    totals = plan_totals(run)
    assert (totals.to_change, totals.compliant, totals.refused, totals.failed) == (2, 1, 2, 1)
    assert (totals.create, totals.update, totals.delete) == (2, 2, 1)
    assert totals_line(totals) == (
        "Plan: 2 device(s) to change, 1 already compliant, 2 refused, 1 failed; "
        "objects: 2 to create, 2 to update, 1 to delete"
    )


def test_durations_read_like_a_person_says_them():
    assert [duration_text(s) for s in (0, 45, 60, 200, 3600, 7500)] == [
        "0 s", "45 s", "1 min", "3 min 20 s", "1 h 0 min", "2 h 5 min",
    ]  # fmt: skip


def test_the_outage_bound_is_every_attempt_timing_out_then_the_undo():
    device = make_device()
    spec = device.mail_servers[0].probe
    expected = spec.retries * spec.timeout * 4 + (spec.retries - 1) * spec.retry_delay + 5 * 1.0
    assert outage_seconds(device, 5) == expected
    assert outage_seconds(device, 0) < outage_seconds(device, 5)
