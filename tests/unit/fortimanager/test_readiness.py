"""Readiness before the first write: which FortiManager states refuse a unit, and why."""

from __future__ import annotations

import pytest

from fortiauto.errors import PlanError, Refused
from fortiauto.fortimanager import ManagedDevice
from fortiauto.fortimanager.connect import workspace_setting
from fortiauto.fortimanager.readiness import check_ready
from fortiauto.site.models import FortiManagerSpec


def unit(**raw) -> ManagedDevice:
    base = {
        "name": "fgt-1",
        "conn_status": "up",
        "conf_status": "insync",
        "db_status": "nomod",
        "vdom": [{"name": "root", "assignment info": [{"name": "mail", "type": "policy"}]}],
    }
    return ManagedDevice.from_fmg(base | raw)


def check(found: ManagedDevice | None, package: str = "mail", vdom: str = "root") -> None:
    check_ready(found, device="fgt-1", vdom=vdom, package=package, adom="root")


def test_a_clean_unit_is_ready() -> None:
    check(unit())


@pytest.mark.parametrize(
    ("found", "package", "vdom", "error", "fragment"),
    [
        (None, "mail", "root", PlanError, "has no device 'fgt-1'"),
        (unit(), "mail", "dmz", PlanError, "has no vdom 'dmz'"),
        (unit(), "other", "root", PlanError, "installs package 'mail'"),
        (unit(conn_status=2), "mail", "root", Refused, "connection down"),
        (unit(conf_status="outofsync"), "mail", "root", Refused, "out of sync"),
        (unit(db_status="mod"), "mail", "root", Refused, "not installed yet"),
    ],
)
def test_refusals(found, package: str, vdom: str, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment) as info:
        check(found, package, vdom)
    assert info.value.exit_code == (2 if error is PlanError else 5)


@pytest.mark.parametrize(("mode", "flag"), [("auto", None), ("lock", True), ("off", False)])
def test_workspace_setting(mode: str, flag: bool | None) -> None:
    spec = FortiManagerSpec(
        url="https://fmg.example.net", token="abcdefghij0123456789abcdefghij", workspace=mode
    )
    assert workspace_setting(spec) is flag
