"""fortiauto's FortiManager client against the mock FortiManager over real HTTPS, end to end.

The FortiManager transaction's calls in order: read, lock, write the objects (device-DB
certificate, dynamic mapping, SSL/SSH profile, email filter profile, the policy), commit,
preview, install, and the undo that restores the device byte for byte. The device's own REST
API sees none of it; its data plane sees the result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fortiauto import errors
from fortiauto.fortimanager import FortiManagerClient
from fortiauto.site.loader import load_site
from fortiauto_lab.errors import LabInputError
from fortiauto_lab.server import start_lab
from tests.integration.fortimanager.conftest import FmgLab

DEVICE, VDOM, PKG = "fgt-001", "root", "mail-edge-fgt-001"  # the lab gives each unit its own package
PROFILE = {
    "name": "protect-mx1",
    "comment": "fortiauto: Protecting SSL Server for mx1",
    "server-cert-mode": "replace",
    "server-cert": ["fa-mx1"],
    "smtps": {"status": "deep-inspection", "ports": [465]},
    "ssl": {"inspect-all": "disable"},
}
EMAILFILTER = {  # as fortiauto creates it: spam checks on (a profile that checks nothing logs nothing)
    "name": "mail-inbound",
    "feature-set": "proxy",
    "spam-log": "enable",
    "spam-filtering": "enable",
    "options": "spamfsip spamfsurl spamfschksum",
    "smtp": {"log-all": "enable", "action": "tag"},
}


def client(env: FmgLab, **kwargs) -> FortiManagerClient:
    mock = env.fmg.mock
    auth = kwargs.pop("auth", "token")
    creds = (
        {"token": mock.token} if auth == "token" else {"username": mock.username, "password": mock.password}
    )
    return FortiManagerClient(env.url, verify=env.ca_path, poll_interval=0.01, **creds, **kwargs)


def device_state(env: FmgLab, name: str = DEVICE) -> bytes:
    device = env.lab.device(name)
    return env.thread.call(lambda: _dump(device))


async def _dump(device):
    return device.store.dump()


def device_requests(env: FmgLab, name: str = DEVICE) -> int:
    return env.lab.device(name).requests.total


def mx1_pair(env: FmgLab) -> tuple[str, str]:
    certs = env.lab.state_dir / "certs"
    return (certs / "mx1.pem").read_text(), (certs / "mx1.key").read_text()


async def apply_change(fmg: FortiManagerClient, env: FmgLab, package: str = PKG) -> None:
    cert, key = mx1_pair(env)
    async with fmg.workspace():
        await fmg.add_device_certificate(DEVICE, VDOM, name="fa-mx1", cert_pem=cert, key_pem=key)
        await fmg.map_dynamic_certificate("fa-mx1", device=DEVICE, vdom=VDOM, local_cert="fa-mx1")
        await fmg.add_object("firewall/ssl-ssh-profile", PROFILE)
        await fmg.add_object("emailfilter/profile", EMAILFILTER)
        await fmg.update_policy(
            package,
            1,
            {
                "ssl-ssh-profile": ["protect-mx1"],
                "emailfilter-profile": ["mail-inbound"],
                "inspection-mode": "proxy",
            },
        )
        await fmg.commit()
        await fmg.install_package(package, device=DEVICE, vdom=VDOM, comment="fortiauto run 1")


async def test_reads_devices_objects_policy_and_workspace_mode(env: FmgLab) -> None:
    async with client(env) as fmg:
        devices = {d.name: d for d in await fmg.devices()}
        policy = await fmg.get_policy(PKG, 1)
        profile = await fmg.get_object("firewall/ssl-ssh-profile", "certificate-inspection")
        missing = await fmg.get_object("firewall/ssl-ssh-profile", "protect-mx1")
        workspace = await fmg.workspace_enabled()
        revisions = await fmg.revisions()
    assert sorted(devices) == ["fgt-001", "fgt-002"]
    one = devices["fgt-001"]
    assert (one.model, one.version, one.conn_status, one.conf_status, one.ha_mode) == (
        "FortiGate-VM64",
        "7.0.15",
        "up",
        "insync",
        "standalone",
    )
    assert one.packages == {"root": PKG}
    assert policy is not None
    assert policy["ssl-ssh-profile"] == ["certificate-inspection"]
    assert policy["dstaddr"] == ["vip-mx1"]
    assert profile is not None
    assert missing is None
    assert workspace is True
    assert revisions == []


async def test_apply_through_fortimanager_changes_the_device_without_its_rest_api(env: FmgLab) -> None:
    before_requests = device_requests(env)
    async with client(env) as fmg:
        await apply_change(fmg, env)
        (revision,) = await fmg.revisions()
        one = await fmg.device(DEVICE)
        two = await fmg.device("fgt-002")
    device = env.lab.device(DEVICE)
    policy = device.store.get(VDOM, "firewall/policy", 1)
    assert policy["ssl-ssh-profile"] == "protect-mx1"
    assert policy["inspection-mode"] == "proxy"
    cert = device.store.get(VDOM, "vpn.certificate/local", "fa-mx1")
    assert cert["private-key"].startswith("-----BEGIN")
    # The data plane sees the change at the next connection: Protecting SSL Server, logging SMTP.
    seen = device.inspection("vip-mx1")
    assert (seen.ssl_mode, seen.proxy, seen.logs_smtp) == ("replace", True, True)
    assert device_requests(env) == before_requests
    assert "fortiauto run 1" in revision.description
    assert one is not None
    assert one.in_sync
    assert two is not None
    assert two.db_status == "nomod"  # its own package does not use the new objects: nothing pending there
    assert env.lab.device("fgt-002").store.get(VDOM, "firewall/policy", 1)["ssl-ssh-profile"] == (
        "certificate-inspection"
    )
    assert env.fmg.mock.requests.installs == 1


async def test_a_change_to_a_shared_package_is_pending_for_the_other_unit(shared_env: FmgLab) -> None:
    env = shared_env
    async with client(env) as fmg:
        assert await fmg.package_scope("mail-edge") == [("fgt-001", VDOM), ("fgt-002", VDOM)]
        await apply_change(fmg, env, package="mail-edge")
        one = await fmg.device(DEVICE)
        two = await fmg.device("fgt-002")
    assert one is not None
    assert (one.conf_status, one.db_status) == ("insync", "nomod")
    assert two is not None
    assert (two.packages, two.db_status) == ({VDOM: "mail-edge"}, "mod")  # installed later by anyone
    assert env.lab.device("fgt-002").store.get(VDOM, "firewall/policy", 1)["ssl-ssh-profile"] == (
        "certificate-inspection"
    )


async def test_an_object_a_package_uses_cannot_be_deleted(env: FmgLab) -> None:
    async with client(env) as fmg:
        await apply_change(fmg, env)  # fgt-001's package now uses protect-mx1
        assert await fmg.package_scope(PKG) == [(DEVICE, VDOM)]
        async with fmg.workspace():
            with pytest.raises(errors.FortiManagerAPIError) as info:
                await fmg.delete_object("firewall/ssl-ssh-profile", "protect-mx1")
        assert await fmg.get_object("firewall/ssl-ssh-profile", "protect-mx1") is not None
    assert info.value.code == -10131


async def test_undo_and_reinstall_restores_the_device_byte_for_byte(env: FmgLab) -> None:
    before = device_state(env)
    async with client(env) as fmg:
        await apply_change(fmg, env)
        assert device_state(env) != before
        async with fmg.workspace():
            await fmg.update_policy(
                PKG,
                1,
                {
                    "ssl-ssh-profile": ["certificate-inspection"],
                    "emailfilter-profile": ["default"],
                    "inspection-mode": "flow",
                },
            )
            await fmg.delete_object("emailfilter/profile", "mail-inbound")
            await fmg.delete_object("firewall/ssl-ssh-profile", "protect-mx1")
            await fmg.delete_dynamic_certificate("fa-mx1")
            await fmg.delete_device_certificate(DEVICE, VDOM, "fa-mx1")
            await fmg.commit()
            await fmg.install_package(PKG, device=DEVICE, vdom=VDOM)
    assert device_state(env) == before


async def test_no_op_install_changes_nothing(env: FmgLab) -> None:
    before = device_state(env)
    async with client(env) as fmg:
        async with fmg.workspace():
            preview = await fmg.install_preview(PKG, device=DEVICE, vdom=VDOM)
            await fmg.install_package(PKG, device=DEVICE, vdom=VDOM)
        assert await fmg.revisions() == []
    assert preview == "=== Preview result ===\n"
    assert device_state(env) == before


async def test_preview_shows_the_cli_and_masks_the_key(env: FmgLab) -> None:
    cert, key = mx1_pair(env)
    async with client(env) as fmg:
        async with fmg.workspace():
            await fmg.add_device_certificate(DEVICE, VDOM, name="fa-mx1", cert_pem=cert, key_pem=key)
            await fmg.map_dynamic_certificate("fa-mx1", device=DEVICE, vdom=VDOM, local_cert="fa-mx1")
            await fmg.add_object("firewall/ssl-ssh-profile", PROFILE)
            await fmg.update_policy(PKG, 1, {"ssl-ssh-profile": ["protect-mx1"]})
            await fmg.commit()
            text = await fmg.install_preview(PKG, device=DEVICE, vdom=VDOM)
    assert 'config firewall ssl-ssh-profile\n    edit "protect-mx1"' in text
    assert 'set server-cert "fa-mx1"' in text
    assert 'set ssl-ssh-profile "protect-mx1"' in text
    assert "set private-key ENC ********" in text
    assert "PRIVATE KEY" not in text
    assert env.lab.device(DEVICE).store.get(VDOM, "firewall/policy", 1)["ssl-ssh-profile"] == (
        "certificate-inspection"
    )


async def test_writes_need_the_workspace_lock(env: FmgLab) -> None:
    before = device_state(env)
    async with client(env) as fmg:
        with pytest.raises(errors.FortiManagerNoPermission) as info:
            await fmg.update_policy(PKG, 1, {"ssl-ssh-profile": ["deep-inspection"]})
    assert info.value.code == -10147
    assert device_state(env) == before


async def test_unlock_without_commit_discards_the_changes(env: FmgLab) -> None:
    async with client(env, auth="session") as fmg:
        async with fmg.workspace():
            await fmg.update_policy(PKG, 1, {"ssl-ssh-profile": ["deep-inspection"]})
        policy = await fmg.get_policy(PKG, 1)
    assert policy is not None
    assert policy["ssl-ssh-profile"] == ["certificate-inspection"]


async def test_lock_held_by_another_admin_is_refused_and_nothing_changes(env: FmgLab) -> None:
    env.faults("lock-held-by=jdoe")
    before = device_state(env)
    async with client(env) as fmg:
        with pytest.raises(errors.WorkspaceLocked) as info:
            await apply_change(fmg, env)
        holder = await fmg.lock_info()
    assert info.value.holder == "jdoe"
    assert info.value.exit_code == 5
    assert holder is not None
    assert holder.user == "jdoe"
    assert device_state(env) == before
    assert env.fmg.mock.requests.writes == 1  # only the refused lock


async def test_install_that_fails_half_way_leaves_part_of_the_change(env: FmgLab) -> None:
    env.faults("install-fail-after=1")
    before = env.lab.device(DEVICE).store.get(VDOM, "firewall/policy", 1)
    async with client(env) as fmg:
        with pytest.raises(errors.InstallFailed, match="lab fault: install failed after 1 change") as info:
            await apply_change(fmg, env)
        found = await fmg.device(DEVICE)
    store = env.lab.device(DEVICE).store
    assert store.exists(VDOM, "vpn.certificate/local", "fa-mx1")  # the first change landed
    assert not store.exists(VDOM, "firewall/ssl-ssh-profile", "protect-mx1")
    assert store.get(VDOM, "firewall/policy", 1) == before
    assert info.value.task_id > 0
    assert found is not None
    assert found.db_status == "mod"


async def test_stuck_task_times_out_without_touching_the_device(env: FmgLab) -> None:
    env.faults("task-stuck")
    before = device_state(env)
    async with client(env) as fmg:
        async with fmg.workspace():
            with pytest.raises(errors.TaskTimeout) as info:
                await fmg.install_package(PKG, device=DEVICE, vdom=VDOM, timeout=0.2)
    assert info.value.percent == 10
    assert device_state(env) == before


async def test_bad_writes_are_mapped(env: FmgLab) -> None:
    async with client(env) as fmg:
        async with fmg.workspace():
            with pytest.raises(errors.FortiManagerAlreadyExists):
                await fmg.add_object("firewall/ssl-ssh-profile", {"name": "certificate-inspection"})
            with pytest.raises(errors.FortiManagerInvalidData):
                await fmg.add_object("emailfilter/profile", {"name": "x", "no-such-attribute": 1})
            with pytest.raises(errors.FortiManagerInvalidData):
                await fmg.update_policy(PKG, 1, {"ssl-ssh-profile": ["no-such-profile"]})
            with pytest.raises(errors.FortiManagerInvalidData):
                await fmg.delete_object("emailfilter/profile", "default")  # policy 1 uses it
            with pytest.raises(errors.FortiManagerNotFound):
                await fmg.update_object("emailfilter/profile", "nope", {"comment": "x"})
            with pytest.raises(errors.FortiManagerInvalidData):
                await fmg.add_device_certificate(DEVICE, VDOM, name="bad", cert_pem="x", key_pem="y")


async def test_wrong_password_and_wrong_api_key(env: FmgLab) -> None:
    with pytest.raises(errors.FortiManagerAuthError):
        async with FortiManagerClient(env.url, username="fortiauto", password="wrong", verify=env.ca_path):
            pass
    async with FortiManagerClient(env.url, token="not-the-key", verify=env.ca_path) as fmg:
        with pytest.raises(errors.FortiManagerAuthError):
            await fmg.devices()


async def test_tls_is_verified(env: FmgLab) -> None:
    async with FortiManagerClient(env.url, token=env.fmg.mock.token) as fmg:  # system CAs only
        with pytest.raises(errors.FortiManagerTransportError, match="verification failed"):
            await fmg.devices()


async def test_logout_gives_the_lock_back(env: FmgLab) -> None:
    fmg = client(env, auth="session")
    await fmg.open()
    await fmg.lock()
    await fmg.close()
    async with client(env) as other:
        assert await other.lock_info() is None


def test_control_api_counts_requests(env: FmgLab) -> None:
    with env.control() as http:
        assert http.get("/__lab__/requests").json()["total"] == 0
        assert http.post("/__lab__/faults", content="no-such-fault").status_code == 400
        state = http.get("/__lab__/state").json()
    assert state["packages"][PKG]["scope member"] == [{"name": DEVICE, "vdom": VDOM}]
    assert sorted(state["packages"]) == ["mail-edge-fgt-001", "mail-edge-fgt-002"]
    assert "PRIVATE KEY" not in json.dumps(state)


def test_the_lab_routes_each_unit_to_its_own_package(env: FmgLab) -> None:
    state = env.lab.state_dir
    info = json.loads((state / "lab.json").read_text())["fortimanager"]
    assert (info["package_layout"], info["packages"]) == (
        "per-device",
        {"fgt-001": "mail-edge-fgt-001", "fgt-002": "mail-edge-fgt-002"},
    )
    site = load_site(state / "site.yml")
    routes = {d.name: (d.fortimanager.package, d.fortimanager.vdom) for d in site.devices if d.fortimanager}
    assert routes == {"fgt-001": ("mail-edge-fgt-001", "root"), "fgt-002": ("mail-edge-fgt-002", "root")}


async def test_an_unknown_package_layout_is_refused_before_the_lab_starts(tmp_path: Path) -> None:
    with pytest.raises(LabInputError, match="--fortimanager-packages must be one of per-device, shared"):
        await start_lab(tmp_path / "lab", fortimanager=True, fortimanager_packages="one-each")
    assert not (tmp_path / "lab").exists()
