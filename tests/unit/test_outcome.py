"""The one outcome table: what happened to each device -> its status and code -> the fleet's exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

import fortiauto
from fortiauto.results import RequestCounts
from fortiauto.transaction.outcome import SEVERITY, Ending, conclude, fleet_exit_code

E = Ending


def device(ending: Ending, *, wrote: bool = False):
    result = conclude(f"fgt-{ending}", ending, str(ending))
    return result if not wrote else result.__class__(**{**result.__dict__, "requests": RequestCounts(9, 5)})


@pytest.mark.parametrize(
    ("ending", "status", "code"),
    [
        (E.PLANNED, "changed", 0),
        (E.COMPLIANT, "unchanged", 0),
        (E.APPLIED, "changed", 0),
        (E.UNPROVEN, "unproven", 6),
        (E.FALLBACK, "fallback", 6),
        (E.ROLLED_BACK, "rolled_back", 3),
        (E.LEFT_OVER, "failed", 4),
        (E.UNKNOWN, "failed", 4),
        (E.REFUSED, "refused", 5),
        (E.BASELINE_BROKEN, "skipped", 5),
        (E.NOT_STARTED, "skipped", 5),
        (E.INTERRUPTED, "skipped", 5),
        (E.INVALID, "failed", 2),
        (E.UNREACHABLE, "failed", 7),
        (E.RESTORED, "rolled_back", 0),
        (E.NOTHING_TO_UNDO, "unchanged", 0),
        (E.BUG, "failed", 1),
    ],
)
def test_each_ending_has_exactly_one_status_and_code(ending, status, code):
    result = conclude("fgt-1", ending, "why")
    assert (result.status, result.exit_code, result.ending) == (status, code, ending.value)


def test_every_ending_is_in_the_table():
    for ending in Ending:
        assert conclude("x", ending, "").exit_code in SEVERITY


@pytest.mark.parametrize(
    ("fleet", "code"),
    [
        ([], 0),
        ([(E.APPLIED, True), (E.COMPLIANT, False)], 0),
        # One device changed, one refused for bad credentials: the run did touch a firewall, not 2.
        ([(E.APPLIED, True), (E.INVALID, False)], 5),
        ([(E.INVALID, False), (E.INVALID, False)], 2),
        ([(E.APPLIED, True), (E.UNREACHABLE, False)], 7),
        ([(E.INVALID, False), (E.UNREACHABLE, False)], 7),
        ([(E.APPLIED, True), (E.ROLLED_BACK, True), (E.REFUSED, False)], 3),
        ([(E.ROLLED_BACK, True), (E.LEFT_OVER, True)], 4),
        ([(E.APPLIED, True), (E.BUG, True)], 1),
        ([(E.LEFT_OVER, True), (E.BUG, False)], 4),
        ([(E.APPLIED, True), (E.FALLBACK, True)], 6),
        ([(E.APPLIED, True), (E.UNPROVEN, True), (E.NOT_STARTED, False)], 5),
        # Every device skipped for a broken baseline: nothing is compliant, never 0.
        ([(E.BASELINE_BROKEN, False), (E.BASELINE_BROKEN, False)], 5),
        ([(E.RESTORED, True), (E.NOTHING_TO_UNDO, False)], 0),
    ],
)
def test_the_fleet_exit_code_is_the_worst_real_outcome(fleet, code):
    assert fleet_exit_code([device(ending, wrote=wrote) for ending, wrote in fleet]) == code


def test_no_product_module_builds_a_device_result_but_the_outcome_module():
    root = Path(fortiauto.__file__).parent
    builders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "DeviceResult(" in path.read_text() and path.name not in ("results.py", "outcome.py")
    ]
    assert builders == []
