"""No credential in any log line or exception text, at DEBUG for every logger, against a real lab device.

The canaries are the lab device's real token and password and every session secret the lab
hands out during the test (session key, ``APSCOOKIE_*`` value, ``ccsrftoken``): the very values
httpcore's DEBUG lines would show in its response-header tuples. Token login, session login
through ``/api/v2/authentication``, the legacy ``/logincheck`` login (the stand-in hides the
API endpoint), failing calls, and a token with a trailing newline forced past the client's own
check so httpcore itself builds its "Illegal header value b'Bearer ...'" error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from fortiauto.fortios.auth import TokenAuth
from fortiauto_lab.device import Session
from fortiauto_lab.server import Lab
from tests.standins.fortios_proxy import Fault, FortiOSProxy, Rule
from tests.unit.fortios.test_redaction import texts_of


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root: every logger propagates here at DEBUG
    return caplog


@pytest.fixture
def sessions(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> list[Session]:
    """Every session the lab device hands out during the test (its key, cookie and CSRF token)."""
    device = lab.devices[0]
    made: list[Session] = []
    real_login: Callable[[str, str], Session | None] = device.login

    def recording(username: str, password: str) -> Session | None:
        session = real_login(username, password)
        if session is not None:
            made.append(session)
        return session

    monkeypatch.setattr(device, "login", recording)
    return made


def canaries(lab: Lab, sessions: list[Session]) -> list[str]:
    device = lab.devices[0]
    found = [device.token, device.password]
    for session in sessions:
        found += [session.cookie, session.csrf, *(v for k, v in vars(session).items() if k.endswith("key"))]
    return [str(value) for value in found if value and len(str(value)) >= 8]


def assert_no_canary(logs: pytest.LogCaptureFixture, secrets: list[str], *caught: BaseException) -> None:
    texts = [logs.text, *(record.getMessage() for record in logs.records)]
    texts += [record.exc_text or "" for record in logs.records]
    for exc in caught:
        texts += texts_of(exc)
    for secret in secrets:
        for text in texts:
            assert secret not in text


def assert_headers_were_logged(logs: pytest.LogCaptureFixture) -> None:
    # Without this the sweep would prove nothing: httpcore really logged the exchanges.
    assert "receive_response_headers.complete" in logs.text
    assert "httpcore.http11" in {record.name for record in logs.records}


async def exercise(client: FortiOSClient) -> list[BaseException]:
    """Reads, a write, a refused write and a missing object: every path a record can take."""
    caught: list[BaseException] = []
    await client.get("firewall/address")
    await client.create("firewall/address", {"name": "canary-sweep", "subnet": "192.0.2.1 255.255.255.255"})
    assert await client.get_one("firewall/address", "no-such-address") is None
    for bad in (
        lambda: client.create("firewall/address", {"name": "canary-sweep"}),  # duplicate: -5
        lambda: client.update("firewall/address", "no-such-address", {"comment": "x"}),  # 404
    ):
        with pytest.raises(errors.FortiOSError) as info:
            await bad()
        caught.append(info.value)
    return caught


def direct(lab: Lab, **auth: Any) -> FortiOSClient:
    device = lab.devices[0]
    return FortiOSClient(device.url, verify=str(lab.ca_path), name=device.name, retries=0, **auth)


async def test_token_login_at_debug(lab: Lab, debug_logs: pytest.LogCaptureFixture) -> None:
    async with direct(lab, token=lab.devices[0].token) as client:
        caught = await exercise(client)
    assert_headers_were_logged(debug_logs)
    assert_no_canary(debug_logs, canaries(lab, []), *caught)


async def test_session_login_at_debug(
    lab: Lab, sessions: list[Session], debug_logs: pytest.LogCaptureFixture
) -> None:
    device = lab.devices[0]
    async with direct(lab, username=device.username, password=device.password) as client:
        caught = await exercise(client)
    assert sessions, "the lab handed out no session"
    assert "Set-Cookie" in debug_logs.text  # the lab's login answer set cookies, httpcore logged them
    assert_headers_were_logged(debug_logs)
    assert_no_canary(debug_logs, canaries(lab, sessions), *caught)


async def test_legacy_logincheck_session_at_debug(
    lab: Lab, proxy: FortiOSProxy, sessions: list[Session], debug_logs: pytest.LogCaptureFixture
) -> None:
    proxy.add(Rule(Fault.FAKE_404, path=r"^/api/v2/authentication"))
    device = lab.devices[0]
    async with FortiOSClient(
        proxy.url, username=device.username, password=device.password, verify=str(proxy.ca_path), retries=0
    ) as client:
        caught = await exercise(client)
    assert [e.path for e in proxy.exchanges[:2]] == ["/api/v2/authentication", "/logincheck"]
    assert sessions
    assert_headers_were_logged(debug_logs)
    assert_no_canary(debug_logs, canaries(lab, sessions), *caught)


async def test_wrong_password_at_debug(lab: Lab, debug_logs: pytest.LogCaptureFixture) -> None:
    wrong = "canary-wrong-password-77"
    with pytest.raises(errors.AuthError) as caught:
        async with direct(lab, username=lab.devices[0].username, password=wrong):
            pass
    assert_no_canary(debug_logs, [wrong, lab.devices[0].token], caught.value)


async def test_token_with_a_newline_is_refused_before_sending(
    lab: Lab, debug_logs: pytest.LogCaptureFixture
) -> None:
    token = lab.devices[0].token + "\n\n"
    with pytest.raises(errors.InputError) as caught:
        direct(lab, token=token)
    assert "fgt-001: token:" in str(caught.value)
    assert "newline" in str(caught.value)
    assert_no_canary(debug_logs, [lab.devices[0].token], caught.value)


async def test_httpcore_illegal_header_error_is_scrubbed(
    lab: Lab, debug_logs: pytest.LogCaptureFixture
) -> None:
    # Force the bad token past the client's check: httpcore itself must now refuse the header,
    # quoting it, and neither the error nor the DEBUG lines may show it.
    token = lab.devices[0].token
    async with direct(lab, token=token) as client:
        client._http = None  # rebuilt below with the forced auth
        client._auth = TokenAuth(SecretStr(token + "\n"))
        with pytest.raises(errors.TransportError) as caught:
            await client.get("firewall/address")
    assert "Illegal header value" in str(caught.value)
    assert "Bearer ***" in str(caught.value)
    assert_no_canary(debug_logs, [token], caught.value)
