"""FortiManagerClient against a scripted FortiManager: auth, codes, lock, install, preview."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from fortiauto import errors
from fortiauto.fortimanager import FortiManagerClient
from tests.unit.fortimanager.conftest import (
    BASE,
    PASSWORD,
    SESSION,
    TOKEN,
    USERNAME,
    FakeFMG,
    fail,
    ok,
)


def session_client(fmg: FakeFMG, **kwargs) -> FortiManagerClient:
    return FortiManagerClient(
        BASE, username=USERNAME, password=PASSWORD, transport=httpx.MockTransport(fmg), **kwargs
    )


def token_client(fmg: FakeFMG, **kwargs) -> FortiManagerClient:
    return FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg), **kwargs)


async def test_session_login_uses_the_session_and_logs_out(fmg: FakeFMG) -> None:
    fmg.reply("get", "/sys/status", ok("/sys/status", {"Version": "v7.4.5"}))
    async with session_client(fmg) as client:
        assert await client.get("/sys/status") == {"Version": "v7.4.5"}
    login, status, logout = fmg.bodies
    assert login["params"][0]["data"] == {"user": USERNAME, "passwd": PASSWORD}
    assert "session" not in login
    assert status["session"] == SESSION
    assert status["verbose"] == 1
    assert logout["method"] == "exec"
    assert logout["params"][0]["url"] == "/sys/logout"
    assert logout["session"] == SESSION
    assert client.counts.to_json() == {"total": 1, "writes": 0, "installs": 0}


async def test_api_key_goes_in_the_bearer_header_and_never_logs_in(fmg: FakeFMG) -> None:
    fmg.reply("get", "/sys/status", ok("/sys/status", {}))
    async with token_client(fmg) as client:
        await client.get("/sys/status")
    assert fmg.calls() == [("get", "/sys/status")]
    assert fmg.headers[0]["authorization"] == f"Bearer {TOKEN}"
    assert "session" not in fmg.bodies[0]
    assert "access_token" not in str(fmg.bodies[0])


async def test_refused_login_is_an_auth_error(fmg: FakeFMG) -> None:
    fmg.reply("exec", "/sys/login/user", fail("/sys/login/user", -11, "No permission for the resource"))
    with pytest.raises(errors.FortiManagerAuthError, match="No permission"):
        async with session_client(fmg):
            pass


async def test_http_401_is_an_auth_error(fmg: FakeFMG) -> None:
    client = FortiManagerClient(
        BASE, token=TOKEN, transport=httpx.MockTransport(lambda r: httpx.Response(401, text="no"))
    )
    async with client:
        with pytest.raises(errors.FortiManagerAuthError):
            await client.get("/sys/status")


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-3, errors.FortiManagerNotFound),
        (-6, errors.FortiManagerNotFound),
        (-2, errors.FortiManagerAlreadyExists),
        (-10, errors.FortiManagerInvalidData),
        (-10131, errors.FortiManagerInvalidData),
        (-11, errors.FortiManagerNoPermission),
        (-10147, errors.FortiManagerNoPermission),
        (-20042, errors.FortiManagerAPIError),
    ],
)
async def test_status_codes_map_to_the_error_tree(fmg: FakeFMG, code: int, cls: type) -> None:
    url = "/pm/config/adom/root/obj/firewall/ssl-ssh-profile"
    fmg.reply("add", url, fail(url, code, "refused"))
    async with token_client(fmg) as client:
        with pytest.raises(cls) as info:
            await client.add_object("firewall/ssl-ssh-profile", {"name": "p"})
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.url == url
    assert info.value.exit_code == 4


async def test_a_missing_object_reads_as_none(fmg: FakeFMG) -> None:
    url = "/pm/config/adom/root/obj/emailfilter/profile/mail-inbound"
    fmg.reply("get", url, fail(url, -3, "Object does not exist"))
    async with token_client(fmg) as client:
        assert await client.get_object("emailfilter/profile", "mail-inbound") is None


async def test_names_with_a_slash_are_escaped(fmg: FakeFMG) -> None:
    url = "/pm/config/adom/lab/obj/firewall/address/net_10.0.0.0\\/8"
    fmg.reply("get", url, ok(url, {"name": "net_10.0.0.0/8"}))
    async with token_client(fmg, adom="lab") as client:
        assert await client.get_object("firewall/address", "net_10.0.0.0/8") == {"name": "net_10.0.0.0/8"}


async def test_malformed_answer_is_an_api_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"nothing": True}))
    async with FortiManagerClient(BASE, token=TOKEN, transport=transport) as client:
        with pytest.raises(errors.FortiManagerAPIError, match="no result"):
            await client.get("/sys/status")


async def test_connect_failure_and_lost_write_answer() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["method"] == "get":
            raise httpx.ConnectError("All connection attempts failed")
        raise httpx.ReadTimeout("timed out")

    async with FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(errors.FortiManagerTransportError, match="could not connect"):
            await client.get("/sys/status")
        with pytest.raises(errors.FortiManagerTransportError, match="answer was lost") as info:
            await client.set_object("firewall/ssl-ssh-profile", "p", {"name": "p"})
    assert info.value.in_flight is True


def test_bad_inputs_are_refused_before_any_request() -> None:
    with pytest.raises(errors.InputError, match="not both"):
        FortiManagerClient(BASE, token=TOKEN, username="u", password="p")
    with pytest.raises(errors.InputError, match="API key"):
        FortiManagerClient(BASE, username="u")
    with pytest.raises(errors.InputError, match="plain http"):
        FortiManagerClient("http://fmg.test", token=TOKEN)


async def test_workspace_mode_lock_commit_unlock(fmg: FakeFMG) -> None:
    fmg.reply("get", "/cli/global/system/global", ok("x", {"workspace-mode": "normal"}))
    for action in ("lock", "commit", "unlock"):
        fmg.reply("exec", f"/dvmdb/adom/root/workspace/{action}", ok(action))
    async with token_client(fmg) as client:
        async with client.workspace():
            await client.commit()
    assert [u for _, u in fmg.calls("exec")] == [
        "/dvmdb/adom/root/workspace/lock",
        "/dvmdb/adom/root/workspace/commit",
        "/dvmdb/adom/root/workspace/unlock",
    ]


async def test_workspace_off_takes_no_lock(fmg: FakeFMG) -> None:
    fmg.reply("get", "/cli/global/system/global", ok("x", {"workspace-mode": "disabled"}))
    async with token_client(fmg) as client:
        async with client.workspace():
            pass
    assert fmg.calls("exec") == []


async def test_workspace_unlocks_even_when_the_block_fails(fmg: FakeFMG) -> None:
    for action in ("lock", "unlock"):
        fmg.reply("exec", f"/dvmdb/adom/root/workspace/{action}", ok(action))
    async with token_client(fmg) as client:
        with pytest.raises(RuntimeError):
            async with client.workspace(enabled=True):
                raise RuntimeError("write failed")
    assert fmg.calls("exec")[-1] == ("exec", "/dvmdb/adom/root/workspace/unlock")


async def test_lock_held_by_another_admin_is_refused_with_the_holder(fmg: FakeFMG) -> None:
    url = "/dvmdb/adom/root/workspace/lock"
    fmg.reply("exec", url, fail(url, -20055, "Workspace is locked by other user"))
    info = [{"lock_user": "jdoe", "lock_sid": 77, "lock_time": 1700000000, "adom_dirty": 1}]
    fmg.reply("get", "/dvmdb/adom/root/workspace/lockinfo", ok("x", info))
    async with token_client(fmg) as client:
        with pytest.raises(errors.WorkspaceLocked) as caught:
            async with client.workspace(enabled=True):
                pytest.fail("the block must not run without the lock")
    assert caught.value.holder == "jdoe"
    assert caught.value.exit_code == 5
    assert isinstance(caught.value, errors.Refused)
    assert "unlock" not in str(fmg.calls())


def task_answer(task_id: int, *, percent: int, state: str, num_err: int = 0, detail: str = "") -> dict:
    line = {"name": "fgt-001", "detail": detail or state, "err": num_err, "percent": percent}
    data = {"id": task_id, "percent": percent, "state": state, "num_err": num_err, "line": [line]}
    return ok(f"/task/task/{task_id}", data)


async def test_install_follows_the_task_to_its_end(fmg: FakeFMG, no_wait: list[float]) -> None:
    fmg.reply("exec", "/securityconsole/install/package", ok("x", {"task": 42}))
    fmg.add(
        "get",
        "/task/task/42",
        [
            lambda b: task_answer(42, percent=0, state="pending"),
            lambda b: task_answer(42, percent=50, state="running"),
            lambda b: task_answer(42, percent=100, state="done", detail="install and save finished"),
        ],
    )
    async with token_client(fmg, poll_interval=0.25) as client:
        task = await client.install_package("mail-edge", device="fgt-001", vdom="root", comment="fortiauto")
    assert task.succeeded
    assert task.lines == ("fgt-001: install and save finished",)
    assert no_wait == [0.25, 0.25]
    sent = fmg.bodies[0]["params"][0]["data"]
    assert sent == {
        "adom": "root",
        "pkg": "mail-edge",
        "scope": [{"name": "fgt-001", "vdom": "root"}],
        "flags": ["none"],
        "dev_rev_comments": "fortiauto",
    }
    assert client.counts.installs == 1


async def test_install_that_ends_with_errors_raises_install_failed(
    fmg: FakeFMG, no_wait: list[float]
) -> None:
    fmg.reply("exec", "/securityconsole/install/package", ok("x", {"task": 7}))
    fmg.reply(
        "get", "/task/task/7", task_answer(7, percent=100, state="error", num_err=1, detail="copy failed")
    )
    async with token_client(fmg) as client:
        with pytest.raises(errors.InstallFailed, match="copy failed") as info:
            await client.install_package("mail-edge", device="fgt-001", vdom="root")
    assert info.value.task_id == 7


async def test_stuck_task_times_out(fmg: FakeFMG, no_wait: list[float]) -> None:
    fmg.reply("exec", "/securityconsole/install/package", ok("x", {"task": 9}))
    fmg.reply("get", "/task/task/9", task_answer(9, percent=30, state="running"))
    async with token_client(fmg) as client:
        with pytest.raises(errors.TaskTimeout) as info:
            await client.install_package("mail-edge", device="fgt-001", vdom="root", timeout=0)
    assert (info.value.task_id, info.value.percent) == (9, 30)


async def test_install_preview_runs_the_four_steps_and_returns_the_device_cli(
    fmg: FakeFMG, no_wait: list[float]
) -> None:
    fmg.reply("exec", "/securityconsole/install/package", ok("x", {"task": 1}))
    fmg.reply("exec", "/securityconsole/install/preview", ok("x", {"task": 2}))
    for task_id in (1, 2):
        fmg.reply("get", f"/task/task/{task_id}", task_answer(task_id, percent=100, state="done"))
    message = json.dumps([{"name": "fgt-001", "result": "config firewall policy\n    edit 1\nend\n"}])
    fmg.reply("exec", "/securityconsole/preview/result", ok("x", {"message": message}))
    fmg.reply("exec", "/securityconsole/package/cancel/install", ok("x"))
    async with token_client(fmg) as client:
        text = await client.install_preview("mail-edge", device="fgt-001", vdom="root")
    assert text == "config firewall policy\n    edit 1\nend\n"
    assert fmg.bodies[0]["params"][0]["data"]["flags"] == ["preview"]
    assert fmg.calls("exec")[-1] == ("exec", "/securityconsole/package/cancel/install")


async def test_devices_and_revisions(fmg: FakeFMG) -> None:
    device = {
        "name": "fgt-001",
        "hostname": "fgt-001",
        "sn": "FGVMLAB000000001",
        "platform_str": "FortiGate-VM64",
        "os_ver": 7,
        "mr": 0,
        "patch": 15,
        "build": 632,
        "ha_mode": "AP",
        "ha_slave": [
            {"name": "fgt-001", "sn": "FGVMLAB000000001", "role": "master", "prio": 200},
            {"name": "fgt-001-b", "sn": "FGVMLABP00000001", "role": "slave", "prio": 100},
        ],
        "conn_status": 1,
        "conf_status": 2,
        "db_status": "nomod",
        "vdom": [{"name": "root", "assignment info": [{"name": "mail-edge", "type": "policy"}]}],
    }
    fmg.reply("get", "/dvmdb/adom/root/device", ok("x", [device]))
    revisions = [{"version": 2, "name": "b", "created_by": "x"}, {"version": 1, "name": "a"}]
    fmg.reply("get", "/dvmdb/adom/root/revision", ok("x", revisions))
    async with token_client(fmg) as client:
        (found,) = await client.devices()
        revs = await client.revisions()
    assert fmg.bodies[0]["params"][0]["option"] == ["extra info", "assignment info"]
    assert (found.version, found.ha_mode, found.conn_status, found.conf_status) == (
        "7.0.15",
        "a-p",
        "up",
        "outofsync",
    )
    assert [m.role for m in found.ha_members] == ["primary", "secondary"]
    assert found.packages == {"root": "mail-edge"}
    assert not found.in_sync
    assert [r.version for r in revs] == [1, 2]


async def test_certificate_import_and_dynamic_mapping(fmg: FakeFMG) -> None:
    cert_url = "/pm/config/device/fgt-001/vdom/root/vpn/certificate/local"
    dyn_url = "/pm/config/adom/root/obj/dynamic/certificate/local"
    fmg.reply("add", cert_url, ok(cert_url, {"name": "fa-mx1"}))
    fmg.reply("get", f"{dyn_url}/fa-mx1", fail("x", -3, "Object does not exist"))
    fmg.reply("add", dyn_url, ok(dyn_url))
    async with token_client(fmg) as client:
        await client.add_device_certificate(
            "fgt-001", "root", name="fa-mx1", cert_pem="CERT", key_pem="KEY", passphrase="PW"
        )
        await client.map_dynamic_certificate("fa-mx1", device="fgt-001", vdom="root", local_cert="fa-mx1")
    assert fmg.bodies[0]["params"][0]["data"] == {
        "name": "fa-mx1",
        "certificate": "CERT",
        "private-key": "KEY",
        "password": "PW",
    }
    assert fmg.bodies[2]["params"][0]["data"] == {
        "name": "fa-mx1",
        "dynamic_mapping": [{"_scope": [{"name": "fgt-001", "vdom": "root"}], "local-cert": "fa-mx1"}],
    }
    assert client.counts.writes == 2


async def test_overlapping_workspaces_share_one_lock(fmg: FakeFMG) -> None:
    for action in ("lock", "commit", "unlock"):
        fmg.reply("exec", f"/dvmdb/adom/root/workspace/{action}", ok(action))
    inside = asyncio.Event()
    release = asyncio.Event()

    async with token_client(fmg) as client:

        async def first() -> None:
            async with client.workspace(enabled=True):
                inside.set()
                await release.wait()
                await client.commit()

        async def second() -> None:
            await inside.wait()
            async with client.workspace(enabled=True):
                await client.commit()
            assert [u.rsplit("/", 1)[1] for _, u in fmg.calls("exec")] == ["lock", "commit"]
            release.set()

        await asyncio.gather(first(), second())
    assert [u.rsplit("/", 1)[1] for _, u in fmg.calls("exec")] == ["lock", "commit", "commit", "unlock"]
