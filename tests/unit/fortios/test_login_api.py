"""Session login through ``POST /api/v2/authentication`` (6.4.2+, the only way on 7.6.3+).

Success is ``status_message: LOGIN_SUCCESS`` with a ``session_key`` used as a Bearer token, or,
when the build gives no key, the 7.6.3 cookies ``session_key_<port>_<hash>`` and
``ccsrf_token_<port>_<hash>`` (X-CSRFTOKEN on writes). A JSON ``LOGIN_FAILED`` is final (no
second attempt toward the lockout); a 404 means an older build and the legacy form login.
"""

from __future__ import annotations

import json

import pytest
from pytest_httpx import HTTPXMock

from fortiauto.errors import AuthError, MalformedAnswer, RateLimited
from fortiauto.fortios import FortiOSClient
from tests.unit.fortios.conftest import BASE, CSRF, PASSWORD, USERNAME, envelope

LOGIN = f"{BASE}/api/v2/authentication"
SESSION_KEY = "canary-session-key-Q2f8"
OK = {"status": 5, "status_message": "LOGIN_SUCCESS"}


async def test_session_key_login_is_a_bearer_session(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=LOGIN, json=OK | {"session_key": SESSION_KEY})
    httpx_mock.add_response(method="GET", json=envelope(results=[]))
    httpx_mock.add_response(method="PUT", json=envelope(method="PUT", mkey="x"))
    httpx_mock.add_response(
        method="DELETE", url=LOGIN, json={"status": 0, "status_message": "LOGOUT_SUCCESS"}
    )
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD) as client:
        await client.get("firewall/vip")
        await client.update("firewall/vip", "x", {"comment": "y"})
    login, get, put, logout = httpx_mock.get_requests()
    assert json.loads(login.content) == {
        "username": USERNAME,
        "secretkey": PASSWORD,
        "ack_pre_disclaimer": True,
        "ack_post_disclaimer": True,
        "request_key": True,
    }
    for request in (get, put, logout):
        assert request.headers["authorization"] == f"Bearer {SESSION_KEY}"
        assert "x-csrftoken" not in request.headers
    assert (logout.method, logout.url.path) == ("DELETE", "/api/v2/authentication")
    assert client.counts.total == 2


async def test_cookie_session_of_763(httpx_mock: HTTPXMock) -> None:
    cookies = [
        ("set-cookie", 'session_key_443_9f2c="Era%3D0%26Payload%3Dq"; path=/; secure; HttpOnly'),
        ("set-cookie", f'ccsrf_token_443_9f2c="{CSRF}"; path=/; secure'),
    ]
    httpx_mock.add_response(method="POST", url=LOGIN, json=OK, headers=cookies)
    httpx_mock.add_response(method="POST", json=envelope(method="POST", mkey="x"))
    httpx_mock.add_response(method="DELETE", url=LOGIN, json={"status": 0})
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD) as client:
        await client.create("firewall/vip", {"name": "x"})
    _, create, logout = httpx_mock.get_requests()
    assert 'session_key_443_9f2c="Era%3D0%26Payload%3Dq"' in create.headers["cookie"]
    assert create.headers["x-csrftoken"] == CSRF
    assert "authorization" not in create.headers
    assert logout.method == "DELETE"


async def test_login_failed_is_final(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST", url=LOGIN, status_code=401, json={"status": -1, "status_message": "LOGIN_FAILED"}
    )
    with pytest.raises(AuthError, match="check username and password") as caught:
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD, name="fgt-76"):
            pass
    assert caught.value.device == "fgt-76"
    assert len(httpx_mock.get_requests()) == 1  # no /logincheck attempt: it would count toward the lockout


async def test_login_success_without_any_session_is_refused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=LOGIN, json=OK)
    with pytest.raises(AuthError, match="session"):
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD):
            pass


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status_code": 429, "text": ""}, RateLimited),
        ({"json": {"status": 4, "status_message": "PASSWORD_EXPIRED"}}, AuthError),
    ],
)
async def test_login_other_outcomes(
    httpx_mock: HTTPXMock, answer: dict[str, object], error: type[Exception]
) -> None:
    httpx_mock.add_response(method="POST", url=LOGIN, **answer)  # type: ignore[arg-type]
    with pytest.raises(error):
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD, retries=0):
            pass


@pytest.mark.parametrize(
    "unsupported",
    [{"status_code": 404, "text": ""}, {"status_code": 405, "json": {}}, {"html": "<html>login</html>"}],
)
async def test_older_builds_fall_back_to_logincheck(
    httpx_mock: HTTPXMock, unsupported: dict[str, object]
) -> None:
    httpx_mock.add_response(method="POST", url=LOGIN, **unsupported)  # type: ignore[arg-type]
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/logincheck",
        text="1",
        headers=[("set-cookie", 'APSCOOKIE_1="x"; path=/'), ("set-cookie", f'ccsrftoken="{CSRF}"; path=/')],
    )
    httpx_mock.add_response(method="POST", url=f"{BASE}/logout", text="")
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD):
        pass
    assert [r.url.path for r in httpx_mock.get_requests()] == [
        "/api/v2/authentication",
        "/logincheck",
        "/logout",
    ]


async def test_expired_key_session_logs_in_again_through_the_api(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=LOGIN, json=OK | {"session_key": SESSION_KEY})
    httpx_mock.add_response(method="GET", status_code=401, html="<html>401 Unauthorized</html>")
    httpx_mock.add_response(method="POST", url=LOGIN, json=OK | {"session_key": "second-key"})
    httpx_mock.add_response(method="GET", json=envelope(results=[]))
    httpx_mock.add_response(method="DELETE", url=LOGIN, json={"status": 0})
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD) as client:
        assert await client.get("firewall/vip") == []
    requests = httpx_mock.get_requests()
    assert [(r.method, r.url.path) for r in requests] == [
        ("POST", "/api/v2/authentication"),
        ("GET", "/api/v2/cmdb/firewall/vip"),
        ("POST", "/api/v2/authentication"),
        ("GET", "/api/v2/cmdb/firewall/vip"),
        ("DELETE", "/api/v2/authentication"),
    ]
    assert requests[3].headers["authorization"] == "Bearer second-key"


async def test_a_portal_page_is_not_a_login_verdict(httpx_mock: HTTPXMock) -> None:
    # Something in front of the device answers every URL with its own page.
    page = "<html><body>Welcome to the guest network</body></html>"
    httpx_mock.add_response(method="POST", url=LOGIN, html=page)
    httpx_mock.add_response(method="POST", url=f"{BASE}/logincheck", html=page)
    with pytest.raises(MalformedAnswer, match="no 0/1 verdict"):
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD, name="fgt-1"):
            pass


async def test_json_without_a_status_message_is_not_a_login_verdict(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=LOGIN, json={"status": "success"})
    with pytest.raises(MalformedAnswer, match="no status_message"):
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD):
            pass
