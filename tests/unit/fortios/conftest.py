"""Fixtures for the FortiOS client tests: realistic envelopes, a token client, recorded backoff.

Envelope shapes follow docs/reference/fortios-protocol.md section 5 (what real 6.4-7.4 devices
send); the canary secrets let any test check that a token or password never leaks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from fortiauto.fortios import client as client_module
from fortiauto.fortios.client import FortiOSClient

BASE = "https://fgt.test:8443"
TOKEN = "canary-token-7f3a9c2e11"
PASSWORD = "canary-pw-Zq9!x4"
USERNAME = "fortiauto-admin"
CSRF = "0A1B2C3D4E5F60718293A4B5C6D7E8F9"


def cmdb_url(path: str, mkey: str | None = None) -> str:
    url = f"{BASE}/api/v2/cmdb/{path}"
    return f"{url}/{mkey}" if mkey is not None else url


def envelope(
    *,
    method: str = "GET",
    path: str = "firewall",
    name: str = "policy",
    vdom: str = "root",
    version: str = "v7.0.12",
    **fields: Any,
) -> dict[str, Any]:
    """A success envelope as FortiOS sends it; ``fields`` add or override keys."""
    body: dict[str, Any] = {
        "http_method": method,
        "revision": "2c4b8a4f0e5f4c6b9a1d2e3f4a5b6c7d",
        "vdom": vdom,
        "path": path,
        "name": name,
        "status": "success",
        "http_status": 200,
        "serial": "FGT60FTK2099ABCD",
        "version": version,
        "build": 1000,
    }
    if method != "GET":
        body.update(old_revision="1b3a7939fd4e4b5a8f0c1d2e3f4a5b6c", revision_changed=True)
    body.update(fields)
    return body


def error_envelope(
    http_status: int, *, error: int | None = None, cli_error: Any = None, **fields: Any
) -> dict[str, Any]:
    body = envelope(status="error", http_status=http_status, **fields)
    body.pop("results", None)
    if error is not None:
        body["error"] = error
    if cli_error is not None:
        body["cli_error"] = cli_error
    return body


def echo_envelope(request: httpx.Request) -> httpx.Response:
    """A well-formed success answer to any request: one object for reads, none for writes."""
    if request.method == "GET":
        return httpx.Response(200, json=envelope(results=[{"name": "x"}]))
    return httpx.Response(200, json=envelope(method=request.method))


def only_request(httpx_mock: HTTPXMock) -> httpx.Request:
    """The single request the test made (fails when there were none or several)."""
    request = httpx_mock.get_request()
    assert request is not None
    return request


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff delays the client asked for, recorded instead of slept."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", fake_sleep)
    return recorded


@pytest.fixture
async def api(delays: list[float]) -> AsyncIterator[FortiOSClient]:
    """A token client named ``fgt-1`` with the default 2 retries and 0.2 s backoff (sleeps recorded)."""
    async with FortiOSClient(BASE, token=TOKEN, name="fgt-1") as client:
        yield client
