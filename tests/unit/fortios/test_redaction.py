"""Secrets never leave the client: not in exceptions (text, repr, cause), reprs, or DEBUG logs.

Canary values stand in for the token, the admin password and a certificate key/passphrase; the
device is even made to echo them back in ``cli_error``, as a CLI error can.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from pytest_httpx import HTTPXMock

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from fortiauto.fortios.redact import LOGGER_FAMILIES, RedactingFilter, redact
from tests.unit.fortios.conftest import BASE, CSRF, PASSWORD, TOKEN, USERNAME, envelope, error_envelope

KEY = "canary-key-LS0tLS1CRUdJTiBQUklWQVRF"
PASSPHRASE = "canary-passphrase-93kd"
CANARIES = (TOKEN, PASSWORD, KEY, PASSPHRASE)


def texts_of(exc: BaseException) -> list[str]:
    """Every text an exception shows: str, repr, args, and the same for its causes."""
    out: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        out += [str(current), repr(current), *map(repr, current.args)]
        out += [repr(v) for v in vars(current).values()]
        current = current.__cause__ or current.__context__
    return out


def assert_clean(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger: fortiauto, httpx, httpcore
    return caplog


async def test_token_client_failures(
    httpx_mock: HTTPXMock, debug_logs: pytest.LogCaptureFixture, delays: list[float]
) -> None:
    echoed = f"invalid value {TOKEN} for attribute comment"
    httpx_mock.add_response(status_code=401, html="<html>401 Unauthorized</html>")
    httpx_mock.add_response(status_code=500, json=error_envelope(500, error=-651, cli_error=echoed))
    httpx_mock.add_exception(httpx.ConnectError("All connection attempts failed"))
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    httpx_mock.add_response(json=envelope(results=[]))

    caught: list[BaseException] = []
    async with FortiOSClient(BASE, token=TOKEN, name="fgt-1", retries=0) as client:
        for call in (
            lambda: client.get("firewall/vip"),
            lambda: client.update("firewall/vip", "x", {"comment": "y"}),
            lambda: client.get("firewall/vip"),
        ):
            with pytest.raises(errors.FortiOSError) as info:
                await call()
            caught.append(info.value)
        with pytest.raises(errors.ResponseLost) as info:
            await client.create("firewall/vip", {"name": "x"})
        caught.append(info.value)
        with pytest.raises(errors.InputError) as refused:
            await client.get("firewall/vip", params={"access_token": TOKEN})
        caught.append(refused.value)
        await client.get("firewall/vip")
        client_repr = repr(client)

    assert isinstance(caught[1], errors.InvalidValue)
    assert "invalid value *** for attribute comment" in str(caught[1])
    for exc in caught:
        assert_clean(*texts_of(exc))
    assert_clean(client_repr, debug_logs.text)
    assert "fgt-1: GET /api/v2/cmdb/firewall/vip?vdom=root -> 200" in debug_logs.text
    assert "fgt-1: POST /api/v2/cmdb/firewall/vip?vdom=root -> ResponseLost" in debug_logs.text


async def test_session_client_and_failed_login(
    httpx_mock: HTTPXMock, debug_logs: pytest.LogCaptureFixture
) -> None:
    cookies = [("set-cookie", f'ccsrftoken="{CSRF}"; path=/'), ("set-cookie", 'APSCOOKIE_1="x"; path=/')]
    httpx_mock.add_response(method="POST", url=f"{BASE}/api/v2/authentication", status_code=404, text="")
    httpx_mock.add_response(method="POST", url=f"{BASE}/logincheck", text="1", headers=cookies)
    httpx_mock.add_response(
        status_code=403, json=error_envelope(403, cli_error=f"password {PASSWORD} rejected", method="PUT")
    )
    httpx_mock.add_response(method="POST", url=f"{BASE}/logout", text="")
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/api/v2/authentication",
        status_code=401,
        json={"status": -1, "status_message": "LOGIN_FAILED"},
    )

    caught: list[BaseException] = []
    async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD, name="fgt-2") as client:
        with pytest.raises(errors.AuthError) as info:
            await client.update("firewall/vip", "x", {"comment": "y"})
        caught.append(info.value)
        reprs = [repr(client), repr(client._auth)]
    with pytest.raises(errors.AuthError) as info:
        async with FortiOSClient(BASE, username=USERNAME, password=PASSWORD, name="fgt-2"):
            pass
    caught.append(info.value)

    for exc in caught:
        assert_clean(*texts_of(exc))
    assert_clean(*reprs, debug_logs.text)
    assert "POST /logincheck -> 200" in debug_logs.text


async def test_certificate_import_secrets_are_scrubbed_from_echoed_errors(
    api: FortiOSClient, httpx_mock: HTTPXMock, debug_logs: pytest.LogCaptureFixture
) -> None:
    body = {
        "type": "regular",
        "certname": "mx1-3f2a9c1b",
        "file_content": "LS0tLS1CRUdJTiBDRVJU",
        "key_file_content": KEY,
        "password": PASSPHRASE,
        "scope": "vdom",
    }
    httpx_mock.add_response(
        status_code=500,
        json=error_envelope(
            500, error=-145, cli_error=f"bad key {KEY} with passphrase {PASSPHRASE}", method="POST"
        ),
    )
    with pytest.raises(errors.InvalidValue) as info:
        await api.monitor_post("vpn-certificate/local/import", body)
    assert info.value.cli_error == "bad key *** with passphrase ***"
    assert_clean(*texts_of(info.value), debug_logs.text)


# --- the log filter and the shapes it redacts ------------------------------------------------

SHAPES = [
    "send_request_headers.failed exception="
    f"LocalProtocolError(\"Illegal header value b'Bearer {TOKEN}\\\\n'\")",
    f"receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', [(b'Set-Cookie', "
    f"b'APSCOOKIE_3964168452=\"{TOKEN}\"; path=/; secure'), (b'Set-Cookie', b'ccsrftoken=\"{TOKEN}\"')])",
    f'Cookie: APSCOOKIE_443={TOKEN}; ccsrf_token_443_ab="{TOKEN}"',
    f"{{'Authorization': 'Bearer {TOKEN}', 'X-CSRFTOKEN': '{TOKEN}'}}",
    f"username=admin&secretkey={PASSWORD}&ajax=1",
    f'{{"username": "admin", "secretkey": "{PASSWORD}", "session_key": "{TOKEN}"}}',
    f"session_key_443_9f2c={TOKEN}",
    f"x-csrftoken: {TOKEN}",
]


@pytest.mark.parametrize("text", SHAPES)
def test_redact_knows_the_shapes_libraries_log(text: str) -> None:
    scrubbed = redact(text)
    assert TOKEN not in scrubbed
    assert PASSWORD not in scrubbed
    assert "***" in scrubbed


def test_redact_leaves_ordinary_lines_alone() -> None:
    line = "fgt-1: GET /api/v2/cmdb/firewall/policy?vdom=root -> 200 (12 ms); name=mail-inbound"
    assert redact(line) == line


def test_the_filter_is_on_every_logger_that_sees_a_request_once() -> None:
    FortiOSClient(BASE, token=TOKEN)
    FortiOSClient(BASE, token=TOKEN)  # idempotent
    for name in (*LOGGER_FAMILIES, "httpcore.http11", "httpcore.connection", "hpack.hpack"):
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, RedactingFilter)]
        assert len(filters) == 1, name


@pytest.mark.parametrize("name", ["httpcore.http11", "httpx", "hpack.hpack", "asyncio", "fortiauto.fortios"])
def test_records_are_scrubbed_message_args_and_traceback(
    debug_logs: pytest.LogCaptureFixture, name: str
) -> None:
    FortiOSClient(BASE, token=TOKEN)
    try:
        raise RuntimeError(f"Illegal header value b'Bearer {TOKEN}'")
    except RuntimeError:
        logging.getLogger(name).debug(
            "headers=%r", [(b"Cookie", f"APSCOOKIE_1={TOKEN}".encode())], exc_info=True
        )
    assert "(b'Cookie', b'***')" in debug_logs.text
    assert "Illegal header value" in debug_logs.text
    assert_clean(debug_logs.text, *(r.getMessage() for r in debug_logs.records))


@pytest.mark.parametrize(
    ("token", "said"),
    [
        (f"{TOKEN}\n\n", "leading or trailing newline"),
        (f" {TOKEN}", "leading or trailing whitespace"),
        (f"{TOKEN[:5]} {TOKEN[5:]}", "whitespace, control or non-ASCII"),
        (f"{TOKEN}é", "whitespace, control or non-ASCII"),
        ("", "empty"),
    ],
)
def test_a_token_no_header_can_carry_is_refused_naming_device_and_key(token: str, said: str) -> None:
    with pytest.raises(errors.InputError) as caught:
        FortiOSClient(BASE, token=token, name="fgt-7")
    assert str(caught.value).startswith("fgt-7: token: ")
    assert said in str(caught.value)
    assert_clean(*texts_of(caught.value))
