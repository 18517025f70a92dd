"""A scripted FortiManager for the client's unit tests: one handler per url, served over MockTransport.

``FakeFMG`` answers JSON-RPC the way FortiManager does (``result[0].status.code``, ``data``,
``session`` on login) and records every request body, so a test can check what was sent.
Canary secrets let any test prove a password, token, key or session id never leaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fortiauto.fortimanager import client as client_module

BASE = "https://fmg.test:8443"
USERNAME = "fortiauto-api"
PASSWORD = "canary-fmg-pw-Qx81!"
TOKEN = "canary-fmg-token-3k29fj20dk"
SESSION = "canary-session-Zm9ydGlhdXRv=="

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def ok(url: str, data: Any = None, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"status": {"code": 0, "message": "OK"}, "url": url}
    if data is not None:
        result["data"] = data
    return {"result": [result], **extra}


def fail(url: str, code: int, message: str) -> dict[str, Any]:
    return {"result": [{"status": {"code": code, "message": message}, "url": url}]}


class FakeFMG:
    """Routes each JSON-RPC call by (method, url) to a handler; unknown routes answer -6."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler | list[Handler]] = {}
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.add("exec", "/sys/login/user", lambda body: ok("/sys/login/user", session=SESSION))
        self.add("exec", "/sys/logout", lambda body: ok("/sys/logout"))

    def add(self, method: str, url: str, handler: Handler | list[Handler]) -> None:
        self.routes[(method, url)] = handler

    def reply(self, method: str, url: str, answer: dict[str, Any]) -> None:
        self.add(method, url, lambda body: answer)

    def calls(self, method: str | None = None) -> list[tuple[str, str]]:
        out = [(b["method"], b["params"][0]["url"]) for b in self.bodies]
        return [c for c in out if method is None or c[0] == method]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/jsonrpc"
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(request.headers)
        key = (body["method"], body["params"][0]["url"])
        handler = self.routes.get(key)
        if isinstance(handler, list):
            handler = handler.pop(0) if len(handler) > 1 else handler[0]
        if handler is None:
            return httpx.Response(200, json=fail(key[1], -6, "Invalid url"))
        return httpx.Response(200, json=handler(body))


@pytest.fixture
def fmg() -> FakeFMG:
    return FakeFMG()


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Task polling without real sleeps; the list records each requested delay."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", fake_sleep)
    return slept
