"""Every error class the client raises, from realistic FortiOS answers and httpx failures, with context."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from tests.unit.fortios.conftest import BASE, TOKEN, envelope, error_envelope

NODE_CHECK = 'node_check_object fail! for name mail-inbound\n\nvalue parse error before "mail-inbound"'
NODE_CHECK_LINE = 'node_check_object fail! for name mail-inbound; value parse error before "mail-inbound"'


async def call(client: FortiOSClient, method: str) -> Any:
    if method == "POST":
        return await client.create("emailfilter/profile", {"name": "mail-inbound"}, vdom="dmz")
    if method == "PUT":
        return await client.update("firewall/policy", 12, {"emailfilter-profile": "mail-inbound"}, vdom="dmz")
    if method == "DELETE":
        return await client.delete("firewall/policy", 12, vdom="dmz")
    return await client.get("firewall/policy", 12, vdom="dmz")


API_ERRORS = [
    # (method, HTTP status, body, expected class, error code, cli_error)
    ("GET", 404, error_envelope(404, mkey=12), errors.NotFound, None, None),
    ("PUT", 404, error_envelope(404, mkey=12), errors.NotFound, None, None),
    ("DELETE", 500, error_envelope(500, error=-3, mkey=12), errors.NotFound, -3, None),
    ("POST", 500, error_envelope(500, error=-5, revision_changed=False), errors.AlreadyExists, -5, None),
    (
        "DELETE",
        500,
        error_envelope(500, error=-23, cli_error="The entry is used by other 1 entries"),
        errors.InUse,
        -23,
        "The entry is used by other 1 entries",
    ),
    (
        "PUT",
        500,
        error_envelope(500, error=-651, cli_error=NODE_CHECK),
        errors.InvalidValue,
        -651,
        NODE_CHECK_LINE,  # one line, whatever the build's form
    ),
    ("PUT", 500, error_envelope(500, error=-650), errors.InvalidValue, -650, None),
    (
        "POST",
        500,
        error_envelope(500, error=-145, cli_error="invalid private key"),
        errors.InvalidValue,
        -145,
        None,
    ),
    ("POST", 500, error_envelope(500, error=-146), errors.InvalidValue, -146, None),
    ("POST", 424, error_envelope(424), errors.DependencyFailed, None, None),
    ("PUT", 429, error_envelope(429), errors.RateLimited, None, None),
    (
        "PUT",
        500,
        error_envelope(500, error=-61, cli_error="Command fail"),
        errors.ServerError,
        -61,
        "Command fail",
    ),
    ("PUT", 503, None, errors.ServerError, None, None),
    ("PUT", 405, error_envelope(405), errors.APIError, None, None),
    (
        "PUT",
        500,
        error_envelope(500, error=-651, cli_error=["node_check_object fail!", "Return code -651"]),
        errors.InvalidValue,
        -651,
        "node_check_object fail!; Return code -651",
    ),
]


@pytest.mark.parametrize(("method", "status", "body", "cls", "code", "cli_error"), API_ERRORS)
async def test_api_errors(
    httpx_mock: HTTPXMock,
    delays: list[float],
    method: str,
    status: int,
    body: dict[str, Any] | None,
    cls: type[errors.APIError],
    code: int | None,
    cli_error: str | None,
) -> None:
    if body is None:
        httpx_mock.add_response(status_code=status, text="<html>Service Unavailable</html>")
    else:
        httpx_mock.add_response(status_code=status, json=body)
    async with FortiOSClient(BASE, token=TOKEN, name="fgt-1", retries=0) as client:
        with pytest.raises(errors.APIError) as caught:
            await call(client, method)
    err = caught.value
    assert type(err) is cls
    assert (err.method, err.vdom, err.device, err.http_status, err.error_code) == (
        method,
        "dmz",
        "fgt-1",
        status,
        code,
    )
    assert err.path == ("emailfilter/profile" if method == "POST" else "firewall/policy")
    assert err.mkey == (None if method == "POST" else 12)
    if cli_error is not None:
        assert err.cli_error == cli_error
        assert cli_error in str(err)
    assert f"http {status}" in str(err)
    assert "vdom=dmz" in str(err)


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors(httpx_mock: HTTPXMock, status: int) -> None:
    if status == 401:
        # FortiOS answers 401 with an Apache-style HTML page, not JSON.
        httpx_mock.add_response(
            status_code=401, html="<html><head><title>401 Unauthorized</title></head></html>"
        )
    else:
        httpx_mock.add_response(
            status_code=403,
            json=error_envelope(403, path="system", name="os", action="reboot", method="POST"),
        )
    async with FortiOSClient(BASE, token=TOKEN, name="fgt-1") as client:
        with pytest.raises(errors.AuthError) as caught:
            await call(client, "PUT")
    err = caught.value
    assert (err.http_status, err.method, err.path, err.mkey, err.vdom, err.device) == (
        status,
        "PUT",
        "firewall/policy",
        12,
        "dmz",
        "fgt-1",
    )
    assert len(httpx_mock.get_requests()) == 1


async def test_redirect_to_https_is_an_api_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=301, headers={"location": "https://10.0.0.1/"}, text="")
    async with FortiOSClient("http://10.0.0.1", token=TOKEN, allow_insecure_http=True) as client:
        with pytest.raises(errors.APIError, match="redirect"):
            await client.get("firewall/vip")


TRANSPORT_ERRORS = [
    # (method, httpx exception, expected class)
    ("GET", httpx.ConnectError("All connection attempts failed"), errors.Unreachable),
    ("PUT", httpx.ConnectError("All connection attempts failed"), errors.Unreachable),
    ("GET", httpx.ConnectTimeout("timed out"), errors.Unreachable),
    ("GET", httpx.ReadTimeout("timed out"), errors.Timeout),
    ("GET", httpx.ReadError("connection reset"), errors.TransportError),
    ("GET", httpx.RemoteProtocolError("Server disconnected"), errors.TransportError),
    ("PUT", httpx.ReadTimeout("timed out"), errors.ResponseLost),
    (
        "POST",
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        errors.ResponseLost,
    ),
    ("DELETE", httpx.ReadError("connection reset by peer"), errors.ResponseLost),
    ("PUT", httpx.WriteError("broken pipe"), errors.ResponseLost),
    # A header no HTTP can carry is refused before anything leaves: not a lost write.
    ("PUT", httpx.LocalProtocolError("Illegal header value b'x\\n'"), errors.TransportError),
]


@pytest.mark.parametrize(("method", "exc", "cls"), TRANSPORT_ERRORS)
async def test_transport_errors(
    httpx_mock: HTTPXMock, method: str, exc: Exception, cls: type[Exception]
) -> None:
    httpx_mock.add_exception(exc)
    async with FortiOSClient(BASE, token=TOKEN, name="fgt-1", retries=0) as client:
        with pytest.raises(errors.TransportError) as caught:
            await call(client, method)
    err = caught.value
    assert type(err) is cls
    assert err.__cause__ is exc
    assert (err.method, err.vdom, err.device) == (method, "dmz", "fgt-1")
    assert not isinstance(err, httpx.HTTPError)


async def test_errors_belong_to_the_fortios_family_with_exit_code_4(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=500, json=error_envelope(500, error=-5))
    async with FortiOSClient(BASE, token=TOKEN) as client:
        with pytest.raises(errors.FortiOSError) as caught:
            await client.create("firewall/vip", {"name": "x"})
    assert caught.value.exit_code == 4


async def test_system_status_without_version_is_a_fortios_error(httpx_mock: HTTPXMock) -> None:
    body = envelope(path="system", name="status", results={})
    del body["version"]
    httpx_mock.add_response(json=body)
    async with FortiOSClient(BASE, token=TOKEN) as client:
        with pytest.raises(errors.FortiOSError, match="no version"):
            await client.system_status()
