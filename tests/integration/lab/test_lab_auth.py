"""Authentication as clients do it: token, URL token by version, /logincheck sessions, CSRF, session keys."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.lab.conftest import Api

STATUS = "/api/v2/monitor/system/status"


@pytest.fixture
def anonymous(lab):
    client = Api(lab, auth=False)
    yield client
    client.close()


def login(client: Api, password: str | None = None) -> httpx.Response:
    device = client.device
    secret = device.password if password is None else password
    # Raw and unencoded, with no Content-Type, exactly as pyfortiapi sends it.
    return client.post("/logincheck", content=f"username={device.username}&secretkey={secret}")


def test_bearer_token(api):
    assert api.get(STATUS).status_code == 200


def test_url_token_accepted_before_7_4_5(anonymous):
    ok = anonymous.get(STATUS, params={"access_token": anonymous.device.token})
    assert ok.status_code == 200
    assert anonymous.get(STATUS, params={"access_token": "wrong"}).status_code == 401


def test_url_token_refused_on_7_4_8_until_enabled(api_for):
    api = api_for("7.4")
    anonymous = Api(api.lab, auth=False)
    params = {"access_token": api.device.token}
    assert anonymous.get(STATUS, params=params).status_code == 401
    api.put("/api/v2/cmdb/system/global", json={"rest-api-key-url-query": "enable"})
    assert anonymous.get(STATUS, params=params).status_code == 200
    anonymous.close()


def test_logincheck_success_sets_quoted_cookies(anonymous):
    response = login(anonymous)
    assert response.status_code == 200
    assert response.text.startswith("1")
    cookies = response.headers.get_list("set-cookie")
    port = anonymous.device.port
    assert any(c.startswith(f'APSCOOKIE_{port}="') for c in cookies)
    csrf = next(c for c in cookies if c.startswith("ccsrftoken="))
    numbered = next(c for c in cookies if c.startswith(f"ccsrftoken_{port}="))
    token = csrf.split(";")[0].split("=", 1)[1]
    assert token.startswith('"')
    assert token.endswith('"')
    assert numbered.split(";")[0].split("=", 1)[1] == token


def test_logincheck_failure_body_0_and_failed_cookies(anonymous):
    response = login(anonymous, password="wrong")
    assert response.status_code == 200
    assert response.text.startswith("0")
    assert 'ccsrftoken="0%260"' in response.headers.get_list("set-cookie")[1]
    assert anonymous.get(STATUS).status_code == 401


def test_session_reads_free_writes_need_csrf(anonymous):
    login(anonymous)
    assert anonymous.get(STATUS).status_code == 200
    body = {"name": "via-session"}
    denied = anonymous.post("/api/v2/cmdb/firewall/address", json=body)
    assert denied.status_code == 403
    assert denied.json()["http_status"] == 403
    raw = anonymous.http.cookies.get("ccsrftoken")
    assert raw is not None
    # Ansible forwards the still-quoted value; the lab strips the quotes as FortiOS does.
    allowed = anonymous.post("/api/v2/cmdb/firewall/address", json=body, headers={"X-CSRFTOKEN": raw})
    assert allowed.status_code == 200
    anonymous.delete("/api/v2/cmdb/firewall/address/via-session", headers={"X-CSRFTOKEN": raw.strip('"')})


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_ends_the_session(anonymous, method):
    login(anonymous)
    assert anonymous.get(STATUS).status_code == 200
    cookies = dict(anonymous.http.cookies)
    assert anonymous.http.request(method, "/logout").status_code == 200
    replay = anonymous.get(STATUS, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    assert replay.status_code == 401


def test_cookie_header_with_attributes_is_tolerated(anonymous):
    login(anonymous)
    aps = next(c for c in anonymous.http.cookies.jar if c.name.startswith("APSCOOKIE_"))
    raw = f"{aps.name}={aps.value}; path=/; secure; HttpOnly"
    fresh = Api(anonymous.lab, auth=False)
    assert fresh.get(STATUS, headers={"Cookie": raw}).status_code == 200
    fresh.close()


def test_authentication_endpoint_session_key(anonymous):
    device = anonymous.device
    body = {
        "username": device.username,
        "secretkey": device.password,
        "request_key": True,
        "ack_pre_disclaimer": True,
        "ack_post_disclaimer": True,
    }
    answer = anonymous.post("/api/v2/authentication", json=body).json()
    assert answer["status"] == 5
    assert answer["status_message"] == "LOGIN_SUCCESS"
    bearer = {"Authorization": f"Bearer {answer['session_key']}"}
    fresh = Api(anonymous.lab, auth=False)
    assert fresh.get(STATUS, headers=bearer).status_code == 200
    assert fresh.post("/api/v2/cmdb/firewall/address", json={"name": "k1"}, headers=bearer).status_code == 200
    assert fresh.delete("/api/v2/authentication", headers=bearer).json()["status_message"] == "LOGOUT_SUCCESS"
    assert fresh.get(STATUS, headers=bearer).status_code == 401
    fresh.delete("/api/v2/cmdb/firewall/address/k1", headers={"Authorization": f"Bearer {device.token}"})
    fresh.close()


def test_authentication_endpoint_wrong_password(anonymous):
    body = {"username": "admin", "secretkey": "nope", "request_key": True}
    response = anonymous.post("/api/v2/authentication", json=body)
    assert response.status_code == 401
    assert response.json()["status_message"] == "LOGIN_FAILED"


def test_control_api_needs_the_token(anonymous):
    assert anonymous.get("/__lab__/state").status_code == 401
    assert anonymous.get("/__lab__/state", headers={"Authorization": "Bearer nope"}).status_code == 401
    login(anonymous)  # an admin session is not the token
    assert anonymous.post("/__lab__/reset").status_code == 401
