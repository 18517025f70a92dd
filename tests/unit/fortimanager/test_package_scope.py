"""The scope rule: fortiauto changes a policy package only when it installs to this unit alone.

FortiManager installs a whole package, so a change to a package that also installs elsewhere
would stay pending there, installed later by anyone without a probe or an undo. The rule is
decided before any write from the package's ``scope member`` (read once per run's session);
an unreadable scope refuses too.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fortiauto import errors
from fortiauto.fortimanager import FortiManagerClient
from fortiauto.fortimanager.connect import Route
from fortiauto.fortimanager.device_api import FortiManagerDeviceApi
from fortiauto.fortimanager.readiness import check_scope, describe_targets
from fortiauto.site.models import FortiManagerSpec
from tests.unit.fortimanager.conftest import BASE, TOKEN, FakeFMG, fail, ok

OWN = ("fgt-1", "root")
PKG_URL = "/pm/pkg/adom/root/mail"


def check(scope: list[tuple[str, str]]) -> None:
    check_scope(scope, device="fgt-1", vdom="root", package="mail")


def test_a_package_of_this_unit_alone_may_be_changed() -> None:
    check([OWN])
    check([OWN, OWN])  # a repeated member is still this unit alone


@pytest.mark.parametrize(
    ("scope", "named"),
    [
        ([OWN, ("fgt-1", "dmz")], "fgt-1/dmz"),  # another vdom of the same unit gets it too
        ([OWN, ("fgt-2", "root")], "fgt-2/root"),
        ([("fgt-3", "root"), OWN, ("fgt-2", "root")], "fgt-2/root, fgt-3/root"),
        ([OWN, ("branch-units", "")], "branch-units"),  # a device group: its members get it
    ],
)
def test_a_package_that_also_installs_elsewhere_is_refused(scope: list[tuple[str, str]], named: str) -> None:
    with pytest.raises(errors.Refused) as info:
        check(scope)
    text = str(info.value)
    assert info.value.exit_code == 5
    assert f"'mail' also installs to {named}: " in text
    assert "pending for them and be installed there later without a probe or an undo" in text
    assert "nothing was changed" in text
    assert "give fgt-1 its own policy package in FortiManager" in text
    assert "\n" not in text


def test_a_shared_package_is_refused_even_without_this_unit_in_its_scope() -> None:
    with pytest.raises(errors.Refused, match="also installs to fgt-2/root"):
        check([("fgt-2", "root")])


def test_a_package_that_does_not_install_here_is_invalid_input() -> None:
    with pytest.raises(errors.PlanError, match="does not install to fgt-1/root") as info:
        check([])
    assert info.value.exit_code == 2


def test_many_targets_are_named_five_and_counted() -> None:
    targets = [(f"fgt-{n}", "root") for n in range(2, 10)]
    assert (
        describe_targets(targets) == "fgt-2/root, fgt-3/root, fgt-4/root, fgt-5/root, fgt-6/root and 3 more"
    )
    with pytest.raises(errors.Refused, match="fgt-6/root and 3 more: a change"):
        check([OWN, *targets])


# --- the scope read: once per session, and a failed read refuses --------------------------


def scope_answer(*members: tuple[str, str]) -> dict[str, Any]:
    return ok(PKG_URL, {"name": "mail", "scope member": [{"name": d, "vdom": v} for d, v in members]})


def device_answer(body: dict[str, Any]) -> dict[str, Any]:
    row = {
        "name": "fgt-1",
        "conn_status": "up",
        "conf_status": "insync",
        "db_status": "nomod",
        "vdom": [{"name": "root", "assignment info": [{"name": "mail", "type": "policy"}]}],
    }
    return ok(body["params"][0]["url"], row)


def routed_api(fmg: FakeFMG, client: FortiManagerClient) -> FortiManagerDeviceApi:
    spec = FortiManagerSpec(url=BASE, token=TOKEN)
    route = Route(url=BASE, adom="root", device="fgt-1", package="mail", vdom="root")
    return FortiManagerDeviceApi(client.view("fgt-1"), unit=None, route=route, spec=spec, workspace=False)  # type: ignore[arg-type]


async def test_the_scope_is_read_once_per_session_and_shared_by_its_views(fmg: FakeFMG) -> None:
    fmg.reply("get", PKG_URL, scope_answer(OWN, ("fgt-2", "root")))
    async with FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg)) as client:
        one, two = client.view("fgt-1"), client.view("fgt-2")
        assert await one.package_targets("mail") == (OWN, ("fgt-2", "root"))
        assert await two.package_targets("mail") == (OWN, ("fgt-2", "root"))
        assert await client.package_targets("mail") == (OWN, ("fgt-2", "root"))
    assert fmg.calls() == [("get", PKG_URL)]


async def test_a_failed_scope_read_is_not_kept(fmg: FakeFMG) -> None:
    fmg.add(
        "get",
        PKG_URL,
        [lambda b: fail(PKG_URL, -11, "No permission for the resource"), lambda b: scope_answer(OWN)],
    )
    async with FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg)) as client:
        with pytest.raises(errors.FortiManagerNoPermission):
            await client.package_targets("mail")
        assert await client.package_targets("mail") == (OWN,)
    assert fmg.calls() == [("get", PKG_URL), ("get", PKG_URL)]


async def test_an_unreadable_scope_refuses_before_any_write(fmg: FakeFMG) -> None:
    fmg.add("get", "/dvmdb/adom/root/device/fgt-1", device_answer)
    fmg.reply("get", PKG_URL, fail(PKG_URL, -11, "No permission for the resource"))
    async with FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg)) as client:
        ready = await routed_api(fmg, client).readiness()
    assert ready.refusal is not None
    assert "cannot read the installation targets of FortiManager policy package 'mail'" in ready.refusal
    assert "only when it installs to fgt-1 alone; nothing was changed" in ready.refusal
    assert TOKEN not in ready.refusal
    assert fmg.calls("get") == fmg.calls()  # reads only: no lock, no write, no install


async def test_readiness_refuses_a_package_shared_with_another_vdom_of_the_unit(fmg: FakeFMG) -> None:
    fmg.add("get", "/dvmdb/adom/root/device/fgt-1", device_answer)
    fmg.reply("get", PKG_URL, scope_answer(OWN, ("fgt-1", "dmz")))
    async with FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg)) as client:
        api = routed_api(fmg, client)
        ready = await api.readiness()
        again = await api.readiness()
    assert ready.refusal is not None
    assert "'mail' also installs to fgt-1/dmz" in ready.refusal
    assert again == ready
    assert fmg.calls() == [
        ("get", "/dvmdb/adom/root/device/fgt-1"),
        ("get", PKG_URL),
        ("get", "/dvmdb/adom/root/device/fgt-1"),
    ]


async def test_readiness_passes_a_package_of_this_unit_alone(fmg: FakeFMG) -> None:
    fmg.add("get", "/dvmdb/adom/root/device/fgt-1", device_answer)
    fmg.reply("get", PKG_URL, scope_answer(OWN))
    async with FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg)) as client:
        ready = await routed_api(fmg, client).readiness()
    assert ready.refusal is None
    assert ready.route.endswith("package mail, device fgt-1/root)")
