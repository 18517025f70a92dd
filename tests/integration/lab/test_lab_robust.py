"""Bad input never crashes a device or leaks a traceback: every answer is a FortiOS-style error."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ALLOWED = {200, 400, 401, 403, 404, 405, 413, 424, 500}


def check(response):
    assert response.status_code in ALLOWED, response.text
    assert "Traceback" not in response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        envelopes = body if isinstance(body, list) else [body]
        if response.status_code >= 400:
            assert all(e["status"] == "error" and e["http_status"] == response.status_code for e in envelopes)
            assert all(e.get("error") != -1 for e in envelopes), "an internal error: a lab bug"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v2/cmdb/%ZZ/%%", None),
        ("GET", "/api/v2/cmdb/firewall/policy/1/srcintf/wan1/extra/deep", None),
        ("GET", "/api/v2/cmdb/firewall/policy/1/nosuchchild", None),
        ("GET", "/api/v2/cmdb/firewall/policy?filter===&start=x&count=-1", None),
        ("GET", "/api/v2/monitor", None),
        ("GET", "/api/v2/log/memory", None),
        ("GET", "/nothing/here", None),
        ("PATCH", "/api/v2/cmdb/firewall/policy/1", "{}"),
        ("POST", "/api/v2/cmdb/firewall/policy", "[1, 2, 3]"),
        ("POST", "/api/v2/cmdb/firewall/policy", '"just a string"'),
        ("POST", "/api/v2/cmdb/firewall/address", "[" * 50000 + "]" * 50000),
        ("POST", "/api/v2/cmdb/firewall/address", b"\xff\xfe\x00garbage"),
        ("POST", "/api/v2/cmdb/firewall/address", json.dumps({"name": "x" * 5000})),
        ("PUT", "/api/v2/cmdb/firewall/policy/1", json.dumps({"srcintf": [{"name": 5}]})),
        ("PUT", "/api/v2/cmdb/firewall/policy/1", json.dumps({"natip": [1, 2, 3]})),
        ("PUT", "/api/v2/cmdb/firewall/policy/1", json.dumps({"tcp-mss-sender": 10**30})),
        ("PUT", "/api/v2/cmdb/emailfilter/profile/default", json.dumps({"smtp": None})),
        ("PUT", "/api/v2/cmdb/emailfilter/profile/default", json.dumps({"smtp": ["log-all"]})),
        ("PUT", "/api/v2/cmdb/firewall/policy/1?action=move", "{}"),
        ("PUT", "/api/v2/cmdb/firewall/policy/1?action=move&before=abc", None),
        ("POST", "/api/v2/cmdb/firewall/address/all?action=clone", None),
        (
            "POST",
            "/api/v2/monitor/vpn-certificate/local/import",
            '{"type": "pkcs12", "certname": "p", "file_content": "AAAA"}',
        ),
        ("POST", "/api/v2/monitor/system/config/backup", '{"scope": "galaxy"}'),
        ("DELETE", "/api/v2/cmdb/firewall/addrgrp/none/member", None),
    ],
)
def test_hostile_requests_get_fortios_errors(api, method, path, body):
    check(api.http.request(method, path, content=body))
    assert api.get("/api/v2/monitor/system/status").status_code == 200  # still serving


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
policy_keys = st.sampled_from(
    ["srcintf", "dstaddr", "action", "schedule", "natip", "service", "name", "utm-status"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(policy_keys | st.text(max_size=8), json_values, max_size=3))
def test_random_policy_bodies_never_crash(api, body):
    check(api.put("/api/v2/cmdb/firewall/policy/2", json=body))
    check(api.post("/api/v2/cmdb/firewall/policy", json=body))
