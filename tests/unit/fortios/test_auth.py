"""Both auth modes: the Bearer token, and the session login.

The session logs in through /api/v2/authentication (6.4.2+, the only way from 7.6.3) and falls
back to the legacy /logincheck cookie and CSRF dance on builds that answer that endpoint 404.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from fortiauto.errors import AuthError, RateLimited
from fortiauto.fortios import FortiOSClient
from tests.unit.fortios.conftest import (
    BASE,
    CSRF,
    PASSWORD,
    TOKEN,
    USERNAME,
    cmdb_url,
    envelope,
    only_request,
)

LOGIN_OK_BODY = '1document.location="/prompt?viewOnly&redir=%2F";\n'
LOGIN_FAILED_BODY = '0document.location="/remote/login?&err=sslvpn_login_permission_denied";\n'
APSCOOKIE = 'APSCOOKIE_3964168452="Era%3D0%26Payload%3DyTbQ%26AuthHash%3DkPq"'


def login_cookies(*names: str, value: str = f'"{CSRF}"') -> list[tuple[str, str]]:
    headers = [("set-cookie", f"{APSCOOKIE}; path=/; secure; HttpOnly")]
    headers += [("set-cookie", f"{name}={value}; path=/; secure") for name in names]
    return headers


def add_api_login_unsupported(httpx_mock: HTTPXMock) -> None:
    """An older build: /api/v2/authentication is an unknown path."""
    httpx_mock.add_response(method="POST", url=f"{BASE}/api/v2/authentication", status_code=404, text="")


def add_logincheck(httpx_mock: HTTPXMock, *cookie_names: str, body: str = LOGIN_OK_BODY) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/logincheck",
        text=body,
        headers=login_cookies(*cookie_names),
    )


def add_login(httpx_mock: HTTPXMock, *cookie_names: str, body: str = LOGIN_OK_BODY) -> None:
    """A legacy session login: the API endpoint is unknown, /logincheck answers."""
    add_api_login_unsupported(httpx_mock)
    add_logincheck(httpx_mock, *cookie_names, body=body)


def add_logout(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=f"{BASE}/logout", text="")


async def test_token_is_a_bearer_header(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=cmdb_url("firewall/vip") + "?vdom=root",
        match_headers={"Authorization": f"Bearer {TOKEN}"},
        json=envelope(results=[]),
    )
    async with FortiOSClient(BASE, token=SecretStr(TOKEN)) as client:
        await client.get("firewall/vip")
    request = only_request(httpx_mock)
    assert "access_token" not in str(request.url)
    assert "x-csrftoken" not in request.headers
    assert "cookie" not in request.headers


async def test_token_mode_needs_no_login_or_logout(httpx_mock: HTTPXMock) -> None:
    async with FortiOSClient(BASE, token=TOKEN):
        pass
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    "cookie_names",
    [("ccsrftoken", "ccsrftoken_443"), ("ccsrftoken",), ("ccsrftoken_443",), ("ccsrftoken_2882352961",)],
)
async def test_session_login_csrf_on_writes_and_logout(
    httpx_mock: HTTPXMock, cookie_names: tuple[str, ...]
) -> None:
    add_login(httpx_mock, *cookie_names)
    httpx_mock.add_response(method="GET", json=envelope(results=[]))
    httpx_mock.add_response(method="PUT", json=envelope(method="PUT", mkey="x"))
    add_logout(httpx_mock)

    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD) as client:
        await client.get("firewall/vip")
        await client.update("firewall/vip", "x", {"comment": "y"})

    unsupported, login, get, put, logout = httpx_mock.get_requests()
    assert unsupported.url.path == "/api/v2/authentication"
    assert parse_qs(login.content.decode()) == {
        "username": [USERNAME],
        "secretkey": [PASSWORD],
        "ajax": ["1"],
    }
    assert login.headers["content-type"] == "application/x-www-form-urlencoded"
    for request in (get, put, logout):
        assert APSCOOKIE in request.headers["cookie"]
        assert "Authorization" not in request.headers
    assert "x-csrftoken" not in get.headers  # GETs need no CSRF token
    assert put.headers["x-csrftoken"] == CSRF  # quotes stripped
    assert logout.headers["x-csrftoken"] == CSRF
    assert client.counts.total == 2  # login and logout are not API requests


async def test_session_login_happens_on_enter(httpx_mock: HTTPXMock) -> None:
    add_login(httpx_mock, "ccsrftoken")
    add_logout(httpx_mock)
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD):
        assert [r.url.path for r in httpx_mock.get_requests()] == ["/api/v2/authentication", "/logincheck"]
    assert [r.url.path for r in httpx_mock.get_requests()] == [
        "/api/v2/authentication",
        "/logincheck",
        "/logout",
    ]


async def test_session_logs_in_lazily_without_open(httpx_mock: HTTPXMock) -> None:
    add_login(httpx_mock, "ccsrftoken_443")
    httpx_mock.add_response(method="POST", json=envelope(method="POST", mkey="x"))
    add_logout(httpx_mock)
    client = FortiOSClient(BASE, username=USERNAME, password=PASSWORD)
    await client.create("firewall/vip", {"name": "x"})
    await client.close()
    _, login, create, logout = httpx_mock.get_requests()
    assert (login.url.path, logout.url.path) == ("/logincheck", "/logout")
    assert create.headers["x-csrftoken"] == CSRF


async def test_failed_login_is_an_auth_error_and_nothing_else_is_sent(httpx_mock: HTTPXMock) -> None:
    # A refused login still answers 200; the body starts with 0 and the cookies are "0&0".
    add_api_login_unsupported(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/logincheck",
        text=LOGIN_FAILED_BODY,
        headers=[("set-cookie", 'ccsrftoken="0%260"; path=/'), ("set-cookie", 'APSCOOKIE_1="0%260"; path=/')],
    )
    client = FortiOSClient(BASE, username=USERNAME, password=PASSWORD, name="fgt-1")
    with pytest.raises(AuthError, match="check username and password") as caught:
        await client.__aenter__()
    assert caught.value.device == "fgt-1"
    assert caught.value.http_status == 401
    assert len(httpx_mock.get_requests()) == 2  # no retry: repeated failures lock the admin out
    with pytest.raises(RuntimeError):
        await client.get("firewall/vip")  # a client whose open failed is closed


async def test_login_without_csrf_cookie_is_an_auth_error(httpx_mock: HTTPXMock) -> None:
    # FortiOS 7.6.3+ answers /logincheck with 200 and no session cookie at all.
    add_api_login_unsupported(httpx_mock)
    httpx_mock.add_response(method="POST", url=f"{BASE}/logincheck", text=LOGIN_OK_BODY)
    with pytest.raises(AuthError, match="no CSRF cookie"):
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD):
            pass


async def test_login_lockout_is_rate_limited(httpx_mock: HTTPXMock) -> None:
    add_api_login_unsupported(httpx_mock)
    httpx_mock.add_response(method="POST", url=f"{BASE}/logincheck", status_code=429, text="")
    with pytest.raises(RateLimited):
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD):
            pass


async def test_expired_session_logs_in_again_once(httpx_mock: HTTPXMock) -> None:
    add_login(httpx_mock, "ccsrftoken")
    httpx_mock.add_response(method="PUT", status_code=401, text="<html><body>401 Unauthorized</body></html>")
    add_logincheck(httpx_mock, "ccsrftoken")
    httpx_mock.add_response(method="PUT", json=envelope(method="PUT", mkey="x"))
    add_logout(httpx_mock)
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD) as client:
        result = await client.update("firewall/vip", "x", {"comment": "y"})
    assert result.status == "success"
    paths = [(r.method, r.url.path) for r in httpx_mock.get_requests()]
    assert paths == [
        ("POST", "/api/v2/authentication"),
        ("POST", "/logincheck"),
        ("PUT", "/api/v2/cmdb/firewall/vip/x"),
        ("POST", "/logincheck"),  # the flow that worked is remembered
        ("PUT", "/api/v2/cmdb/firewall/vip/x"),
        ("POST", "/logout"),
    ]


async def test_session_401_after_fresh_login_is_an_auth_error(httpx_mock: HTTPXMock) -> None:
    add_login(httpx_mock, "ccsrftoken")
    httpx_mock.add_response(method="GET", status_code=401, text="<html>401 Unauthorized</html>")
    add_logincheck(httpx_mock, "ccsrftoken")
    httpx_mock.add_response(method="GET", status_code=401, text="<html>401 Unauthorized</html>")
    add_logout(httpx_mock)
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD, retries=0) as client:
        with pytest.raises(AuthError):
            await client.get("firewall/vip")


async def test_failed_logout_does_not_raise(httpx_mock: HTTPXMock) -> None:
    add_login(httpx_mock, "ccsrftoken")
    httpx_mock.add_response(method="POST", url=f"{BASE}/logout", status_code=500, text="")
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD):
        pass
    assert len(httpx_mock.get_requests()) == 3


async def test_token_401_is_not_retried(httpx_mock: HTTPXMock, delays: list[float]) -> None:
    httpx_mock.add_response(status_code=401, text="<html><head><title>401 Unauthorized</title></head></html>")
    async with FortiOSClient(BASE, token=TOKEN) as client:
        with pytest.raises(AuthError) as caught:
            await client.get("firewall/vip")
    assert caught.value.http_status == 401
    assert delays == []
