"""FortiOS 7.6 as the lab plays it: session login through /api/v2/authentication, list-form cli_error."""

from __future__ import annotations

import pyfortiapi
import pytest
import requests

from tests.integration.lab.conftest import Api

STATUS = "/api/v2/monitor/system/status"
EMAIL = "/api/v2/cmdb/emailfilter/profile"


def _credentials(api: Api) -> dict[str, object]:
    device = api.device
    return {"username": device.username, "secretkey": device.password, "request_key": True}


def test_token_login_is_unchanged_on_7_6(lab_api):
    api = lab_api("7.6")
    body = api.get(STATUS).json()
    assert body["version"] == "v7.6.4"
    assert body["build"] == 3596


def test_logincheck_opens_no_session_from_7_6_3(lab_api):
    api = lab_api("7.6")
    anonymous = Api(api.lab, auth=False)
    device = api.device
    answer = anonymous.post("/logincheck", content=f"username={device.username}&secretkey={device.password}")
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers
    assert anonymous.get(STATUS).status_code == 401
    anonymous.close()


def test_logincheck_still_works_on_7_6_2(lab_api):
    api = lab_api("7.6.2")
    anonymous = Api(api.lab, auth=False)
    device = api.device
    answer = anonymous.post("/logincheck", content=f"username={device.username}&secretkey={device.password}")
    assert answer.text.startswith("1")
    assert any(name.startswith("APSCOOKIE_") for name in anonymous.http.cookies)
    assert anonymous.get(STATUS).status_code == 200
    anonymous.close()


def test_api_authentication_session_key_and_cookies_on_7_6(lab_api):
    api = lab_api("7.6")
    anonymous = Api(api.lab, auth=False)
    answer = anonymous.post("/api/v2/authentication", json=_credentials(api))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["status_message"]) == (5, "LOGIN_SUCCESS")
    names = set(anonymous.http.cookies)
    port = api.device.port
    assert any(n.startswith(f"session_key_{port}_") for n in names)
    assert any(n.startswith(f"ccsrf_token_{port}_") for n in names)
    assert not any(n.startswith("APSCOOKIE_") for n in names)
    # The session key works as a Bearer token, writes included.
    keyed = anonymous.post(
        f"{EMAIL}", json={"name": "k1"}, headers={"Authorization": f"Bearer {body['session_key']}"}
    )
    assert keyed.status_code == 200, keyed.text
    # The cookie session writes with its CSRF token and is refused without it.
    csrf = next(v for n, v in anonymous.http.cookies.items() if n.startswith("ccsrf_token_"))
    assert anonymous.post(EMAIL, json={"name": "c1"}).status_code == 403
    assert anonymous.post(EMAIL, json={"name": "c1"}, headers={"X-CSRFTOKEN": csrf}).status_code == 200
    anonymous.close()


def test_pyfortiapi_cannot_log_in_from_7_6_3(lab_api, monkeypatch):
    # pyfortiapi only knows /logincheck and its ccsrftoken cookie: the real 7.6.3+ breakage (ANS#398).
    api = lab_api("7.6")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", api.ca)
    device = api.device
    fgt = pyfortiapi.FortiGate(
        "127.0.0.1", device.username, device.password, port=str(device.port), verify=api.ca
    )
    with pytest.raises((KeyError, requests.HTTPError)):
        fgt.get_firewall_policy()


@pytest.mark.parametrize(("version", "listed"), [("7.4", False), ("7.6", True)])
def test_cli_error_is_a_list_on_7_6(lab_api, version, listed):
    api = lab_api(version)
    answer = api.post(EMAIL, json={"name": "x", "no-such-field": "1"})
    assert answer.status_code == 500
    cli_error = answer.json()["cli_error"]
    assert isinstance(cli_error, list) is listed
    text = " ".join(cli_error) if listed else cli_error
    assert "Unknown attribute 'no-such-field'" in text
    assert "Return code -651" in text


def test_7_6_schema_has_its_new_fields(lab_api):
    api = lab_api("7.6")
    https = api.results("/api/v2/cmdb/firewall/ssl-ssh-profile/deep-inspection")[0]["https"]
    assert https["udp-not-quic"] == "inspect"  # 7.6.1+ ([A])
    older = lab_api("7.4")
    assert (
        "udp-not-quic"
        not in older.results("/api/v2/cmdb/firewall/ssl-ssh-profile/deep-inspection")[0]["https"]
    )


def test_8_0_is_played_for_tools_that_meet_a_newer_family(lab_api):
    api = lab_api("8.0")
    assert api.get(STATUS).json()["version"] == "v8.0.0"
    profile = api.results(f"{EMAIL}/default")[0]
    assert profile["fabric-object"] == "disable"  # new in 8.0 (CLI reference 8.0.0)
    assert "uuid" in profile
    assert "fabric-object" not in lab_api("7.6").results(f"{EMAIL}/default")[0]
