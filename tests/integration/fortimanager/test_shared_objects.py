"""The shared-object rule against the mock FortiManager over real HTTPS: reads answered as FortiManager does.

The package list (``/pm/pkg/adom/<adom>``), each package's policies with ``fields``, and the
ADOM's profile groups come from the mock's own store; the rule then refuses an update of an
ADOM object another unit's package uses, directly or through a profile group, with reads only
(judged by the mock's request log), and lets through one that only this unit's package uses.
"""

from __future__ import annotations

from typing import Any

from fortiauto.fortimanager import FortiManagerClient
from fortiauto.fortimanager.connect import Route
from fortiauto.fortimanager.device_api import FortiManagerDeviceApi
from fortiauto.fortimanager.shared_objects import GROUP_FIELDS, POLICY_FIELDS
from fortiauto.results import Change
from fortiauto.site.models import FortiManagerSpec
from tests.integration.fortimanager.conftest import FmgLab
from tests.integration.fortimanager.test_fmg_client import client, device_state

GROUP = {
    "name": "branch-utm",
    "emailfilter-profile": ["default"],
    "ssl-ssh-profile": ["certificate-inspection"],
    "profile-protocol-options": ["default"],
}


def update(path: str, name: str) -> Change:
    return Change(task="t", path=path, mkey=name, action="update", before={}, after={"comment": "x"})


def routed(fmg: FortiManagerClient, env: FmgLab, device: str) -> FortiManagerDeviceApi:
    spec = FortiManagerSpec(url=env.url, token=env.fmg.mock.token)
    route = Route(url=env.url, adom="root", device=device, package=f"mail-edge-{device}", vdom="root")
    return FortiManagerDeviceApi(fmg.view(device), unit=None, route=route, spec=spec, workspace=True)  # type: ignore[arg-type]


def log_since(env: FmgLab, start: int) -> list[dict[str, Any]]:
    return list(env.fmg.mock.requests.log)[start:]


async def test_the_package_list_and_each_packages_references_are_answered_from_the_store(env: FmgLab) -> None:
    async with client(env) as fmg:
        assert await fmg.package_paths() == ("mail-edge-fgt-001", "mail-edge-fgt-002")
        rows = await fmg.package_references("mail-edge-fgt-002", POLICY_FIELDS)
    inbound = next(r for r in rows if r["policyid"] == 1)
    # References as FortiManager spells them (lists of names), only the fields asked for.
    assert inbound["emailfilter-profile"] == ["default"]
    assert inbound["ssl-ssh-profile"] == ["certificate-inspection"]
    assert set(inbound) <= {*POLICY_FIELDS, "name", "policyid"}
    assert "srcintf" not in inbound


async def test_an_update_of_an_object_another_package_uses_is_refused_reading_only(env: FmgLab) -> None:
    start = len(env.fmg.mock.requests.log)
    async with client(env) as fmg:
        # Every lab package's inbound policy uses the factory email filter profile "default".
        refusal = await routed(fmg, env, "fgt-001").plan_refusal([update("emailfilter/profile", "default")])
        ssl = await routed(fmg, env, "fgt-001").plan_refusal(
            [update("firewall/ssl-ssh-profile", "protect-x")]
        )
    assert refusal is not None
    assert "emailfilter/profile 'default' is used by policy package mail-edge-fgt-002" in refusal
    assert "emailfilter_profile: default-fgt-001" in refusal
    assert ssl is None  # an object no other package uses may be updated
    new = log_since(env, start)
    assert [(e["method"], e["url"]) for e in new] == [
        ("get", "/pm/pkg/adom/root"),
        ("get", "/pm/config/adom/root/pkg/mail-edge-fgt-002/firewall/policy"),
    ]  # read once for both plans, never this unit's own package; nothing written
    assert all(e["code"] == 0 for e in new)


async def test_a_profile_group_of_another_package_holding_the_profile_refuses(env: FmgLab) -> None:
    pristine = device_state(env, "fgt-001")
    async with client(env) as fmg:
        async with fmg.workspace(enabled=True):
            await fmg.add_object("firewall/profile-group", GROUP)
            await fmg.add_object("firewall/ssl-ssh-profile", {"name": "branch-ssl"})
            await fmg.update_object(
                "firewall/profile-group", "branch-utm", {"ssl-ssh-profile": ["branch-ssl"]}
            )
            await fmg.update_policy(
                "mail-edge-fgt-002", 1, {"profile-type": "group", "profile-group": ["branch-utm"]}
            )
            await fmg.commit()
        groups = await fmg.profile_groups(GROUP_FIELDS)
        assert [g["name"] for g in groups] == ["branch-utm"]
        assert groups[0]["ssl-ssh-profile"] == ["branch-ssl"]
        start = len(env.fmg.mock.requests.log)
        refusal = await routed(fmg, env, "fgt-001").plan_refusal(
            [update("firewall/ssl-ssh-profile", "branch-ssl")]
        )
        group = await routed(fmg, env, "fgt-001").plan_refusal(
            [update("firewall/profile-group", "branch-utm")]
        )
    assert refusal is not None
    assert "firewall/ssl-ssh-profile 'branch-ssl' is used by policy package mail-edge-fgt-002" in refusal
    assert group is not None
    assert "firewall/profile-group 'branch-utm' is used by policy package mail-edge-fgt-002" in group
    assert all(e["method"] == "get" for e in log_since(env, start))
    assert device_state(env, "fgt-001") == pristine


async def test_an_install_of_the_other_package_carries_its_profile_group(env: FmgLab) -> None:
    """Why the rule holds: the group (an ADOM object) reaches the unit whose package uses it."""
    async with client(env) as fmg:
        async with fmg.workspace(enabled=True):
            await fmg.add_object("firewall/profile-group", GROUP)
            await fmg.update_policy(
                "mail-edge-fgt-002", 1, {"profile-type": "group", "profile-group": ["branch-utm"]}
            )
            await fmg.commit()
            await fmg.install_package("mail-edge-fgt-002", device="fgt-002", vdom="root", timeout=30)
    unit = env.lab.device("fgt-002").store
    assert unit.exists("root", "firewall/profile-group", "branch-utm")
    assert unit.get("root", "firewall/policy", 1)["profile-group"] == "branch-utm"
    assert not env.lab.device("fgt-001").store.exists("root", "firewall/profile-group", "branch-utm")
