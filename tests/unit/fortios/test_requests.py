"""What the client sends and returns: URLs, vdom, mkey encoding, bodies, result shapes, counts, version."""

from __future__ import annotations

import json

import httpx
import pytest
from pytest_httpx import HTTPXMock

from fortiauto.errors import InputError, NotFound
from fortiauto.fortios import USE_DEFAULT, FortiOSClient
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.results import RequestCounts
from tests.unit.fortios.conftest import (
    BASE,
    TOKEN,
    cmdb_url,
    echo_envelope,
    envelope,
    error_envelope,
    only_request,
)

POLICY = {"policyid": 12, "name": "inbound-smtp", "srcintf": [{"name": "wan1", "q_origin_key": "wan1"}]}


async def test_table_get_sends_default_vdom(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=cmdb_url("firewall/policy") + "?vdom=root", json=envelope(results=[POLICY]))
    assert await api.get("firewall/policy") == [POLICY]


async def test_member_get_is_a_list_of_one(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=cmdb_url("firewall/policy", "12") + "?vdom=root", json=envelope(results=[POLICY])
    )
    assert await api.get("firewall/policy", 12) == [POLICY]


async def test_singleton_get_is_wrapped_in_a_list(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    settings = {"hostname": "edge-1", "admintimeout": 5}
    httpx_mock.add_response(
        url=cmdb_url("system/global") + "?vdom=root",
        json=envelope(path="system", name="global", results=settings),
    )
    assert await api.get("system/global") == [settings]


async def test_empty_table_is_an_empty_list(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=cmdb_url("firewall/vip") + "?vdom=root", json=envelope(results=[]))
    assert await api.get("firewall/vip") == []


async def test_vdom_override_and_omit(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=cmdb_url("firewall/vip") + "?vdom=dmz", json=envelope(vdom="dmz", results=[]))
    httpx_mock.add_response(url=cmdb_url("firewall/vip"), json=envelope(results=[]))
    httpx_mock.add_response(url=cmdb_url("firewall/vip") + "?vdom=root", json=envelope(results=[]))
    await api.get("firewall/vip", vdom="dmz")
    await api.get("firewall/vip", vdom=None)
    await api.get("firewall/vip", vdom=USE_DEFAULT)
    assert [r.url.params.get("vdom") for r in httpx_mock.get_requests()] == ["dmz", None, "root"]


async def test_client_default_vdom(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=cmdb_url("firewall/vip") + "?vdom=tenant-b", json=envelope(results=[]))
    async with FortiOSClient(BASE, token=TOKEN, vdom="tenant-b") as client:
        await client.get("firewall/vip")


async def test_every_kind_of_call_carries_the_vdom(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(echo_envelope, is_reusable=True)
    await api.get("firewall/vip")
    await api.get_one("firewall/vip", "vip-mx1")
    await api.create("firewall/vip", {"name": "x"})
    await api.update("firewall/vip", "x", {"comment": "y"})
    await api.delete("firewall/vip", "x")
    await api.move("firewall/policy", 3, after=1)
    await api.monitor_get("system/status")
    await api.monitor_post("vpn-certificate/local/import", {"type": "regular"})
    await api.log_get("memory/emailfilter/raw")
    assert [r.url.params.get("vdom") for r in httpx_mock.get_requests()] == ["root"] * 9


async def test_mkey_is_encoded_with_no_safe_characters(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=envelope(results=[{"name": "a/b c"}]))
    await api.get("firewall/address", "a/b c")
    assert only_request(httpx_mock).url.raw_path == b"/api/v2/cmdb/firewall/address/a%2Fb%20c?vdom=root"


async def test_dotted_path_and_params(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=envelope(results=[]))
    await api.get("vpn.certificate/local", params={"filter": ["name==mx1", "source==user"], "format": "name"})
    request = only_request(httpx_mock)
    assert request.url.path == "/api/v2/cmdb/vpn.certificate/local"
    assert request.url.params.get_list("filter") == ["name==mx1", "source==user"]
    assert request.url.params["format"] == "name"


async def test_get_one_none_on_404(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=cmdb_url("firewall/policy", "99") + "?vdom=root",
        status_code=404,
        json=error_envelope(404, mkey="99"),
    )
    assert await api.get_one("firewall/policy", 99) is None


async def test_get_one_returns_the_object(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=envelope(results=[POLICY]))
    assert await api.get_one("firewall/policy", 12) == POLICY


async def test_get_of_a_missing_member_raises(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=404, json=error_envelope(404, mkey="99"))
    with pytest.raises(NotFound):
        await api.get("firewall/policy", 99)


async def test_create_posts_the_body_to_the_table(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    body = {"name": "mail-inbound", "feature-set": "proxy", "smtp": {"log-all": "enable"}}
    httpx_mock.add_response(
        method="POST",
        url=cmdb_url("emailfilter/profile") + "?vdom=root",
        match_json=body,
        json=envelope(method="POST", path="emailfilter", name="profile", mkey="mail-inbound"),
    )
    result = await api.create("emailfilter/profile", body)
    assert result.mkey == "mail-inbound"
    assert result.revision_changed is True
    assert only_request(httpx_mock).headers["content-type"] == "application/json"


async def test_update_puts_to_the_member(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    body = {"inspection-mode": "proxy", "emailfilter-profile": "mail-inbound"}
    httpx_mock.add_response(
        method="PUT",
        url=cmdb_url("firewall/policy", "12") + "?vdom=root",
        match_json=body,
        json=envelope(method="PUT", mkey=12, revision_changed=False),
    )
    result = await api.update("firewall/policy", 12, body)
    assert (result.mkey, result.revision_changed) == (12, False)


async def test_delete_member(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="DELETE",
        url=cmdb_url("vpn.certificate/local", "mx1-3f2a9c1b") + "?vdom=root",
        json=envelope(method="DELETE", mkey="mx1-3f2a9c1b"),
    )
    assert (await api.delete("vpn.certificate/local", "mx1-3f2a9c1b")).mkey == "mx1-3f2a9c1b"
    assert only_request(httpx_mock).content == b""


@pytest.mark.parametrize(("where", "kwargs"), [("after", {"after": 4}), ("before", {"before": "2"})])
async def test_move(api: FortiOSClient, httpx_mock: HTTPXMock, where: str, kwargs: dict[str, object]) -> None:
    target = str(next(iter(kwargs.values())))
    httpx_mock.add_response(
        method="PUT",
        url=cmdb_url("firewall/policy", "12") + f"?vdom=root&action=move&{where}={target}",
        json=envelope(method="PUT", mkey=12, action="move"),
    )
    await api.move("firewall/policy", 12, **kwargs)  # type: ignore[arg-type]
    assert only_request(httpx_mock).content == b""


async def test_move_needs_exactly_one_target(api: FortiOSClient) -> None:
    with pytest.raises(InputError):
        await api.move("firewall/policy", 12)
    with pytest.raises(InputError):
        await api.move("firewall/policy", 12, before=1, after=2)
    assert api.counts == RequestCounts()


async def test_monitor_get_and_post(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    stats = [{"policyid": 12, "hit_count": 7}]
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/api/v2/monitor/firewall/policy?vdom=root&policyid=12",
        json=envelope(path="firewall", name="policy", results=stats),
    )
    body = {"type": "regular", "certname": "mx1-3f2a9c1b", "file_content": "LS0t", "scope": "vdom"}
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/api/v2/monitor/vpn-certificate/local/import?vdom=root",
        match_json=body,
        json=envelope(method="POST", path="vpn-certificate", name="local", action="import", results={}),
    )
    assert await api.monitor_get("firewall/policy", params={"policyid": "12"}) == stats
    assert (await api.monitor_post("vpn-certificate/local/import", body)).status == "success"


async def test_log_get_json_and_text(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    logs = [{"logid": "0510020491", "subtype": "smtp", "from": "a@example.test"}]
    url = f"{BASE}/api/v2/log/memory/emailfilter/raw?vdom=root"
    httpx_mock.add_response(url=url, json=envelope(results=logs))
    httpx_mock.add_response(url=url, text='date=2026-11-24 logid="0510020491" subtype="smtp"\n')
    assert await api.log_get("memory/emailfilter/raw") == logs
    assert (await api.log_get("memory/emailfilter/raw")).startswith("date=2026-11-24")


async def test_system_status_and_version(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/api/v2/monitor/system/status?vdom=root",
        json=envelope(
            path="system",
            name="status",
            version="v7.2.8",
            build=1639,
            results={
                "model_name": "FortiGate",
                "model_number": "100F",
                "model": "FGT100F",
                "hostname": "edge",
            },
        ),
    )
    assert api.version is None
    status = await api.system_status()
    assert (status.version, status.hostname, status.model, status.build) == (
        FortiOSVersion(7, 2, 8),
        "edge",
        "FGT100F",
        1639,
    )
    assert api.version == FortiOSVersion(7, 2, 8)


async def test_version_is_learned_from_any_envelope_even_an_error(
    api: FortiOSClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=404, json=error_envelope(404, version="v6.4.15"))
    assert await api.get_one("firewall/policy", 1) is None
    assert api.version == FortiOSVersion(6, 4, 15)


async def test_counts_reads_and_writes(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(echo_envelope, is_reusable=True)
    await api.get("firewall/vip")
    await api.get_one("firewall/vip", "a")
    await api.monitor_get("system/status")
    await api.create("firewall/vip", {"name": "a"})
    await api.update("firewall/vip", "a", {"comment": "b"})
    await api.move("firewall/policy", 2, before=1)
    await api.delete("firewall/vip", "a")
    await api.monitor_post("system/config-revision/save", {"comments": "fortiauto"})
    assert api.counts == RequestCounts(total=8, writes=5)


async def test_counts_are_per_client(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(echo_envelope, is_reusable=True)
    async with FortiOSClient(BASE, token=TOKEN) as one, FortiOSClient(BASE, token=TOKEN) as two:
        await one.get("firewall/vip")
        await one.get("firewall/vip")
        await two.create("firewall/vip", {"name": "a"})
    assert (one.counts, two.counts) == (RequestCounts(2, 0), RequestCounts(1, 1))


async def test_request_body_is_plain_json(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=envelope(method="POST", mkey=0))
    await api.create("firewall/policy", {"policyid": 0, "name": "x", "srcintf": [{"name": "wan1"}]})
    assert json.loads(only_request(httpx_mock).content) == {
        "policyid": 0,
        "name": "x",
        "srcintf": [{"name": "wan1"}],
    }


@pytest.mark.parametrize("bad", ["", "/", "firewall/policy?x=1", "a#b"])
async def test_bad_paths_are_input_errors(api: FortiOSClient, bad: str) -> None:
    with pytest.raises(InputError):
        await api.get(bad)


async def test_bad_vdom_type_is_an_input_error(api: FortiOSClient) -> None:
    with pytest.raises(InputError, match="vdom"):
        await api.get("firewall/vip", vdom=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://10.0.0.1", "token": "t"}, "plain http"),
        ({"url": "http://10.0.0.1", "username": "u", "password": "p"}, "plain http"),
        ({"url": "ftp://10.0.0.1", "token": "t"}, "https://HOST"),
        ({"url": "https://u:p@10.0.0.1", "token": "t"}, "not in the device URL"),
        ({"url": "https://10.0.0.1/api", "token": "t"}, "path"),
        ({"url": BASE, "token": "t", "username": "u", "password": "p"}, "not both"),
        ({"url": BASE, "username": "u"}, "both username and password"),
        ({"url": BASE, "token": ""}, "empty"),
        ({"url": BASE, "token": "t", "verify": "/nonexistent/ca.pem"}, "CA bundle"),
        ({"url": BASE, "token": "t", "retries": -1}, "retries"),
    ],
)
def test_constructor_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    url = kwargs.pop("url")
    with pytest.raises(InputError, match=message):
        FortiOSClient(str(url), **kwargs)  # type: ignore[arg-type]


async def test_insecure_http_allowed_when_asked(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="http://127.0.0.1:8080/api/v2/cmdb/firewall/vip?vdom=root", json=envelope(results=[])
    )
    async with FortiOSClient("http://127.0.0.1:8080", token=TOKEN, allow_insecure_http=True) as client:
        assert await client.get("firewall/vip") == []


async def test_closed_client_refuses_requests(httpx_mock: HTTPXMock) -> None:
    client = FortiOSClient(BASE, token=TOKEN)
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get("firewall/vip")


async def test_custom_transport_is_used() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=envelope(results=[]))

    async with FortiOSClient(BASE, token=TOKEN, transport=httpx.MockTransport(handler)) as client:
        await client.get("firewall/vip")
    assert seen == [cmdb_url("firewall/vip") + "?vdom=root"]
