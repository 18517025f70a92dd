"""The shared-object rule: fortiauto updates an ADOM object only when no other policy package uses it.

ADOM objects (the email filter, SSL/SSH and protocol options profiles, the profile group) are
shared by every package of the ADOM, and an install sends the objects a package's policies
use: an update of one another package uses would stay pending there, installed later without
a probe or an undo. Decided before any write from the package list and the other packages'
policies (read once per run's session, and only for a plan that updates an ADOM object); an
unreadable package list or policy table refuses too. Judged by what FakeFMG received; the
transaction's part (asked per plan with changes, refused with nothing written, shown by plan)
on the in-memory fake unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from fortiauto import errors
from fortiauto.fortimanager import FortiManagerClient
from fortiauto.fortimanager.connect import Route
from fortiauto.fortimanager.device_api import FortiManagerDeviceApi
from fortiauto.fortimanager.shared_objects import shared_refusal, updated_objects, users
from fortiauto.results import Change, RequestCounts
from fortiauto.site.models import FortiManagerSpec
from tests.unit.fakes import FakeFortiGate, run_journaled
from tests.unit.fortimanager.conftest import BASE, TOKEN, FakeFMG, fail, ok

PACKAGES_URL = "/pm/pkg/adom/root"
OWN = "mail-edge-fgt-1"
OTHER = "mail-edge-fgt-2"
GROUPS_URL = "/pm/config/adom/root/obj/firewall/profile-group"


def policies_url(package: str) -> str:
    return f"/pm/config/adom/root/pkg/{package}/firewall/policy"


def change(path: str, name: str, action: Any = "update") -> Change:
    return Change(task="t", path=path, mkey=name, action=action, before={}, after={"comment": "x"})


UPDATE_FILTER = change("emailfilter/profile", "mail-shared")
CREATES = (
    change("firewall/profile-protocol-options", "smtp-inbound", "create"),
    change("firewall/ssl-ssh-profile", "protect-mx1", "create"),
    change("emailfilter/profile", "mail-inbound", "create"),
    change("firewall/policy", "1"),
    change("vpn.certificate/local", "fa-mx1", "import"),
)


def mail_policy(policyid: int, **refs: Any) -> dict[str, Any]:
    return {"policyid": policyid, "name": f"p{policyid}", "profile-type": "single", **refs}


# --- the rule, pure ---------------------------------------------------------------------------


def test_only_updates_of_adom_objects_count_never_creates_nor_the_policy() -> None:
    assert updated_objects(CREATES) == ()
    plan = (*CREATES, UPDATE_FILTER, UPDATE_FILTER, change("firewall/profile-group", "grp"))
    assert updated_objects(plan) == (
        ("emailfilter/profile", "mail-shared"),
        ("firewall/profile-group", "grp"),
    )


def test_a_direct_reference_from_another_package_is_named_with_the_remedy() -> None:
    updated = updated_objects([UPDATE_FILTER])
    shared = users(updated, {OTHER: [mail_policy(7, **{"emailfilter-profile": ["mail-shared"]})]}, {})
    assert shared == {("emailfilter/profile", "mail-shared"): [OTHER]}
    refusal = shared_refusal(shared, device="fgt-1")
    text = str(refusal)
    assert refusal.exit_code == 5
    assert "emailfilter/profile 'mail-shared' is used by policy package mail-edge-fgt-2" in text
    assert "pending for their units and be installed there later without a probe or an undo" in text
    assert "nothing was changed" in text
    assert "emailfilter_profile: mail-shared-fgt-1" in text
    assert "so fortiauto creates it instead of changing a shared one" in text
    assert "\n" not in text


def test_a_reference_through_a_profile_group_counts() -> None:
    updated = (("firewall/ssl-ssh-profile", "protect-mx1"),)
    grouped = mail_policy(3, **{"profile-type": "group", "profile-group": ["branch-utm"]})
    groups = {"branch-utm": {"name": "branch-utm", "ssl-ssh-profile": ["protect-mx1"]}}
    assert users(updated, {OTHER: [grouped]}, groups) == {updated[0]: [OTHER]}
    other_group = {"branch-utm": {"name": "branch-utm", "ssl-ssh-profile": ["deep-inspection"]}}
    assert users(updated, {OTHER: [grouped]}, other_group) == {}


def test_an_updated_profile_group_is_found_by_the_policies_naming_it() -> None:
    updated = (("firewall/profile-group", "mail-group"),)
    grouped = mail_policy(3, **{"profile-type": "group", "profile-group": ["mail-group"]})
    shared = users(updated, {OTHER: [grouped]}, {})
    assert shared == {updated[0]: [OTHER]}
    assert "a profile group of its own in FortiManager" in str(shared_refusal(shared, device="fgt-1"))


def test_many_packages_are_named_five_and_counted() -> None:
    updated = updated_objects([UPDATE_FILTER])
    policies = {f"pkg-{n}": [mail_policy(1, **{"emailfilter-profile": "mail-shared"})] for n in range(8)}
    text = str(shared_refusal(users(updated, policies, {}), device="fgt-1"))
    assert "used by policy packages pkg-0, pkg-1, pkg-2, pkg-3, pkg-4 and 3 more): the change" in text


# --- through the routed device: reads, their cost, a failed read ---------------------------


def packages_answer(*names: str, folder: dict[str, Any] | None = None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [{"name": n, "type": "pkg"} for n in names]
    if folder is not None:
        rows.append(folder)
    return ok(PACKAGES_URL, rows)


def policies_answer(package: str, *rows: dict[str, Any]) -> dict[str, Any]:
    return ok(policies_url(package), list(rows))


class Unit:
    """The unit's own API as far as a FortiManager write asks it (its status: no version known)."""

    counts = RequestCounts()

    async def system_status(self) -> Any:
        return SimpleNamespace(version=None)


def routed_api(client: FortiManagerClient, device: str = "fgt-1") -> FortiManagerDeviceApi:
    spec = FortiManagerSpec(url=BASE, token=TOKEN)
    route = Route(url=BASE, adom="root", device=device, package=f"mail-edge-{device}", vdom="root")
    return FortiManagerDeviceApi(
        client.view(device),
        unit=Unit(),  # type: ignore[arg-type]
        route=route,
        spec=spec,
        workspace=False,
    )


def client_for(fmg: FakeFMG) -> FortiManagerClient:
    return FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg))


async def test_a_plan_that_only_creates_objects_asks_fortimanager_nothing(fmg: FakeFMG) -> None:
    async with client_for(fmg) as client:
        assert await routed_api(client).plan_refusal(CREATES) is None
    assert fmg.calls() == []


async def test_an_update_used_by_another_package_is_refused_with_reads_only(fmg: FakeFMG) -> None:
    fmg.reply("get", PACKAGES_URL, packages_answer(OWN, OTHER))
    fmg.reply(
        "get",
        policies_url(OTHER),
        policies_answer(OTHER, mail_policy(7, **{"emailfilter-profile": ["mail-shared"]})),
    )
    async with client_for(fmg) as client:
        refusal = await routed_api(client).plan_refusal([*CREATES, UPDATE_FILTER])
    assert refusal is not None
    assert "emailfilter/profile 'mail-shared' is used by policy package mail-edge-fgt-2" in refusal
    assert TOKEN not in refusal
    # The package list and the OTHER package's policies (never this unit's own), reads only.
    assert fmg.calls() == [("get", PACKAGES_URL), ("get", policies_url(OTHER))]
    asked = fmg.bodies[1]["params"][0]["fields"]
    assert {"emailfilter-profile", "ssl-ssh-profile", "profile-protocol-options", "profile-group"} <= set(
        asked
    )


async def test_an_object_only_this_units_package_uses_may_be_updated(fmg: FakeFMG) -> None:
    fmg.reply("get", PACKAGES_URL, packages_answer(OWN, OTHER))
    fmg.reply(
        "get",
        policies_url(OTHER),
        policies_answer(OTHER, mail_policy(1, **{"emailfilter-profile": ["default"]})),
    )
    fmg.reply(
        "get",
        policies_url(OWN),
        policies_answer(OWN, mail_policy(1, **{"emailfilter-profile": ["mail-shared"]})),
    )
    async with client_for(fmg) as client:
        assert await routed_api(client).plan_refusal([UPDATE_FILTER]) is None
    assert ("get", policies_url(OWN)) not in fmg.calls()


async def test_a_profile_group_of_another_package_holding_the_object_refuses(fmg: FakeFMG) -> None:
    folder = {"name": "branches", "type": "folder", "subobj": [{"name": "br-7", "type": "pkg"}]}
    fmg.reply("get", PACKAGES_URL, packages_answer(OWN, folder=folder))
    grouped = mail_policy(4, **{"profile-type": "group", "profile-group": ["branch-utm"]})
    fmg.reply("get", policies_url("branches/br-7"), policies_answer("branches/br-7", grouped))
    fmg.reply(
        "get", GROUPS_URL, ok(GROUPS_URL, [{"name": "branch-utm", "emailfilter-profile": ["mail-shared"]}])
    )
    async with client_for(fmg) as client:
        refusal = await routed_api(client).plan_refusal([UPDATE_FILTER])
    assert refusal is not None
    assert "'mail-shared' is used by policy package branches/br-7" in refusal
    assert fmg.calls() == [("get", PACKAGES_URL), ("get", policies_url("branches/br-7")), ("get", GROUPS_URL)]


async def test_profile_groups_are_not_read_when_no_policy_names_one(fmg: FakeFMG) -> None:
    fmg.reply("get", PACKAGES_URL, packages_answer(OWN, OTHER))
    fmg.reply("get", policies_url(OTHER), policies_answer(OTHER, mail_policy(1)))
    async with client_for(fmg) as client:
        assert await routed_api(client).plan_refusal([UPDATE_FILTER]) is None
    assert ("get", GROUPS_URL) not in fmg.calls()


@pytest.mark.parametrize("failing", [PACKAGES_URL, policies_url(OTHER)])
async def test_a_failed_read_refuses(fmg: FakeFMG, failing: str) -> None:
    fmg.reply("get", PACKAGES_URL, packages_answer(OWN, OTHER))
    fmg.reply("get", policies_url(OTHER), policies_answer(OTHER, mail_policy(1)))
    fmg.reply("get", failing, fail(failing, -11, "No permission for the resource"))
    async with client_for(fmg) as client:
        refusal = await routed_api(client).plan_refusal([UPDATE_FILTER])
    assert refusal is not None
    assert "cannot read which policy packages of FortiManager ADOM 'root' use emailfilter/profile" in refusal
    assert "nothing was changed" in refusal
    assert TOKEN not in refusal
    assert fmg.calls("get") == fmg.calls()


async def test_reads_are_made_once_per_session_for_every_unit_of_the_run(fmg: FakeFMG) -> None:
    third = "mail-edge-fgt-3"
    fmg.reply("get", PACKAGES_URL, packages_answer("mail-edge-fgt-1", "mail-edge-fgt-2", third))
    for package in ("mail-edge-fgt-1", "mail-edge-fgt-2", third):
        fmg.reply("get", policies_url(package), policies_answer(package, mail_policy(1)))
    async with client_for(fmg) as client:
        for device in ("fgt-1", "fgt-2", "fgt-3", "fgt-1"):
            assert await routed_api(client, device).plan_refusal([UPDATE_FILTER]) is None
    calls = fmg.calls()
    assert calls.count(("get", PACKAGES_URL)) == 1
    for package in ("mail-edge-fgt-1", "mail-edge-fgt-2", third):
        assert calls.count(("get", policies_url(package))) == 1
    assert len(calls) == 4


async def test_a_policy_written_in_the_run_makes_its_package_read_again(fmg: FakeFMG) -> None:
    fmg.reply("get", PACKAGES_URL, packages_answer("mail-edge-fgt-1", "mail-edge-fgt-2"))
    fmg.add(
        "get",
        policies_url("mail-edge-fgt-2"),
        [
            lambda b: policies_answer("mail-edge-fgt-2", mail_policy(1)),
            lambda b: policies_answer(
                "mail-edge-fgt-2", mail_policy(1, **{"emailfilter-profile": ["mail-shared"]})
            ),
        ],
    )
    fmg.reply("update", policies_url("mail-edge-fgt-2") + "/1", ok(policies_url("mail-edge-fgt-2") + "/1"))
    async with client_for(fmg) as client:
        assert await routed_api(client, "fgt-1").plan_refusal([UPDATE_FILTER]) is None
        # fgt-2's run binds the profile on its own policy (a run's write through FortiManager) ...
        await routed_api(client, "fgt-2").update("firewall/policy", 1, {"emailfilter-profile": "mail-shared"})
        # ... so a later plan of the run sees it, not the policies read before the write.
        refusal = await routed_api(client, "fgt-1").plan_refusal([UPDATE_FILTER])
    assert refusal is not None
    assert "used by policy package mail-edge-fgt-2" in refusal
    assert fmg.calls().count(("get", policies_url("mail-edge-fgt-2"))) == 2
    assert fmg.calls().count(("get", PACKAGES_URL)) == 1


async def test_a_failed_read_is_not_kept(fmg: FakeFMG) -> None:
    fmg.add(
        "get",
        PACKAGES_URL,
        [lambda b: fail(PACKAGES_URL, -11, "No permission for the resource"), lambda b: packages_answer(OWN)],
    )
    async with client_for(fmg) as client:
        with pytest.raises(errors.FortiManagerNoPermission):
            await client.package_paths()
        assert await client.view("x").package_paths() == (OWN,)
    assert fmg.calls() == [("get", PACKAGES_URL), ("get", PACKAGES_URL)]


# --- the transaction asks the route about each plan, and refuses before any write -------------


class PlanCheckingGate(FakeFortiGate):
    """A unit whose route has a rule on the plan (``preflight.ChecksPlan``), as a routed device's has."""

    def __init__(self, refusal: str | None) -> None:
        super().__init__()
        self.refusal = refusal
        self.asked: list[list[tuple[str, str, str]]] = []

    async def plan_refusal(self, changes: Sequence[Change]) -> str | None:
        self.asked.append([(c.path, str(c.mkey), c.action) for c in changes])
        return self.refusal


async def transact(gate: FakeFortiGate, tmp_path: Path, *, check: bool = False) -> tuple[Any, list[Any]]:
    return await run_journaled(gate, tmp_path, check=check)


async def test_a_refused_plan_ends_refused_with_nothing_written(tmp_path: Path) -> None:
    gate = PlanCheckingGate("emailfilter/profile 'x' is used by policy package other")
    before = gate.state()
    result, entries = await transact(gate, tmp_path)
    assert (result.status, result.exit_code) == ("refused", 5)
    assert "emailfilter/profile 'x' is used by policy package other" in result.reason
    assert (gate.writes, gate.state()) == (0, before)
    assert "pre" not in [e["type"] for e in entries]
    assert len(gate.asked) == 1
    assert ("firewall/policy", "1", "update") in gate.asked[0]


async def test_plan_shows_the_refusal_and_writes_nothing(tmp_path: Path) -> None:
    gate = PlanCheckingGate("shared, see FortiManager")
    result, _ = await transact(gate, tmp_path, check=True)
    assert gate.writes == 0
    assert result.plan is not None
    assert "apply would be refused: shared, see FortiManager" in result.plan.warnings


async def test_a_compliant_unit_is_never_asked(tmp_path: Path) -> None:
    gate = PlanCheckingGate(None)
    first, _ = await transact(gate, tmp_path / "first")
    assert first.status == "changed"
    asked = len(gate.asked)
    assert asked >= 1  # the plan with changes was asked about
    again, _ = await transact(gate, tmp_path / "again")
    assert again.status == "unchanged"
    assert len(gate.asked) == asked  # an empty plan asks the route nothing
