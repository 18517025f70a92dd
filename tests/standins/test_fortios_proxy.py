"""The stand-in itself: transparent by default, faults as documented, usable from threads and with a pin."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest

from fortiauto.fortios import FortiOSClient
from fortiauto.site.loader import load_site
from fortiauto_lab.server import Lab
from tests.standins.conftest import upstream_get
from tests.standins.fortios_proxy import Fault, FortiOSProxy, ProxyThread, Rule, proxied_site


def sync_client(proxy: FortiOSProxy, lab: Lab) -> httpx.Client:
    headers = {"Authorization": f"Bearer {lab.devices[0].token}"}
    verify = ssl.create_default_context(cafile=str(proxy.ca_path))
    return httpx.Client(base_url=proxy.url, headers=headers, verify=verify, timeout=10)


def test_thread_proxy_forwards_and_mangles_from_synchronous_code(lab: Lab, tmp_path: Path) -> None:
    with ProxyThread(lab.devices[0].url, upstream_ca=lab.ca_path, directory=tmp_path) as proxy:
        with sync_client(proxy, lab) as http:
            real = http.get("/api/v2/cmdb/firewall/address/all")
            assert real.status_code == 200
            assert real.json()["results"][0]["name"] == "all"
            proxy.add(Rule(Fault.DROP_RESULTS, method="GET", times=1))
            dropped = http.get("/api/v2/cmdb/firewall/address/all").json()
            assert "results" not in dropped
            assert dropped["status"] == "success"
            assert http.get("/api/v2/cmdb/firewall/address/all").json()["results"]  # times=1 used up
    assert [e.fault for e in proxy.exchanges] == [Fault.PASS, Fault.DROP_RESULTS, Fault.PASS]


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (Fault.HTML_200, lambda r: r.status_code == 200 and r.text.startswith("<!DOCTYPE html>")),
        (Fault.NOT_JSON, lambda r: r.status_code == 200 and r.text == "OK\n"),
        (Fault.EMPTY_BODY, lambda r: r.status_code == 200 and r.content == b""),
        (Fault.JSON_LIST, lambda r: isinstance(r.json(), list) and r.json()[0]["status"] == "success"),
        (Fault.NO_STATUS, lambda r: "status" not in r.json() and "results" in r.json()),
        (Fault.EMPTY_RESULTS, lambda r: r.json()["results"] == []),
        (Fault.WRONG_MKEY, lambda r: r.json()["mkey"] == "all-not-this-one"),
        (Fault.FAKE_404, lambda r: r.status_code == 404 and "<html>" in r.text),
    ],
    ids=lambda v: v.value if isinstance(v, Fault) else "",
)
async def test_each_read_fault_shapes_the_answer(
    proxy: FortiOSProxy, lab: Lab, fault: Fault, check: object
) -> None:
    proxy.add(Rule(fault))
    headers = {"Authorization": f"Bearer {lab.devices[0].token}"}
    verify = ssl.create_default_context(cafile=str(proxy.ca_path))
    async with httpx.AsyncClient(base_url=proxy.url, headers=headers, verify=verify) as http:
        answer = await http.get("/api/v2/cmdb/firewall/address/all")
    assert check(answer)  # type: ignore[operator]
    assert proxy.exchanges[0].forwarded is (fault is not Fault.FAKE_404)


async def test_swallowed_write_is_a_faithful_envelope_and_never_forwarded(
    proxy: FortiOSProxy, lab: Lab
) -> None:
    headers = {"Authorization": f"Bearer {lab.devices[0].token}"}
    verify = ssl.create_default_context(cafile=str(proxy.ca_path))
    async with httpx.AsyncClient(base_url=proxy.url, headers=headers, verify=verify) as http:
        await http.get("/api/v2/cmdb/firewall/address")  # teaches the stand-in the device's envelope
        proxy.add(Rule(Fault.SWALLOW_WRITE, method="WRITE"))
        answer = await http.post(
            "/api/v2/cmdb/firewall/address?vdom=root", content=json.dumps({"name": "ghost"})
        )
    body = answer.json()
    assert (body["status"], body["http_status"], body["mkey"], body["http_method"]) == (
        "success",
        200,
        "ghost",
        "POST",
    )
    assert body["serial"] == lab.devices[0].serial
    assert proxy.forwarded_writes == 0
    assert upstream_get(lab, "/api/v2/cmdb/firewall/address/ghost").status_code == 404


async def test_after_writes_counts_only_forwarded_api_writes(proxy: FortiOSProxy, lab: Lab) -> None:
    proxy.add(Rule(Fault.NOT_JSON, after_writes=1))
    device = lab.devices[0]
    async with FortiOSClient(
        proxy.url, username=device.username, password=device.password, verify=str(proxy.ca_path)
    ) as client:  # the login POST is not an API write
        assert await client.get("firewall/address")
        await client.create("firewall/address", {"name": "w1", "subnet": "192.0.2.5 255.255.255.255"})
    assert proxy.forwarded_writes == 1
    assert proxy.exchanges[-1].fault is Fault.NOT_JSON  # the logout, after the first write


async def test_the_client_can_pin_the_stand_in(proxy: FortiOSProxy, lab: Lab) -> None:
    async with FortiOSClient(proxy.url, token=lab.devices[0].token, verify=proxy.fingerprint) as client:
        assert await client.get_one("firewall/address", "all") is not None


async def test_proxied_site_points_one_device_at_the_stand_in(proxy: FortiOSProxy, lab: Lab) -> None:
    site = proxied_site(lab.site_path, proxy)
    assert site.parent == lab.site_path.parent
    loaded = load_site(site)
    device = next(d for d in loaded.devices if d.name == "fgt-001")
    assert device.url == proxy.url
    assert str(device.verify_tls) == str(proxy.ca_path)
    assert device.token is not None
    assert device.token.get_secret_value() == lab.devices[0].token
