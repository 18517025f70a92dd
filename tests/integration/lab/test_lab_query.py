"""GET query semantics (filter, format, paging, meta, vdoms) and policy moves."""

from __future__ import annotations

import pytest

POLICIES = "/api/v2/cmdb/firewall/policy"
SERVICES = "/api/v2/cmdb/firewall.service/custom"


def names(api, path, **params):
    return [o.get("name", o.get("policyid")) for o in api.results(path, params=params)]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("name==SMTP", ["SMTP"]),
        ("name==smtp", ["SMTP"]),  # string operators are case-insensitive
        ("name=@SMTP", ["SMTP", "SMTPS"]),
        ("category==Email", ["SMTP", "SMTPS", "SUBMISSION", "IMAP", "IMAPS", "POP3", "POP3S"]),
        ("name==SMTP,name==HTTP", ["HTTP", "SMTP"]),  # comma is OR
    ],
)
def test_filter_operators(api, flt, expected):
    assert sorted(names(api, SERVICES, filter=flt)) == sorted(expected)


def test_repeated_filters_are_and_and_negations(api):
    both = api.results(SERVICES, params=[("filter", "category==Email"), ("filter", "name=@POP")])
    assert sorted(s["name"] for s in both) == ["POP3", "POP3S"]
    neither = names(api, SERVICES, filter="category!=Email")
    assert "SMTP" not in neither
    assert "HTTP" in neither
    no_s = names(api, SERVICES, filter="name!@S")
    assert "SMTP" not in no_s
    assert "ALL" in no_s


def test_numeric_filters_and_reference_lists(api):
    assert names(api, POLICIES, filter="policyid>1") == ["outbound-internet"]
    assert names(api, POLICIES, filter="policyid<=1") == ["inbound-smtp"]
    # A list of {name} matches when any member matches (policies naming a VIP).
    assert names(api, POLICIES, filter="dstaddr==vip-mx1") == ["inbound-smtp"]


def test_bad_filter_is_an_error_not_a_crash(api):
    response = api.get(SERVICES, params={"filter": "nooperator"})
    assert response.status_code == 400
    assert response.json()["status"] == "error"


def test_format_and_paging(api):
    rows = api.results(POLICIES, params={"format": "policyid|name"})
    assert rows == [
        {"policyid": 1, "q_origin_key": 1, "name": "inbound-smtp"},
        {"policyid": 2, "q_origin_key": 2, "name": "outbound-internet"},
    ]
    every = names(api, SERVICES)
    assert names(api, SERVICES, start="2", count="3") == every[2:5]


def test_with_meta_counts_references(api):
    rows = api.results("/api/v2/cmdb/firewall/ssl-ssh-profile", params={"with_meta": "1"})
    meta = {r["name"]: r for r in rows}
    assert meta["certificate-inspection"]["q_ref"] == 1
    assert meta["deep-inspection"]["q_ref"] == 0
    assert meta["certificate-inspection"]["q_no_edit"] is True
    assert meta["custom-deep-inspection"]["q_no_edit"] is False


def test_datasource_names_the_referenced_table(api):
    (policy,) = api.results(f"{POLICIES}/1", params={"datasource": "1"})
    assert policy["dstaddr"][0]["datasource"] == "firewall.vip"
    assert policy["srcaddr"][0]["datasource"] == "firewall.address"


def test_multi_vdom_get_is_an_array_of_envelopes(api):
    pair = api.get(POLICIES, params={"vdom": "root,dmz"}).json()
    assert [e["vdom"] for e in pair] == ["root", "dmz"]
    assert [p["name"] for p in pair[1]["results"]] == ["inbound-smtp-dmz"]
    every = api.get(POLICIES, params={"vdom": "*"}).json()
    assert [e["vdom"] for e in every] == ["root", "dmz"]
    dmz = api.results("/api/v2/cmdb/firewall/vip", params={"vdom": "dmz"})
    assert [v["name"] for v in dmz] == ["vip-mx2"]


def test_vdoms_are_separate_namespaces(api):
    api.post("/api/v2/cmdb/firewall/address", params={"vdom": "dmz"}, json={"name": "only-dmz"})
    assert api.get("/api/v2/cmdb/firewall/address/only-dmz", params={"vdom": "dmz"}).status_code == 200
    assert api.get("/api/v2/cmdb/firewall/address/only-dmz", params={"vdom": "root"}).status_code == 404


def order(api):
    return [p["policyid"] for p in api.results(POLICIES, params={"format": "policyid"})]


def test_move_before_and_after_by_query(api):
    moved = api.put(f"{POLICIES}/2", params={"action": "move", "before": "1"})
    assert moved.status_code == 200
    assert moved.json()["action"] == "move"
    assert moved.json()["revision_changed"] is True
    assert order(api) == [2, 1]
    again = api.put(f"{POLICIES}/2", params={"action": "move", "before": "1"})
    assert again.json()["revision_changed"] is False
    api.put(f"{POLICIES}/2", params={"action": "move", "after": "1"})
    assert order(api) == [1, 2]


def test_move_with_action_in_body_as_pyfortiapi_sends_it(api):
    response = api.put(f"{POLICIES}/2", content="{'action': 'move', 'before': 1}")
    assert response.status_code == 200
    assert order(api) == [2, 1]


def test_move_to_a_missing_neighbour_is_404(api):
    response = api.put(f"{POLICIES}/2", params={"action": "move", "before": "99"})
    assert response.status_code == 404
    assert order(api) == [1, 2]
