"""pyfortiapi 0.3.0 (the real PyPI client) against the lab: session login, reads, writes, moves.

pyfortiapi's login check GET passes no ``verify``, so requests falls back to
``REQUESTS_CA_BUNDLE``: that environment variable is the one seam we set.
"""

from __future__ import annotations

import pyfortiapi
import pytest
import requests


@pytest.fixture
def fgt(api, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", api.ca)
    device = api.device
    return pyfortiapi.FortiGate(
        "127.0.0.1", device.username, device.password, port=str(device.port), verify=api.ca
    )


def test_login_and_read_policies(fgt):
    policies = fgt.get_firewall_policy()
    assert [p["policyid"] for p in policies] == [1, 2]
    assert fgt.get_firewall_policy(1)[0]["name"] == "inbound-smtp"
    assert fgt.get_firewall_policy("outbound-internet")[0]["policyid"] == 2  # ?filter=name==...
    assert fgt.get_firewall_policy("no-such-policy") == 404


def test_bad_password_fails_the_login_check(api, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", api.ca)
    wrong = pyfortiapi.FortiGate("127.0.0.1", "admin", "wrong", port=str(api.device.port), verify=api.ca)
    with pytest.raises(requests.HTTPError, match="401"):
        wrong.get_firewall_policy()


def test_address_create_update_delete(fgt):
    assert fgt.create_firewall_address("h1", "{'name': 'h1', 'subnet': '10.9.9.9/32'}") == 200
    assert fgt.create_firewall_address("h1", "{'name': 'h1'}") == 424  # pyfortiapi's own existence check
    assert fgt.get_firewall_address("h1")[0]["subnet"] == "10.9.9.9 255.255.255.255"
    assert fgt.update_firewall_address("h1", "{'comment': 'edited'}") == 200
    assert fgt.get_firewall_address("h1")[0]["comment"] == "edited"
    assert fgt.delete_firewall_address("h1") == 200
    assert fgt.update_firewall_address("h1", "{'comment': 'x'}") == 404


def test_policy_create_move_update_delete(fgt):
    body = (
        "{'policyid': 10, 'name': 'p10', 'srcintf': [{'name': 'internal'}], 'dstintf': [{'name': 'wan1'}], "
        "'srcaddr': [{'name': 'all'}], 'dstaddr': [{'name': 'all'}], 'service': [{'name': 'HTTPS'}], "
        "'schedule': 'always', 'action': 'accept'}"
    )
    assert fgt.create_firewall_policy(10, body) == 200  # sent as {'json': {...}}
    assert [p["policyid"] for p in fgt.get_firewall_policy()] == [1, 2, 10]
    assert fgt.move_firewall_policy(10, "before", 1) == 200  # action in the body
    assert [p["policyid"] for p in fgt.get_firewall_policy()] == [10, 1, 2]
    assert fgt.update_firewall_policy(10, "{'status': 'disable'}") == 200
    assert fgt.get_firewall_policy(10)[0]["status"] == "disable"
    assert fgt.delete_firewall_policy(10) == 200
    assert fgt.get_firewall_policy(10) == 404


def test_profile_update_and_referenced_delete(fgt):
    url = fgt.urlbase + "api/v2/cmdb/emailfilter/profile/default"
    assert fgt.put(url, "{'feature-set': 'proxy', 'smtp': {'log-all': 'enable'}}") == 200
    profile = fgt.get(url)[0]
    assert (profile["feature-set"], profile["smtp"]["log-all"]) == ("proxy", "enable")
    assert fgt.delete(url) == 500  # referenced by policy 1 (-23)
