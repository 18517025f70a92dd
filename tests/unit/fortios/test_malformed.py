"""Answers that are not a well-formed FortiOS envelope for what was asked are ``MalformedAnswer``.

Never success, never "absent": a 200 with HTML, no JSON or a JSON list; an envelope without
``status``; a read without ``results`` or with results of the wrong shape; a write not reporting
success; an echoed ``mkey`` or ``http_method`` that is not the one asked for; a 404 that is not
FortiOS's own error envelope.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from tests.unit.fortios.conftest import BASE, TOKEN, envelope, error_envelope

ADDRESS = {"name": "mx1", "subnet": "192.0.2.25 255.255.255.255"}


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


@pytest.fixture
async def strict(delays: list[float]) -> Any:
    async with FortiOSClient(BASE, token=TOKEN, name="fgt-1", retries=0) as client:
        yield client


BAD_READS = [
    # (id, response kwargs, what the message says)
    ("html-200", {"html": "<html><body>Please log in</body></html>"}, "HTML page"),
    ("html-no-type", {"text": "<!DOCTYPE html><html></html>"}, "HTML page"),
    ("not-json", {"text": "OK"}, "not JSON"),
    ("empty", {"text": ""}, "empty body"),
    ("json-list", {"json": [envelope(results=[ADDRESS])]}, "not an object"),
    ("json-string", {"json": "success"}, "not an object"),
    ("no-status", {"json": without(envelope(results=[ADDRESS]), "status")}, "without status"),
    ("odd-status", {"json": envelope(status="pending", results=[ADDRESS])}, "status 'pending'"),
    ("no-results", {"json": envelope()}, "without results"),
    ("empty-results", {"json": envelope(results=[])}, "an empty list"),
    ("two-results", {"json": envelope(results=[ADDRESS, ADDRESS])}, "a list of 2"),
    ("results-object", {"json": envelope(results=ADDRESS)}, "a dict"),
    ("results-of-strings", {"json": envelope(results=["mx1"])}, "a list of 1 (str)"),
    ("wrong-mkey", {"json": envelope(results=[ADDRESS], mkey="mx2")}, "mkey 'mx2'"),
    ("answer-to-a-put", {"json": envelope(method="PUT", results=[ADDRESS])}, "an answer to a PUT"),
    ("html-404", {"status_code": 404, "html": "<html>404 Not Found</html>"}, "HTTP 404 with an HTML page"),
    ("empty-404", {"status_code": 404, "text": ""}, "HTTP 404 with an empty body"),
    ("json-404-no-status", {"status_code": 404, "json": {"http_status": 404}}, "without FortiOS's error"),
    ("404-other-mkey", {"status_code": 404, "json": error_envelope(404, mkey="mx2")}, "mkey 'mx2'"),
]


@pytest.mark.parametrize(("case", "answer", "said"), BAD_READS, ids=[c[0] for c in BAD_READS])
async def test_member_read_never_success_never_absent(
    strict: FortiOSClient, httpx_mock: HTTPXMock, case: str, answer: dict[str, Any], said: str
) -> None:
    httpx_mock.add_response(**answer)
    with pytest.raises(errors.MalformedAnswer) as caught:
        await strict.get_one("firewall/address", "mx1")
    err = caught.value
    assert said in str(err)
    assert (err.method, err.path, err.mkey, err.vdom, err.device) == (
        "GET",
        "firewall/address",
        "mx1",
        "root",
        "fgt-1",
    )
    assert err.exit_code == 4


async def test_get_one_is_none_only_for_fortios_own_404(strict: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=404, json=error_envelope(404, mkey="mx1"))
    httpx_mock.add_response(status_code=500, json=error_envelope(500, error=-3, mkey="mx1"))
    assert await strict.get_one("firewall/address", "mx1") is None
    assert await strict.get_one("firewall/address", "mx1") is None


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"json": envelope(results=[ADDRESS, "x"])}, "not a list of objects"),
        ({"json": envelope(results="all")}, "a str"),
        ({"json": envelope()}, "without results"),
        ({"html": "<html></html>"}, "HTML page"),
    ],
)
async def test_table_read_shapes(
    strict: FortiOSClient, httpx_mock: HTTPXMock, answer: dict[str, Any], said: str
) -> None:
    httpx_mock.add_response(**answer)
    with pytest.raises(errors.MalformedAnswer, match=said):
        await strict.get("firewall/address")


async def test_table_list_and_singleton_object_are_well_formed(
    strict: FortiOSClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=envelope(results=[]))
    httpx_mock.add_response(json=envelope(path="system", name="global", results={"hostname": "edge"}))
    assert await strict.get("firewall/address") == []
    assert await strict.get("system/global") == [{"hostname": "edge"}]


BAD_WRITES = [
    ("html-200", {"html": "<html>Portal</html>"}, "HTML page"),
    ("empty", {"text": ""}, "empty body"),
    ("no-status", {"json": without(envelope(method="PUT", mkey="mx1"), "status")}, "without status"),
    ("status-ok", {"json": envelope(method="PUT", mkey="mx1", status="ok")}, "status 'ok'"),
    ("wrong-mkey", {"json": envelope(method="PUT", mkey="mx2")}, "mkey 'mx2'"),
    ("answer-to-a-get", {"json": envelope(results=[ADDRESS])}, "an answer to a GET"),
    ("json-list", {"json": [envelope(method="PUT", mkey="mx1")]}, "not an object"),
]


@pytest.mark.parametrize(("case", "answer", "said"), BAD_WRITES, ids=[c[0] for c in BAD_WRITES])
async def test_write_answer_is_never_success_unless_fortios_says_so(
    strict: FortiOSClient, httpx_mock: HTTPXMock, case: str, answer: dict[str, Any], said: str
) -> None:
    httpx_mock.add_response(**answer)
    with pytest.raises(errors.MalformedAnswer) as caught:
        await strict.update("firewall/address", "mx1", {"comment": "x"})
    assert said in str(caught.value)
    assert "read the object again" in str(caught.value)
    assert strict.counts.writes == 1


async def test_create_checks_the_echoed_mkey_when_asked(strict: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=envelope(method="POST", mkey="mx2"))
    httpx_mock.add_response(json=envelope(method="POST", mkey=17))
    with pytest.raises(errors.MalformedAnswer, match="mkey 'mx2', not 'mx1'"):
        await strict.create("firewall/address", ADDRESS, mkey="mx1")
    # A policy's id is FortiOS's to assign: no mkey expected, any echoed one is taken.
    assert (await strict.create("firewall/policy", {"policyid": 0, "name": "p"})).mkey == 17


async def test_mangled_reads_are_retried_writes_never(httpx_mock: HTTPXMock, delays: list[float]) -> None:
    httpx_mock.add_response(method="GET", html="<html></html>")
    httpx_mock.add_response(method="GET", json=envelope(results=[ADDRESS]))
    httpx_mock.add_response(method="PUT", html="<html></html>")
    async with FortiOSClient(BASE, token=TOKEN, retries=2) as client:
        assert await client.get_one("firewall/address", "mx1") == ADDRESS
        with pytest.raises(errors.MalformedAnswer):
            await client.update("firewall/address", "mx1", {"comment": "x"})
    assert len(httpx_mock.get_requests()) == 3


async def test_monitor_reads_need_results(strict: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=envelope(path="system", name="status"))
    httpx_mock.add_response(json=envelope(path="system", name="status", results=["not", "an", "object"]))
    with pytest.raises(errors.MalformedAnswer, match="without results"):
        await strict.monitor_get("system/status")
    with pytest.raises(errors.MalformedAnswer, match="results object"):
        await strict.system_status()


async def test_log_reads_take_text_but_not_html(strict: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(text='date=2026-12-01 logid="0510020491" subtype="smtp"\n')
    httpx_mock.add_response(html="<html><body>Please log in</body></html>")
    httpx_mock.add_response(json={"status": "success", "http_status": 200})
    assert (await strict.log_get("memory/emailfilter/raw")).startswith("date=")
    with pytest.raises(errors.MalformedAnswer, match="HTML"):
        await strict.log_get("memory/emailfilter/raw")
    with pytest.raises(errors.MalformedAnswer, match="without results"):
        await strict.log_get("memory/emailfilter/raw")


async def test_error_envelopes_are_still_their_api_errors(
    strict: FortiOSClient, httpx_mock: HTTPXMock
) -> None:
    # A refusal is not "malformed": it is FortiOS saying no, with its code.
    httpx_mock.add_response(status_code=500, json=error_envelope(500, error=-5, method="POST"))
    httpx_mock.add_response(json=error_envelope(500, error=-651, method="PUT"))  # HTTP 200, body says 500
    with pytest.raises(errors.AlreadyExists):
        await strict.create("firewall/address", ADDRESS)
    with pytest.raises(errors.InvalidValue):
        await strict.update("firewall/address", "mx1", {"comment": "x"})
