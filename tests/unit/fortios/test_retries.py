"""Retry policy: reads retry with exponential backoff; writes only when nothing reached the device."""

from __future__ import annotations

import httpx
import pytest
from pytest_httpx import HTTPXMock

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from fortiauto.results import RequestCounts
from tests.unit.fortios.conftest import BASE, TOKEN, envelope, error_envelope

OK = envelope(results=[{"name": "vip-mx1"}])


async def test_get_retries_server_errors_with_backoff(
    api: FortiOSClient, httpx_mock: HTTPXMock, delays: list[float]
) -> None:
    httpx_mock.add_response(status_code=500, json=error_envelope(500, error=-160))
    httpx_mock.add_response(status_code=503, text="busy")
    httpx_mock.add_response(json=OK)
    assert await api.get("firewall/vip") == [{"name": "vip-mx1"}]
    assert delays == [0.2, 0.4]
    assert api.counts == RequestCounts(total=3, writes=0)


async def test_get_retries_rate_limit_and_transport_errors(
    api: FortiOSClient, httpx_mock: HTTPXMock, delays: list[float]
) -> None:
    httpx_mock.add_response(status_code=429, json=error_envelope(429))
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    httpx_mock.add_response(json=OK)
    assert await api.get("firewall/vip") == [{"name": "vip-mx1"}]
    assert delays == [0.2, 0.4]


async def test_get_gives_up_after_the_retry_bound(httpx_mock: HTTPXMock, delays: list[float]) -> None:
    for _ in range(5):
        httpx_mock.add_exception(httpx.ConnectError("All connection attempts failed"))
    async with FortiOSClient(BASE, token=TOKEN, retries=4, backoff=1.0) as client:
        with pytest.raises(errors.ConnectError):
            await client.get("firewall/vip")
        assert client.counts == RequestCounts()  # nothing reached the device
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert len(httpx_mock.get_requests()) == 5


async def test_retries_zero_means_one_attempt(httpx_mock: HTTPXMock, delays: list[float]) -> None:
    httpx_mock.add_response(status_code=500, json=error_envelope(500))
    async with FortiOSClient(BASE, token=TOKEN, retries=0) as client:
        with pytest.raises(errors.ServerError):
            await client.get("firewall/vip")
    assert delays == []


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (404, error_envelope(404), errors.NotFound),
        (500, error_envelope(500, error=-651), errors.InvalidValue),
        (424, error_envelope(424), errors.DependencyFailed),
    ],
)
async def test_get_does_not_retry_definite_answers(
    api: FortiOSClient,
    httpx_mock: HTTPXMock,
    delays: list[float],
    status: int,
    body: dict[str, object],
    cls: type[Exception],
) -> None:
    httpx_mock.add_response(status_code=status, json=body)
    with pytest.raises(cls):
        await api.get("firewall/vip", "x")
    assert delays == []


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_writes_are_not_retried_on_http_errors(
    api: FortiOSClient, httpx_mock: HTTPXMock, delays: list[float], status: int
) -> None:
    httpx_mock.add_response(
        status_code=status, json=error_envelope(status, error=-61 if status == 500 else None)
    )
    with pytest.raises(errors.APIError):
        await api.update("firewall/policy", 12, {"inspection-mode": "proxy"})
    assert len(httpx_mock.get_requests()) == 1
    assert delays == []
    assert api.counts == RequestCounts(total=1, writes=1)


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("All connection attempts failed"), httpx.ConnectTimeout("timed out")]
)
async def test_writes_retry_when_the_connection_never_opened(
    api: FortiOSClient, httpx_mock: HTTPXMock, delays: list[float], exc: Exception
) -> None:
    httpx_mock.add_exception(exc)
    httpx_mock.add_exception(exc)
    httpx_mock.add_response(json=envelope(method="POST", mkey="x"))
    result = await api.create("firewall/vip", {"name": "x"})
    assert result.mkey == "x"
    assert delays == [0.2, 0.4]
    assert api.counts == RequestCounts(total=1, writes=1)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
)
async def test_lost_write_answer_is_response_lost_and_sent_once(
    api: FortiOSClient, httpx_mock: HTTPXMock, delays: list[float], exc: Exception
) -> None:
    httpx_mock.add_exception(exc)
    with pytest.raises(errors.ResponseLost) as caught:
        await api.update("firewall/policy", 12, {"inspection-mode": "proxy"})
    assert len(httpx_mock.get_requests()) == 1
    assert delays == []
    assert (caught.value.method, caught.value.mkey) == ("PUT", 12)
    # The write may have taken effect, so it counts as one.
    assert api.counts == RequestCounts(total=1, writes=1)


async def test_lost_monitor_post_is_response_lost(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    with pytest.raises(errors.ResponseLost):
        await api.monitor_post("vpn-certificate/local/import", {"type": "regular", "certname": "mx1"})
    assert len(httpx_mock.get_requests()) == 1


async def test_lost_delete_and_move_are_response_lost(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    with pytest.raises(errors.ResponseLost):
        await api.delete("firewall/vip", "x")
    with pytest.raises(errors.ResponseLost):
        await api.move("firewall/policy", 12, after=3)
    assert len(httpx_mock.get_requests()) == 2
