"""``FortiManagerDeviceApi`` and ``SiteConnections`` against the in-process lab with its FortiManager.

What the transaction relies on, with real HTTPS on both sides: tables fortiauto manages are
read and written in FortiManager, facts come from the unit, the unit's API is never written;
readiness tells "not here" (exit 2) from "not now" (exit 5); an install is proven by reading
the unit itself, so a unit that does not hold what was installed fails the install; a
refused write stages nothing; a run logs in to FortiManager once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr

from fortiauto import errors
from fortiauto.fortimanager.device_api import FortiManagerDeviceApi, SiteConnections
from fortiauto.site import Site
from fortiauto.site.loader import load_site
from tests.integration.fortimanager.conftest import FmgLab

PROTOCOL_OPTIONS = "firewall/profile-protocol-options"


def lab_site(env: FmgLab, **fortimanager: Any) -> Site:
    site = load_site(env.lab.state_dir / "site.yml")
    assert site.fortimanager is not None
    spec = site.fortimanager.model_copy(update=fortimanager)
    return site.model_copy(update={"fortimanager": spec})


@asynccontextmanager
async def routed(site: Site, name: str = "fgt-001") -> AsyncIterator[FortiManagerDeviceApi]:
    async with SiteConnections(site) as connections, connections(site.device(name)) as api:
        assert isinstance(api, FortiManagerDeviceApi)
        api.fmg._poll = 0.01  # follow the lab's tasks without waiting a second per poll
        yield api


def on_lab(env: FmgLab, fn: Any) -> Any:
    async def run() -> Any:
        return fn()

    return env.thread.call(run)


class HidingUnit:
    """The unit's client, except that one table reads as empty: a unit that lost what was installed."""

    def __init__(self, unit: Any, hidden: str) -> None:
        self._unit = unit
        self._hidden = hidden

    async def get_one(self, path: str, mkey: Any, **kwargs: Any) -> Any:
        if path == self._hidden:
            return None
        return await self._unit.get_one(path, mkey, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)


async def test_managed_tables_live_in_fortimanager_facts_on_the_unit_which_is_never_written(
    env: FmgLab,
) -> None:
    unit = env.lab.device("fgt-001")
    async with routed(lab_site(env)) as api:
        await api.system_status()
        seen = unit.requests.total
        fmg_seen = api.fmg.counts.total
        assert await api.get("system/central-management")  # a fact: from the unit
        assert unit.requests.total == seen + 1
        policies = await api.get("firewall/policy")  # fortiauto's table: from FortiManager's package
        inbound = next(p for p in policies if p["policyid"] == 1)
        assert inbound["dstaddr"] == [{"name": "vip-mx1"}]  # in the unit's REST shape
        assert api.fmg.counts.total == fmg_seen + 1
        with pytest.raises(errors.PlanError, match="does not write system/global"):
            await api.update("system/global", "", {"hostname": "x"})
        with pytest.raises(errors.PlanError, match="does not post"):
            await api.monitor_post("system/config/backup", {})
    assert unit.requests.writes == 0
    assert env.fmg.mock.requests.writes == 0  # the refused writes never left fortiauto


async def test_readiness_tells_not_here_from_not_now(env: FmgLab) -> None:
    async with routed(lab_site(env)) as api:
        ready = await api.readiness()
        assert ready.refusal is None
        assert "package mail-edge-fgt-001, device fgt-001/root" in ready.route

    site = lab_site(env)
    wrong = site.device("fgt-001").model_copy(
        update={"fortimanager": site.device("fgt-001").fortimanager.model_copy(update={"package": "other"})}
    )
    async with SiteConnections(site) as connections, connections(wrong) as api:
        with pytest.raises(errors.PlanError, match="installs package 'mail-edge-fgt-001'"):
            await api.readiness()  # type: ignore[attr-defined]

    env.faults("lock-held-by=jdoe")
    async with routed(lab_site(env)) as api:
        locked = await api.readiness()
        assert locked.refusal is not None
        assert "locked by 'jdoe'" in locked.refusal
    site = lab_site(env, lock_wait=1.0)
    async with (
        SiteConnections(site, writing=False) as connections,
        connections(site.device("fgt-001")) as api,
    ):
        planning = await api.readiness()  # type: ignore[attr-defined]
        assert planning.refusal is None
        assert any("apply waits up to 1 s" in note for note in planning.notes)
    async with routed(site) as api:
        waited = await api.readiness()  # apply waits before the baseline probe, then refuses
        assert waited.refusal is not None
        assert "locked by 'jdoe' after waiting 1 s" in waited.refusal
    env.faults("{}")

    unit = env.lab.device("fgt-001")
    on_lab(env, lambda: unit.store.update("root", "firewall/policy", 1, {"comments": "changed on the unit"}))
    async with routed(lab_site(env)) as api:
        drifted = await api.readiness()
        assert drifted.refusal is not None
        assert "out of sync" in drifted.refusal


async def test_an_install_is_proven_on_the_unit(env: FmgLab) -> None:
    unit = env.lab.device("fgt-001")
    body = {"name": "fa-proof", "comment": "fortiauto test", "smtp": {"ports": "25", "status": "enable"}}
    async with routed(lab_site(env)) as api:
        await api.create(PROTOCOL_OPTIONS, body, mkey="fa-proof")
        # FortiManager installs the objects the package's policies use: the policy takes it up.
        inbound = await api.get_one("firewall/policy", 1)
        assert inbound is not None
        await api.update("firewall/policy", 1, {"profile-protocol-options": "fa-proof"})
        real = api.unit
        api.unit = HidingUnit(real, PROTOCOL_OPTIONS)  # the unit does not show what was installed
        with pytest.raises(errors.ReadBackMismatch) as caught:
            await api.install("apply")
        assert f"{PROTOCOL_OPTIONS}/fa-proof: not as installed" in str(caught.value)
        assert on_lab(env, lambda: unit.store.exists("root", PROTOCOL_OPTIONS, "fa-proof"))
        preview = api.report()["install_preview"]
        assert preview is not None
        assert 'edit "fa-proof"' in preview

        api.unit = real
        original = {"profile-protocol-options": inbound["profile-protocol-options"]}
        await api.update("firewall/policy", 1, original)
        await api.delete(PROTOCOL_OPTIONS, "fa-proof")
        await api.install("undo")  # proven: the unit no longer has it
        assert not on_lab(env, lambda: unit.store.exists("root", PROTOCOL_OPTIONS, "fa-proof"))
        report = api.report()
        assert (report["installs"], len(report["install_tasks"]), report["changes"]) == (2, 2, 4)
    assert unit.requests.writes == 0


async def test_a_refused_write_stages_nothing_and_installs_nothing(env: FmgLab) -> None:
    async with routed(lab_site(env)) as api:
        existing = (await api.get(PROTOCOL_OPTIONS))[0]["name"]
        with pytest.raises(errors.AlreadyExists) as caught:
            await api.create(PROTOCOL_OPTIONS, {"name": existing}, mkey=existing)
        assert isinstance(caught.value.__cause__, errors.FortiManagerAlreadyExists)
        await api.install("apply")
        assert api.report()["installs"] == 0
        assert env.fmg.mock.adom.lock is not None  # the write took the ADOM lock ...
    assert env.fmg.mock.adom.lock is None  # ... and leaving the device gave it back
    assert env.fmg.mock.requests.installs == 0


async def test_a_run_logs_in_to_fortimanager_once(env: FmgLab) -> None:
    mock = env.fmg.mock
    site = lab_site(env, token=None, username=mock.username, password=SecretStr(mock.password))
    async with SiteConnections(site) as connections:
        for name in ("fgt-001", "fgt-002"):
            async with connections(site.device(name)) as api:
                assert isinstance(api, FortiManagerDeviceApi)
                ready = await api.readiness()
                assert ready.refusal is None
        assert len(mock._sessions) == 1  # the mock's session table: one login for both devices
    assert mock._sessions == {}  # logged out when the run ended


async def test_a_login_that_fails_is_every_routed_devices_invalid_input(env: FmgLab) -> None:
    site = lab_site(env, token=None, username="fortiauto", password=SecretStr("not-the-password"))
    async with SiteConnections(site) as connections:
        for name in ("fgt-001", "fgt-002"):
            with pytest.raises(errors.AuthError, match="check the username/password"):
                async with connections(site.device(name)):
                    pass


def release_after_a_lock_attempt(env: FmgLab) -> None:
    """jdoe gives the lock back once fortiauto has tried to take it (and was told to wait)."""
    deadline = time.monotonic() + 10
    with env.control() as http:
        while time.monotonic() < deadline:
            log = http.get("/__lab__/requests").json()["log"]
            if any(e["url"].endswith("/workspace/lock") for e in log):
                break
            time.sleep(0.05)
    env.faults("{}")


async def test_a_lock_released_while_waiting_is_taken_and_held_until_the_device_is_done(env: FmgLab) -> None:
    env.faults("lock-held-by=jdoe")
    async with routed(lab_site(env, lock_wait=10.0)) as api:
        release = asyncio.create_task(asyncio.to_thread(release_after_a_lock_attempt, env))
        ready = await api.readiness()
        await release
        assert ready.refusal is None
        assert any("waited for jdoe's lock" in note for note in ready.notes)
        lock = env.fmg.mock.adom.lock
        assert lock is not None
        assert lock.user != "jdoe"
    assert env.fmg.mock.adom.lock is None


async def test_routed_devices_take_turns_while_writing_and_read_together_while_planning(env: FmgLab) -> None:
    site = lab_site(env)
    one, two = site.device("fgt-001"), site.device("fgt-002")
    async with SiteConnections(site, writing=False) as planning, planning(one), planning(two) as second:
        assert await second.get("firewall/policy")  # both open at once: plan reads concurrently

    entered: list[str] = []
    async with SiteConnections(site, writing=True) as applying:

        async def second_device() -> None:
            async with applying(two):
                entered.append("fgt-002")

        async with applying(one):
            waiting = asyncio.create_task(second_device())
            for _ in range(50):  # let the second device run as far as it can
                await asyncio.sleep(0.01)
            assert entered == []  # it waits for its turn: fgt-001 is not done
            entered.append("fgt-001 done")
        await waiting
    assert entered == ["fgt-001 done", "fgt-002"]


def shared_site(env: FmgLab) -> Site:
    """The lab's site with both units routed to the one package ``mail-edge`` (``shared_env``)."""
    site = lab_site(env)
    devices = []
    for device in site.devices:
        assert device.fortimanager is not None
        entry = device.fortimanager.model_copy(update={"package": "mail-edge"})
        devices.append(device.model_copy(update={"fortimanager": entry}))
    return site.model_copy(update={"devices": devices})


def scope_reads(env: FmgLab) -> dict[str, int]:
    """How often each package's installation targets were read, from FortiManager's request log."""
    with env.control() as http:
        log = http.get("/__lab__/requests").json()["log"]
    reads: dict[str, int] = {}
    for entry in log:
        if entry["url"].startswith("/pm/pkg/adom/root/"):
            reads[entry["url"]] = reads.get(entry["url"], 0) + 1
    return reads


async def test_a_shared_package_is_refused_before_any_write_naming_the_other_unit(shared_env: FmgLab) -> None:
    env = shared_env
    before = env.fmg.mock.dump()
    site = shared_site(env)
    for writing in (True, False):  # apply and plan alike
        async with SiteConnections(site, writing=writing) as connections:
            for name, other in (("fgt-001", "fgt-002"), ("fgt-002", "fgt-001")):
                async with connections(site.device(name)) as api:
                    ready = await api.readiness()  # type: ignore[attr-defined]
                    assert ready.refusal is not None
                    assert f"'mail-edge' also installs to {other}/root" in ready.refusal
                    assert "without a probe or an undo" in ready.refusal
                    assert f"give {name} its own policy package" in ready.refusal
    mock = env.fmg.mock
    assert (mock.requests.writes, mock.requests.installs) == (0, 0)  # no lock either
    assert mock.adom.lock is None
    assert mock.dump() == before
    assert scope_reads(env) == {"/pm/pkg/adom/root/mail-edge": 2}  # once per run, not per device


async def test_each_package_scope_is_read_once_per_run(env: FmgLab) -> None:
    site = lab_site(env)
    async with SiteConnections(site, writing=False) as connections:
        for name in ("fgt-001", "fgt-002", "fgt-001"):
            async with connections(site.device(name)) as api:
                ready = await api.readiness()  # type: ignore[attr-defined]
                assert ready.refusal is None
    assert scope_reads(env) == {
        "/pm/pkg/adom/root/mail-edge-fgt-001": 1,
        "/pm/pkg/adom/root/mail-edge-fgt-002": 1,
    }
    assert env.fmg.mock.requests.writes == 0


async def test_a_unit_of_a_shared_package_with_someone_elses_change_pending_names_both(
    shared_env: FmgLab,
) -> None:
    """Another admin changed the shared package in FortiManager: pending for both, refused with the hint."""
    env = shared_env
    mock = env.fmg.mock

    def other_admins_change() -> None:
        mock.adom.workspace_mode = "disabled"
        mock.adom.policy_write("mail-edge", "update", 1, {"comments": "jdoe's change"})
        mock.adom.workspace_mode = "normal"

    on_lab(env, other_admins_change)
    site = shared_site(env)
    async with SiteConnections(site) as connections, connections(site.device("fgt-001")) as api:
        ready = await api.readiness()  # type: ignore[attr-defined]
    assert ready.refusal is not None
    assert "not installed yet" in ready.refusal
    assert "also installs to fgt-002/root" in ready.refusal
    assert "give fgt-001 its own policy package" in ready.refusal
    assert (mock.requests.writes, mock.requests.installs) == (0, 0)
