"""Per-version schema: fields a release does not know are rejected as FortiOS rejects them."""

from __future__ import annotations

import pytest

from fortiauto_lab.errors import LabInputError
from fortiauto_lab.release import resolve_release

SSL = "/api/v2/cmdb/firewall/ssl-ssh-profile"
EMAIL = "/api/v2/cmdb/emailfilter/profile"


@pytest.mark.parametrize(
    ("version", "path", "body"),
    [
        ("6.4", SSL, {"name": "p", "allowlist": "enable"}),
        ("6.4", SSL, {"name": "p", "ssl-anomaly-log": "enable"}),
        ("6.4", SSL, {"name": "p", "supported-alpn": "all"}),
        ("6.4", EMAIL, {"name": "e", "options": "spambal"}),
        ("6.4", EMAIL, {"name": "e", "spam-bal-table": 1}),
        ("6.4", "/api/v2/cmdb/firewall/vip", {"name": "v", "extip": "1.2.3.4", "status": "enable"}),
        ("7.0", SSL, {"name": "p", "whitelist": "enable"}),
        ("7.0", EMAIL, {"name": "e", "options": "spambwl"}),
        ("7.0", "/api/v2/cmdb/firewall/policy/1", {"dlp-profile": ""}),
        ("7.2", "/api/v2/cmdb/firewall/policy/1", {"dlp-sensor": ""}),
    ],
)
def test_field_unknown_to_the_version_is_rejected(api_for, version, path, body):
    api = api_for(version)
    method = api.put if path.endswith("/1") else api.post
    response = method(path, json=body)
    assert response.status_code == 500, response.text
    assert response.json()["error"] == -651


@pytest.mark.parametrize(
    ("version", "path", "body"),
    [
        ("6.4", SSL, {"name": "p", "whitelist": "enable", "ssl-anomalies-log": "enable"}),
        ("6.4", EMAIL, {"name": "e", "options": "spambwl", "spam-bwl-table": 1}),
        (
            "7.0",
            SSL,
            {"name": "p", "allowlist": "enable", "ssl-anomaly-log": "enable", "supported-alpn": "all"},
        ),
        ("7.0", EMAIL, {"name": "e", "options": "spambal", "spam-bal-table": 1}),
        ("7.4", "/api/v2/cmdb/firewall/vip", {"name": "v", "extip": "1.2.3.4", "status": "disable"}),
    ],
)
def test_field_known_to_the_version_is_accepted(api_for, version, path, body):
    api = api_for(version)
    assert api.post(path, json=body).status_code == 200


def test_server_cert_is_a_string_on_6_4_and_a_list_from_7_0(api_for):
    old = api_for("6.4")
    assert old.post(SSL, json={"name": "p", "server-cert": "Fortinet_SSL"}).status_code == 200
    assert old.results(f"{SSL}/p")[0]["server-cert"] == "Fortinet_SSL"
    new = api_for("7.0")
    body = {"name": "p", "server-cert": [{"name": "Fortinet_SSL"}]}
    assert new.post(SSL, json=body).status_code == 200
    assert new.results(f"{SSL}/p")[0]["server-cert"] == [
        {"name": "Fortinet_SSL", "q_origin_key": "Fortinet_SSL"}
    ]
    missing = new.post(SSL, json={"name": "q", "server-cert": [{"name": "no-such-cert"}]})
    assert missing.json()["error"] == -651


def test_email_log_field_is_log_on_6_4_1_and_log_all_elsewhere(api_for):
    one = api_for("6.4.1")
    (profile,) = one.results(f"{EMAIL}/default")
    assert "log" in profile["smtp"]
    assert "log-all" not in profile["smtp"]
    assert "other-webmails" not in profile
    assert one.put(f"{EMAIL}/default", json={"smtp": {"log-all": "enable"}}).json()["error"] == -651
    later = api_for("6.4")
    (profile,) = later.results(f"{EMAIL}/default")
    assert profile["smtp"]["log-all"] == "disable"
    assert profile["feature-set"] == "flow"


def test_ports_print_as_the_version_prints_them(api_for):
    new = api_for("7.0")
    assert new.results(f"{SSL}/deep-inspection")[0]["smtps"]["ports"] == [465]
    old = api_for("6.4")
    assert old.results(f"{SSL}/deep-inspection")[0]["smtps"]["ports"] == 465
    old.post(SSL, json={"name": "two", "smtps": {"ports": "465 587"}})
    assert old.results(f"{SSL}/two")[0]["smtps"]["ports"] == "465 587"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("6.4", "6.4.14"),
        ("7.0", "7.0.15"),
        ("7.2", "7.2.10"),
        ("7.4", "7.4.8"),
        ("7.6", "7.6.4"),
        ("7.0.12", "7.0.12"),
        ("7.6.5", "7.6.5"),
    ],
)
def test_resolve_release(given, expected):
    assert str(resolve_release(given)) == expected


@pytest.mark.parametrize("bad", ["6.2", "9.0", "seven", ""])
def test_unsupported_versions_are_input_errors(bad):
    with pytest.raises(LabInputError):
        resolve_release(bad)


def test_envelope_version_follows_the_lab(api_for):
    api = api_for("7.2")
    body = api.get("/api/v2/monitor/system/status").json()
    assert (body["version"], body["build"]) == ("v7.2.10", 1706)
