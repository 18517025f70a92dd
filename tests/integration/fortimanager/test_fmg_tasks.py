"""fortiauto's own tasks (read -> diff -> apply) through FortiManager, ``FortiManagerCmdb`` as their seam.

This is the FortiManager transaction minus the probe, at the client level: plan from
FortiManager's objects, write them under the ADOM lock, commit, install to one device; a second
plan is empty; the undo (the changes' pre-images written back, created objects deleted) plus a
re-install restores the device byte for byte. The device's REST API is only read, never written.
"""

from __future__ import annotations

import base64
from typing import Any

from fortiauto.desired import recommended
from fortiauto.fortimanager import FortiManagerClient
from fortiauto.fortimanager.cmdb import FortiManagerCmdb
from fortiauto.fortimanager.connect import route_for
from fortiauto.fortimanager.device_api import FortiManagerDeviceApi
from fortiauto.fortios.connect import client_for
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.results import Change
from fortiauto.site.loader import load_site
from fortiauto.tasks import ORDER, REGISTRY, Target
from tests.integration.fortimanager.conftest import FmgLab

VERSION = FortiOSVersion.parse("7.0.15")


def targets(env: FmgLab) -> dict[str, Target]:
    site = load_site(env.lab.state_dir / "site.yml")
    device = site.device("fgt-001")
    server = device.mail_servers[0]
    desired = recommended(server, VERSION)
    return {name: Target(server, device.vdom, VERSION, desired[name]) for name in ORDER if name in desired}


async def plan(cmdb: FortiManagerCmdb, env: FmgLab) -> list[tuple[Any, Change]]:
    """Read and diff as the transaction does: fortiauto's tables from FortiManager, facts (the
    vdom's NGFW mode) from the unit's own API, read only (``FortiManagerDeviceApi``)."""
    site = load_site(env.lab.state_dir / "site.yml")
    assert site.fortimanager is not None
    device = site.device(cmdb.device)
    changes = []
    async with client_for(device) as unit:
        reader = FortiManagerDeviceApi(
            cmdb.fmg,
            unit,
            route=route_for(device, site.fortimanager),
            spec=site.fortimanager,
            workspace=False,
        )
        for name, target in targets(env).items():
            changes += await _diff(REGISTRY[name](), reader, target)
    return changes


async def _diff(task: Any, reader: FortiManagerDeviceApi, target: Target) -> list[tuple[Any, Change]]:
    diff = task.diff(target, await task.read(reader, target))
    assert diff.changes or diff.noop_reason, task.name
    return [(task, change) for change in diff.changes]


async def undo(cmdb: FortiManagerCmdb, changes: list[tuple[Any, Change]]) -> None:
    for _, change in reversed(changes):
        if change.action in ("create", "import"):
            await cmdb.delete(change.path, change.mkey, vdom=change.vdom)
        else:
            await cmdb.update(change.path, change.mkey, change.before or {}, vdom=change.vdom)


def client(env: FmgLab) -> FortiManagerClient:
    return FortiManagerClient(env.url, token=env.fmg.mock.token, verify=env.ca_path, poll_interval=0.01)


async def test_tasks_plan_apply_install_noop_and_undo_through_fortimanager(env: FmgLab) -> None:
    device = env.lab.device("fgt-001")
    before = device.store.dump()
    async with client(env) as fmg:
        cmdb = FortiManagerCmdb(fmg, device="fgt-001", package="mail-edge-fgt-001", vdom="root")
        changes = await plan(cmdb, env)
        assert [(c.task, c.action) for _, c in changes] == [
            ("certificate", "import"),
            ("protocol_options", "create"),
            ("ssl_profile", "create"),
            ("emailfilter", "create"),
            ("policy", "update"),
        ]
        async with fmg.workspace():
            for task, change in changes:
                await task.apply(cmdb, change, targets(env)[change.task])
            await fmg.commit()
            preview = await fmg.install_preview("mail-edge-fgt-001", device="fgt-001", vdom="root")
            await fmg.install_package("mail-edge-fgt-001", device="fgt-001", vdom="root")
        seen = device.inspection("vip-mx1")
        assert (seen.ssl_mode, seen.proxy, seen.utm, seen.logs_smtp) == ("replace", True, True, True)
        assert 'set ssl-ssh-profile "protect-mx1"' in preview

        writes = fmg.counts.writes
        assert await plan(cmdb, env) == []  # a second run: nothing to change, nothing written
        assert fmg.counts.writes == writes

        async with fmg.workspace():
            await undo(cmdb, changes)
            await fmg.commit()
            await fmg.install_package("mail-edge-fgt-001", device="fgt-001", vdom="root")
    assert device.store.dump() == before
    assert device.requests.writes == 0  # the unit's API was only read (its NGFW mode)
    assert env.fmg.mock.requests.installs == 2


async def test_shared_dynamic_certificate_keeps_the_other_devices_mapping(env: FmgLab) -> None:
    async with client(env) as fmg:
        one = FortiManagerCmdb(fmg, device="fgt-001", package="mail-edge-fgt-001")
        two = FortiManagerCmdb(fmg, device="fgt-002", package="mail-edge-fgt-002")
        body = {
            "certname": "fa-shared",
            "file_content": _b64((env.lab.state_dir / "certs" / "mx1.pem").read_text()),
            "key_file_content": _b64((env.lab.state_dir / "certs" / "mx1.key").read_text()),
        }
        async with fmg.workspace():
            await one.monitor_post("vpn-certificate/local/import", body)
            await two.monitor_post("vpn-certificate/local/import", body)
            await one.delete("vpn.certificate/local", "fa-shared")
            left = await fmg.get_dynamic_certificate("fa-shared")
            assert left is not None
            assert left["dynamic_mapping"] == [
                {"_scope": [{"name": "fgt-002", "vdom": "root"}], "local-cert": "fa-shared"}
            ]
            assert await one.get_one("vpn.certificate/local", "fa-shared") is None
            assert await two.get_one("vpn.certificate/local", "fa-shared") is not None
            await two.delete("vpn.certificate/local", "fa-shared")
            assert await fmg.get_dynamic_certificate("fa-shared") is None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
