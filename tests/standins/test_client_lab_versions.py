"""The client against every FortiOS family the lab plays, with token and session login.

7.6 is the case that matters: from 7.6.3 ``/logincheck`` opens no session, so the session must
come from ``/api/v2/authentication``; its ``cli_error`` is a list, which must read as one line.
Every family answers the same calls with well-formed envelopes the strict client accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from fortiauto.fortios.auth import SessionAuth
from fortiauto_lab.server import Lab
from tests.standins.conftest import lab_http, reset
from tests.standins.fortios_proxy import Fault, FortiOSProxy, Rule

FAMILIES = ["6.4", "7.0", "7.2", "7.4", "7.6"]


def credentials(lab: Lab, mode: str) -> dict[str, Any]:
    device = lab.devices[0]
    if mode == "token":
        return {"token": device.token}
    return {"username": device.username, "password": device.password}


@pytest.mark.parametrize("mode", ["token", "session"])
@pytest.mark.parametrize("family", FAMILIES)
async def test_every_family_and_login(lab_for: Callable[[str], Lab], family: str, mode: str) -> None:
    lab = lab_for(family)
    reset(lab)
    device = lab.devices[0]
    async with FortiOSClient(
        device.url, verify=str(lab.ca_path), name=device.name, **credentials(lab, mode)
    ) as client:
        status = await client.system_status()
        assert f"{status.version.major}.{status.version.minor}" == family
        assert await client.get("firewall/policy")
        assert await client.get_one("firewall/address", "no-such-address") is None
        created = await client.create(
            "firewall/address", {"name": "fam-x", "subnet": "192.0.2.3 255.255.255.255"}, mkey="fam-x"
        )
        assert (created.mkey, created.revision_changed) == ("fam-x", True)
        assert await client.get_one("firewall/address", "fam-x") is not None
        updated = await client.update("firewall/address", "fam-x", {"comment": "by fortiauto"})
        assert updated.concurrent_edit is False  # the read just before, and nobody else
        with pytest.raises(errors.InvalidValue) as refused:
            await client.update("firewall/policy", 1, {"emailfilter-profile": "no-such-profile"})
        await client.delete("firewall/address", "fam-x")
        if mode == "session":
            assert isinstance(client._auth, SessionAuth)
            assert client._auth.logged_in
    cli_error = refused.value.cli_error
    assert cli_error is not None
    assert "\n" not in cli_error
    assert "Return code -651" in cli_error
    assert cli_error in str(refused.value)


async def test_76_session_comes_from_the_api_endpoint(lab_for: Callable[[str], Lab], tmp_path: Path) -> None:
    lab = lab_for("7.6")
    device = lab.devices[0]
    async with (
        FortiOSProxy(device.url, upstream_ca=lab.ca_path, directory=tmp_path) as proxy,
        FortiOSClient(proxy.url, verify=str(proxy.ca_path), **credentials(lab, "session")) as client,
    ):
        await client.get("firewall/address")
    paths = [(e.method, e.path.split("?")[0]) for e in proxy.exchanges]
    assert paths == [
        ("POST", "/api/v2/authentication"),
        ("GET", "/api/v2/cmdb/firewall/address"),
        ("DELETE", "/api/v2/authentication"),
    ]
    assert "/logincheck" not in {path for _, path in paths}


async def test_76_logincheck_alone_would_not_log_in(lab_for: Callable[[str], Lab], tmp_path: Path) -> None:
    # What older clients meet on 7.6.3+: /logincheck says "1" but sets no cookie. With the API
    # endpoint hidden (a build without it would 404), the client refuses clearly instead of
    # carrying on without a session.
    lab = lab_for("7.6")
    device = lab.devices[0]
    async with FortiOSProxy(device.url, upstream_ca=lab.ca_path, directory=tmp_path) as proxy:
        proxy.add(Rule(Fault.FAKE_404, path=r"^/api/v2/authentication"))
        with pytest.raises(errors.AuthError, match="no CSRF cookie"):
            async with FortiOSClient(proxy.url, verify=str(proxy.ca_path), **credentials(lab, "session")):
                pass


@pytest.mark.parametrize(("release", "flow"), [("6.4.1", "/logincheck"), ("7.6.2", "/api/v2/authentication")])
async def test_session_login_flow_by_release(
    lab_for: Callable[[str], Lab], tmp_path: Path, release: str, flow: str
) -> None:
    # 6.4.1 predates /api/v2/authentication (the lab answers its HTML 404): the legacy cookie
    # login, with X-CSRFTOKEN on the write. 7.6.2 still has a /logincheck session, but the API
    # endpoint comes first.
    lab = lab_for(release)
    reset(lab)
    device = lab.devices[0]
    async with FortiOSProxy(device.url, upstream_ca=lab.ca_path, directory=tmp_path) as proxy:
        async with FortiOSClient(
            proxy.url, verify=str(proxy.ca_path), **credentials(lab, "session")
        ) as client:
            created = await client.create(
                "firewall/address", {"name": "flow-x", "subnet": "192.0.2.4 255.255.255.255"}, mkey="flow-x"
            )
            assert created.mkey == "flow-x"
        logins = [e.path for e in proxy.exchanges if not e.path.startswith("/api/v2/cmdb")]
    assert logins[0] == "/api/v2/authentication"
    assert flow in logins[:2]


async def test_another_admins_edit_between_read_and_write_is_seen(lab: Lab) -> None:
    device = lab.devices[0]
    async with FortiOSClient(device.url, token=device.token, verify=str(lab.ca_path)) as client:
        assert await client.get_one("firewall/address", "all") is not None
        with lab_http(lab) as other_admin:  # edits an unrelated object meanwhile
            edited = other_admin.post(
                "/api/v2/cmdb/firewall/address", json={"name": "theirs", "subnet": "192.0.2.66/32"}
            )
            assert edited.status_code == 200
        first = await client.update("firewall/address", "all", {"comment": "ours"})
        assert first.concurrent_edit is True
        assert first.revision_changed is True
        # Read again: from here on the device is as we saw it, and our own write explains the next.
        assert await client.get_one("firewall/address", "all") is not None
        second = await client.update("firewall/address", "all", {"comment": "ours again"})
        third = await client.update("firewall/address", "all", {"comment": "ours, third"})
    assert (second.concurrent_edit, third.concurrent_edit) == (False, False)
