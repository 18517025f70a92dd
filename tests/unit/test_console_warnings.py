"""Warnings a human must see reach the console, not only the report files (issue 20).

A warning that arises after the plan was printed (a retired certificate kept because something
still uses it, a changed certificate issuer), and every plan warning when no plan is printed
(``apply --yes`` under the live view), is printed under the device's final line, once.
"""

from __future__ import annotations

import io

from fortiauto.report.console import ConsoleReporter, make_console
from fortiauto.report.live import LiveReporter
from fortiauto.results import DeviceResult, Plan

KEPT = "kept certificate fa-mx1-0badc0de: still referenced by 1 object(s)"
ISSUER = "certificate issuer changed: Old CA -> New CA"
PLANNED = "ssl-ssh-profile protect-mx1 is referenced by 2 objects; the change applies to all of them"


def _console():
    buffer = io.StringIO()
    return make_console(file=buffer), buffer


def _result(*warnings: str) -> DeviceResult:
    plan = Plan(device="fgt-1", version="7.2.10", changes=(), warnings=warnings)
    return DeviceResult(name="fgt-1", status="changed", reason="applied and probe passed", plan=plan)


def test_plain_console_prints_the_warnings_that_came_after_the_plan_once():
    console, buffer = _console()
    reporter = ConsoleReporter(console)
    reporter.change_planned("fgt-1", Plan(device="fgt-1", version="7.2.10", changes=(), warnings=(PLANNED,)))
    reporter.device_finished(_result(PLANNED, KEPT, ISSUER))
    text = buffer.getvalue()
    assert text.count(PLANNED) == 1  # printed with the plan, not again
    assert f"! warning: {KEPT}" in text
    assert f"! warning: {ISSUER}" in text
    assert text.index("fgt-1: changed") < text.index(KEPT)


def test_without_a_printed_plan_every_warning_is_printed():
    console, buffer = _console()
    reporter = ConsoleReporter(console, show_plans=False)
    reporter.change_planned("fgt-1", Plan(device="fgt-1", version="7.2.10", changes=(), warnings=(PLANNED,)))
    reporter.device_finished(_result(PLANNED, KEPT))
    text = buffer.getvalue()
    assert f"! warning: {PLANNED}" in text
    assert f"! warning: {KEPT}" in text


def test_live_view_prints_them_above_the_view():
    console, buffer = _console()
    with LiveReporter(console, ["fgt-1"], auto_refresh=False) as live:  # no diff shown: --yes
        live.change_planned("fgt-1", Plan(device="fgt-1", version="7.2.10", changes=(), warnings=(PLANNED,)))
        live.device_finished(_result(PLANNED, KEPT, ISSUER))
    text = buffer.getvalue()
    for warning in (PLANNED, KEPT, ISSUER):
        assert text.count(f"! warning: {warning}") == 1


def test_a_device_without_warnings_prints_one_line():
    console, buffer = _console()
    reporter = ConsoleReporter(console)
    reporter.device_finished(_result())
    assert buffer.getvalue().splitlines() == ["fgt-1: changed - applied and probe passed"]
