"""pyfmg (the real PyPI FortiManager client) against the mock FortiManager, unchanged.

Session login (``exec sys/login/user``), its workspace-mode check, ``get``, ``update``, ``execute``
(lock, commit, install, unlock), task tracking and logout; and the API-key mode. pyfmg talks
through requests, so the lab CA goes in ``verify_ssl``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyFMG.fortimgr import FMGValidSessionException, FortiManager

from tests.integration.fortimanager.conftest import FmgLab

PKG_POLICY = "/pm/config/adom/root/pkg/mail-edge-fgt-001/firewall/policy/1"  # fgt-001 own package
_OPEN: list[FortiManager] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """pyfmg never closes its requests session; close it so no socket outlives the test."""
    yield
    while _OPEN:
        _OPEN.pop().sess.close()


def made(fmg: FortiManager) -> FortiManager:
    _OPEN.append(fmg)
    return fmg


def host(env: FmgLab) -> str:
    return f"{env.fmg.host}:{env.fmg.port}"


def session(env: FmgLab) -> FortiManager:
    mock = env.fmg.mock
    return made(
        FortiManager(host(env), mock.username, mock.password, verify_ssl=str(env.ca_path), timeout=10)
    )


def test_login_get_and_logout(env: FmgLab) -> None:
    fmg = session(env)
    code, status = fmg.login()
    assert code == 0, status
    assert fmg.sid is not None
    code, devices = fmg.get("/dvmdb/adom/root/device")
    assert code == 0
    assert [d["name"] for d in devices] == ["fgt-001", "fgt-002"]
    assert {d["conf_status"] for d in devices} == {1}  # pyfmg asks without verbose: enum numbers
    code, policy = fmg.get(PKG_POLICY)
    assert (code, policy["ssl-ssh-profile"]) == (0, ["certificate-inspection"])
    code, _missing = fmg.get("/pm/config/adom/root/obj/firewall/ssl-ssh-profile/nope")
    assert code == -3
    code, _ = fmg.logout()
    assert code == 0
    assert fmg.sid is None


def test_lock_update_commit_install_and_unlock_on_logout(env: FmgLab) -> None:
    with session(env) as fmg:
        assert fmg._lock_ctx.uses_workspace  # read from /cli/global/system/global workspace-mode
        code, _ = fmg.update(PKG_POLICY, data={"ssl-ssh-profile": ["deep-inspection"]})
        assert code == -10147  # no lock yet: FortiManager refuses workspace writes
        code, answer = fmg.lock_adom("root")
        assert (code, answer["status"]["message"]) == (0, "OK")
        code, _ = fmg.update(PKG_POLICY, data={"ssl-ssh-profile": ["deep-inspection"]})
        assert code == 0
        code, _ = fmg.commit_changes("root")
        assert code == 0
        code, started = fmg.execute(
            "/securityconsole/install/package",
            data={
                "adom": "root",
                "pkg": "mail-edge-fgt-001",
                "scope": [{"name": "fgt-001", "vdom": "root"}],
                "flags": ["none"],
            },
        )
        assert code == 0
        code, task = fmg.track_task(started["task"], sleep_time=0)
        assert (code, task["percent"], task["num_err"], task["state"]) == (0, 100, 0, "done")
        # leaving the block logs out, and pyfmg unlocks the ADOMs it locked first
    assert (
        env.lab.device("fgt-001").store.get("root", "firewall/policy", 1)["ssl-ssh-profile"]
        == "deep-inspection"
    )
    assert env.lab.device("fgt-002").store.get("root", "firewall/policy", 1)["ssl-ssh-profile"] == (
        "certificate-inspection"
    )
    assert env.fmg.mock.adom.lock is None
    assert env.fmg.mock.requests.installs == 1


def test_set_and_delete_an_adom_object(env: FmgLab) -> None:
    url = "/pm/config/adom/root/obj/emailfilter/profile"
    with session(env) as fmg:
        fmg.lock_adom("root")
        code, made = fmg.add(url, data={"name": "mail-inbound", "feature-set": "proxy"})
        assert (code, made) == (0, {"name": "mail-inbound"})
        code, _ = fmg.add(url, data={"name": "mail-inbound"})
        assert code == -2
        code, _ = fmg.set(f"{url}/mail-inbound", data={"name": "mail-inbound", "comment": "set replaces"})
        assert code == 0
        code, profile = fmg.get(f"{url}/mail-inbound")
        assert (profile["comment"], profile["feature-set"]) == ("set replaces", "flow")  # set reset the rest
        code, _ = fmg.delete(f"{url}/mail-inbound")
        assert code == 0
        fmg.commit_changes("root")


def test_wrong_password_gives_no_session(env: FmgLab) -> None:
    fmg = made(
        FortiManager(host(env), env.fmg.mock.username, "wrong", verify_ssl=str(env.ca_path), timeout=10)
    )
    # The mock answers -22 without a session; pyfmg then refuses its own next call (the mode check).
    with pytest.raises(FMGValidSessionException):
        fmg.login()
    assert fmg.sid is None


def test_api_key_mode(env: FmgLab) -> None:
    fmg = made(FortiManager(host(env), apikey=env.fmg.mock.token, verify_ssl=str(env.ca_path), timeout=10))
    code, _ = fmg.login()
    assert code == 0
    code, data = fmg.get("/dvmdb/adom/root/revision")
    assert (code, data) == (0, [])
    code, status = fmg.get("/sys/status")
    assert status["Serial Number"] == "FMG-VM0000000001"
    fmg.logout()


def test_filter_and_fields(env: FmgLab) -> None:
    with session(env) as fmg:
        code, found = fmg.get(
            "/pm/config/adom/root/pkg/mail-edge-fgt-001/firewall/policy",
            filter=["dstaddr", "==", "vip-mx1"],
            fields=["name", "dstaddr"],
        )
        assert code == 0
        assert found == [{"policyid": 1, "name": "inbound-smtp", "dstaddr": ["vip-mx1"]}]
        code, found = fmg.get(
            "/pm/config/adom/root/obj/firewall/ssl-ssh-profile",
            filter=[["name", "like", "%inspection"], "&&", ["name", "!=", "deep-inspection"]],
            fields=["name"],
        )
        assert sorted(p["name"] for p in found) == [
            "certificate-inspection",
            "custom-deep-inspection",
            "no-inspection",
        ]
