"""The CMDB endpoints over HTTPS: envelope shapes, write semantics, FortiOS error answers, body parsing."""

from __future__ import annotations

import json

import pytest

from tests.integration.lab.conftest import Api

ENVELOPE_KEYS = {"http_method", "status", "http_status", "vdom", "path", "name", "serial", "version", "build"}

POLICY = {
    "name": "p-test",
    "srcintf": [{"name": "internal"}],
    "dstintf": [{"name": "wan1"}],
    "srcaddr": [{"name": "all"}],
    "dstaddr": [{"name": "all"}],
    "service": [{"name": "HTTPS"}],
    "schedule": "always",
    "action": "accept",
}


def test_table_get_is_a_list_with_the_full_envelope(api):
    body = api.get("/api/v2/cmdb/firewall/policy").json()
    assert ENVELOPE_KEYS | {"revision", "results"} <= set(body)
    assert body["version"] == "v7.0.15"
    assert body["build"] == 632
    assert (body["path"], body["name"], body["vdom"], body["status"]) == (
        "firewall",
        "policy",
        "root",
        "success",
    )
    assert len(body["revision"]) == 32
    assert [p["policyid"] for p in body["results"]] == [1, 2]
    first = body["results"][0]
    assert first["q_origin_key"] == 1
    assert first["srcintf"] == [{"name": "wan1", "q_origin_key": "wan1"}]


def test_member_get_is_a_list_of_one_and_singleton_an_object(api):
    member = api.get("/api/v2/cmdb/firewall/policy/1").json()
    assert member["mkey"] == 1
    assert isinstance(member["results"], list)
    assert len(member["results"]) == 1
    singleton = api.get("/api/v2/cmdb/system/global").json()
    assert isinstance(singleton["results"], dict)
    assert singleton["results"]["hostname"] == "fgt-001"


def test_missing_member_is_404_json_with_error_minus_3(api):
    response = api.get("/api/v2/cmdb/firewall/address/nope")
    assert response.status_code == 404
    body = response.json()
    assert (body["http_status"], body["error"], body["status"], body["mkey"]) == (404, -3, "error", "nope")
    assert api.get("/api/v2/cmdb/firewall/policy/notanumber").status_code == 404
    assert api.get("/api/v2/cmdb/firewall/nosuchthing").status_code == 404


def test_post_returns_int_mkey_and_next_free_policyid(api):
    first = api.post("/api/v2/cmdb/firewall/policy", json=POLICY).json()
    assert first["mkey"] == 3
    assert first["revision_changed"] is True
    assert first["old_revision"] != first["revision"]
    second = api.post("/api/v2/cmdb/firewall/policy", json=POLICY | {"policyid": 0}).json()
    assert second["mkey"] == 4
    explicit = api.post("/api/v2/cmdb/firewall/policy", json=POLICY | {"policyid": 40}).json()
    assert explicit["mkey"] == 40


def test_post_fills_defaults(api):
    api.post("/api/v2/cmdb/firewall/address", json={"name": "h1", "subnet": "10.0.0.0/24"})
    (address,) = api.results("/api/v2/cmdb/firewall/address/h1")
    assert address["subnet"] == "10.0.0.0 255.255.255.0"
    assert address["type"] == "ipmask"
    assert address["allow-routing"] == "disable"
    assert len(address["uuid"]) == 36


def test_post_duplicate_is_500_minus_5(api):
    response = api.post("/api/v2/cmdb/firewall/address", json={"name": "all"})
    assert response.status_code == 500
    assert response.json()["error"] == -5


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x", "bogus-field": "1"}, "bogus-field"),
        ({"name": "x", "type": "no-such-type"}, "no-such-type"),
        ({"name": "x", "associated-interface": "ghost0"}, "ghost0"),
    ],
    ids=["unknown-field", "bad-option", "dangling-reference"],
)
def test_invalid_value_is_500_minus_651_with_cli_error(api, body, needle):
    response = api.post("/api/v2/cmdb/firewall/address", json=body)
    assert response.status_code == 500
    data = response.json()
    assert data["error"] == -651
    assert needle in data["cli_error"]
    assert data["revision_changed"] is False
    assert api.get("/api/v2/cmdb/firewall/address/x").status_code == 404


def test_policy_dstaddr_may_name_a_vip_but_not_a_ghost(api):
    ok = api.put("/api/v2/cmdb/firewall/policy/2", json={"dstaddr": [{"name": "vip-mx1"}]})
    assert ok.status_code == 200
    bad = api.put("/api/v2/cmdb/firewall/policy/2", json={"dstaddr": [{"name": "vip-ghost"}]})
    assert bad.json()["error"] == -651


def test_delete_referenced_is_500_minus_23_and_unreferenced_works(api):
    referenced = api.delete("/api/v2/cmdb/firewall/vip/vip-mx1")
    assert referenced.status_code == 500
    assert referenced.json()["error"] == -23
    api.post("/api/v2/cmdb/firewall/address", json={"name": "spare"})
    gone = api.delete("/api/v2/cmdb/firewall/address/spare")
    assert gone.status_code == 200
    assert gone.json()["mkey"] == "spare"
    assert api.delete("/api/v2/cmdb/firewall/address/spare").status_code == 404


def test_builtins_are_read_only(api):
    put = api.put("/api/v2/cmdb/firewall/ssl-ssh-profile/certificate-inspection", json={"comment": "x"})
    assert put.status_code == 500
    assert api.delete("/api/v2/cmdb/firewall/ssl-ssh-profile/no-inspection").status_code == 500
    assert api.delete("/api/v2/cmdb/vpn.certificate/local/Fortinet_Factory").status_code == 500
    custom = api.put("/api/v2/cmdb/firewall/ssl-ssh-profile/custom-deep-inspection", json={"comment": "mine"})
    assert custom.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v2/cmdb/firewall/address"),
        ("DELETE", "/api/v2/cmdb/firewall/address"),
        ("POST", "/api/v2/cmdb/system/global"),
        ("POST", "/api/v2/cmdb/firewall/address/all"),
        ("DELETE", "/api/v2/cmdb/system/global"),
    ],
)
def test_wrong_method_is_405_json(api, method, path):
    response = api.http.request(method, path, json={"name": "z"})
    assert response.status_code == 405
    assert response.json()["http_status"] == 405


def test_put_no_change_keeps_revision(api):
    before = api.get("/api/v2/cmdb/firewall/policy/1").json()["revision"]
    same = api.put("/api/v2/cmdb/firewall/policy/1", json={"name": "inbound-smtp"}).json()
    assert same["revision_changed"] is False
    assert same["revision"] == before
    changed = api.put("/api/v2/cmdb/firewall/policy/1", json={"name": "renamed"}).json()
    assert changed["revision_changed"] is True
    assert changed["revision"] != before


def test_put_merges_top_level_and_containers_but_replaces_lists(api):
    path = "/api/v2/cmdb/emailfilter/profile/default"
    api.put(path, json={"smtp": {"log-all": "enable"}, "comment": "c1"})
    (profile,) = api.results(path)
    assert profile["smtp"]["log-all"] == "enable"
    assert profile["smtp"]["action"] == "discard"  # untouched key of the same container kept
    assert profile["feature-set"] == "flow"
    api.put("/api/v2/cmdb/firewall/policy/1", json={"service": [{"name": "SMTP"}]})
    (policy,) = api.results("/api/v2/cmdb/firewall/policy/1")
    assert [s["name"] for s in policy["service"]] == ["SMTP"]


def test_slash_in_mkey_survives_routing(api):
    api.post("/api/v2/cmdb/firewall/address", json={"name": "net/24", "subnet": "10.1.0.0/24"})
    response = api.get("/api/v2/cmdb/firewall/address/net%2F24")
    assert response.status_code == 200
    assert response.json()["results"][0]["name"] == "net/24"
    assert api.delete("/api/v2/cmdb/firewall/address/net%2F24").status_code == 200


def test_child_tables_get_post_put_delete(api):
    api.post("/api/v2/cmdb/firewall/address", json={"name": "a1"})
    api.post("/api/v2/cmdb/firewall/address", json={"name": "a2"})
    api.post("/api/v2/cmdb/firewall/addrgrp", json={"name": "g1", "member": [{"name": "a1"}]})
    base = "/api/v2/cmdb/firewall/addrgrp/g1/member"
    assert api.results(base) == [{"name": "a1", "q_origin_key": "a1"}]
    assert api.post(base, json={"name": "a2"}).status_code == 200
    assert api.post(base, json={"name": "a2"}).json()["error"] == -5
    assert api.post(base, json={"name": "ghost"}).json()["error"] == -651
    assert api.results(f"{base}/a2") == [{"name": "a2", "q_origin_key": "a2"}]
    assert api.delete(f"{base}/a1").status_code == 200
    assert [m["name"] for m in api.results(base)] == ["a2"]
    mapped = "/api/v2/cmdb/firewall/vip/vip-mx1/mappedip"
    assert api.put(f"{mapped}/10.0.1.25", json={"range": "10.0.1.26"}).status_code == 200
    assert api.results(mapped)[0]["range"] == "10.0.1.26"


def test_bodies_parse_by_content_not_header(api):
    plain = {
        "content": json.dumps({"name": "b1"}),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    assert api.post("/api/v2/cmdb/firewall/address", **plain).status_code == 200
    repr_body = api.post("/api/v2/cmdb/firewall/address", content="{'name': 'b2', 'comment': 'repr'}")
    assert repr_body.status_code == 200
    wrapped = api.post("/api/v2/cmdb/firewall/address", content=json.dumps({"json": {"name": "b3"}}))
    assert wrapped.json()["mkey"] == "b3"
    assert api.delete("/api/v2/cmdb/firewall/address/b3", content="null").status_code == 200
    form = api.post("/api/v2/cmdb/firewall/address", content="name=b4&comment=x")
    assert form.status_code == 424
    broken = api.post("/api/v2/cmdb/firewall/address", content='{"name": ')
    assert broken.status_code == 400
    assert broken.json()["status"] == "error"


def test_oversize_body_is_413_envelope(api):
    response = api.post("/api/v2/cmdb/firewall/address", content=b"x" * (1024 * 1024 + 10))
    assert response.status_code == 413
    assert response.json()["http_status"] == 413


def test_unauthenticated_is_401_html(lab):
    anonymous = Api(lab, auth=False)
    response = anonymous.get("/api/v2/cmdb/firewall/policy")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "401" in response.text
    wrong = anonymous.get("/api/v2/cmdb/firewall/policy", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    anonymous.close()


def test_unknown_vdom_is_403(api):
    response = api.get("/api/v2/cmdb/firewall/policy", params={"vdom": "nosuch"})
    assert response.status_code == 403
    assert response.json()["vdom"] == "nosuch"


def test_clone_copies_under_a_new_key(api):
    response = api.post(
        "/api/v2/cmdb/firewall/address/mx1-internal", params={"action": "clone", "nkey": "mx1-copy"}
    )
    assert response.status_code == 200
    (copy,) = api.results("/api/v2/cmdb/firewall/address/mx1-copy")
    (original,) = api.results("/api/v2/cmdb/firewall/address/mx1-internal")
    assert copy["subnet"] == original["subnet"]
    assert copy["uuid"] != original["uuid"]


def test_schema_and_default_actions(api):
    schema = api.results("/api/v2/cmdb/firewall/policy", params={"action": "schema"})
    assert schema["mkey"] == "policyid"
    assert schema["mkey_type"] == "integer"
    assert schema["children"]["action"]["options"] == [
        {"name": "accept"},
        {"name": "deny"},
        {"name": "ipsec"},
    ]
    default = api.results("/api/v2/cmdb/firewall/address", params={"action": "default"})
    assert default["type"] == "ipmask"
    root = api.get("/api/v2/cmdb/", params={"action": "schema"}).json()
    assert {"path": "firewall", "name": "policy"} in root["results"]


def test_cmdb_system_status_for_fortiosapi(api):
    data = api.get("/api/v2/cmdb/system/status", params={"global": "1"}).json()
    assert isinstance(data, list)
    assert data[0]["version"] == "v7.0.15"
    single = api.get("/api/v2/cmdb/system/status", params={"vdom": "root"}).json()
    assert single["version"] == "v7.0.15"
