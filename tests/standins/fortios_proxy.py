"""A misbehaving HTTPS stand-in that sits in front of a FortiGate (a lab device) and mangles answers.

The lab answers like FortiOS; real networks have proxies, load balancers and half-dead units in
between. This stand-in forwards each request to the upstream device and, per request, can
answer what FortiOS never sends, to prove a client never takes such an answer for success or
for "absent". It binds 127.0.0.1 on a port the OS picks, with its own trustme CA.

API (async, in the test's event loop)::

    proxy = FortiOSProxy(upstream_url, upstream_ca=lab.ca_path, directory=tmp_path)
    async with proxy:
        proxy.url                  # "https://127.0.0.1:<port>" (certificate for 127.0.0.1, localhost)
        proxy.ca_path              # the stand-in's CA, PEM: the client's verify_tls
        proxy.fingerprint          # "sha256:<hex>" of its certificate, for verify_tls pinning
        proxy.add(Rule(Fault.HTML_200, method="GET", path=r"^/api/v2/cmdb/", after_writes=1))
        proxy.clear()              # back to a transparent proxy
        proxy.exchanges            # [Exchange(method, path, fault, forwarded, status)], in order
        proxy.forwarded_writes     # API writes that reached the upstream

or from synchronous code (a CLI run in a subprocess, the engine tests)::

    with ProxyThread(upstream_url, upstream_ca=..., directory=...) as proxy:
        ...same attributes; add()/clear() are thread-safe...
        site = proxied_site(lab.site_path, proxy, device="fgt-001")  # the lab's site.yml, via the proxy
        subprocess.run(["fortiauto", "apply", str(site), "--yes"], ...)

``Rule(fault, method=None, path=None, after_writes=0, skip=0, times=None, delay=0.0)`` matches
a request when ``method`` (one or a set; ``"WRITE"`` = POST/PUT/DELETE) and the ``path`` regex
(searched in path and query) match and at least ``after_writes`` API writes have been forwarded;
it then lets ``skip`` matches pass and applies to the next ``times`` (None: all). The first
matching rule wins. Login and logout requests count as neither reads nor writes but can be
matched by path. "Every answer after the first write is mangled" is
``Rule(Fault.HTML_200, after_writes=1)``.

Faults (``Fault``), each after forwarding the request unless it says otherwise:

    HTML_200       200 with an HTML page (a captive portal, a proxy's error page)
    NOT_JSON       200 with plain text
    EMPTY_BODY     200 with an empty body
    JSON_LIST      200 with the envelope wrapped in a JSON list
    NO_STATUS      the envelope without ``status``
    DROP_RESULTS   the envelope without ``results``
    EMPTY_RESULTS  ``results`` replaced by [] (a member read that looks absent)
    WRONG_MKEY     ``mkey`` replaced by another name
    FAKE_404       not forwarded: an HTML 404 page (looks like "absent" to a careless client)
    SWALLOW_WRITE  not forwarded: a perfect FortiOS success envelope for the write (never applied)
    LOSE_ANSWER    forwarded, then the connection is closed without an answer
    DELAY          forwarded, the answer held back ``delay`` seconds (a client timeout fires first)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import trustme
from aiohttp import web
from multidict import CIMultiDict

__all__ = ["Exchange", "Fault", "FortiOSProxy", "ProxyThread", "Rule", "proxied_site"]

_WRITES = frozenset({"POST", "PUT", "DELETE"})
_LOGIN_PATHS = ("/logincheck", "/logout", "/api/v2/authentication")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
    }
)
_HTML = "<!DOCTYPE html><html><head><title>Portal</title></head><body>Please log in</body></html>\n"


class Fault(Enum):
    """What the stand-in does to one exchange (see the module docstring)."""

    PASS = "pass"
    HTML_200 = "html-200"
    NOT_JSON = "not-json"
    EMPTY_BODY = "empty-body"
    JSON_LIST = "json-list"
    NO_STATUS = "no-status"
    DROP_RESULTS = "drop-results"
    EMPTY_RESULTS = "empty-results"
    WRONG_MKEY = "wrong-mkey"
    FAKE_404 = "fake-404"
    SWALLOW_WRITE = "swallow-write"
    LOSE_ANSWER = "lose-answer"
    DELAY = "delay"


_NOT_FORWARDED = frozenset({Fault.FAKE_404, Fault.SWALLOW_WRITE})


@dataclass
class Rule:
    """When to apply ``fault``; ``skip`` and ``times`` count down as requests match."""

    fault: Fault
    method: str | frozenset[str] | None = None
    path: str | None = None
    after_writes: int = 0
    skip: int = 0
    times: int | None = None
    delay: float = 0.0

    def matches(self, method: str, path_qs: str, forwarded_writes: int) -> bool:
        wanted: frozenset[str] | None = self.method if not isinstance(self.method, str) else None
        if isinstance(self.method, str):
            wanted = _WRITES if self.method == "WRITE" else frozenset({self.method})
        if wanted is not None and method not in wanted:
            return False
        if self.path is not None and not re.search(self.path, path_qs):
            return False
        return forwarded_writes >= self.after_writes and self.times != 0

    def take(self) -> bool:
        """Count one match: False while skipping, True when the fault applies."""
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.times is not None:
            self.times -= 1
        return True


@dataclass(frozen=True)
class Exchange:
    """One request the stand-in saw, what it did, and the status it answered (None: no answer)."""

    method: str
    path: str
    fault: Fault
    forwarded: bool
    status: int | None


@dataclass
class _Upstream:
    url: str
    ssl_context: ssl.SSLContext | bool
    session: aiohttp.ClientSession | None = None
    last_envelope: dict[str, Any] = field(default_factory=dict)


class FortiOSProxy:
    """The stand-in server; ``async with`` starts it on 127.0.0.1 (OS-picked port) and stops it."""

    def __init__(self, upstream: str, *, upstream_ca: Path | None, directory: Path) -> None:
        context: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(upstream_ca)) if upstream_ca else False
        )
        self._upstream = _Upstream(upstream.rstrip("/"), context)
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "standin-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))
        der = ssl.PEM_cert_to_DER_cert(self._cert.cert_chain_pems[0].bytes().decode())
        self.fingerprint = "sha256:" + hashlib.sha256(der).hexdigest()
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []
        self.forwarded_writes = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    # --- control ------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(server_ctx)
        self._upstream.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._upstream.ssl_context),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://127.0.0.1:{port}"

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._upstream.session is not None:
            await self._upstream.session.close()
            self._upstream.session = None

    # --- the exchange -------------------------------------------------------------------

    def _choose(self, method: str, path_qs: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path_qs, self.forwarded_writes) and rule.take():
                    return rule
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._pending.add(task)
        try:
            return await self._exchange(request)
        finally:
            if task is not None:
                self._pending.discard(task)

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rule = self._choose(request.method, request.path_qs)
        fault = rule.fault if rule else Fault.PASS
        if fault in _NOT_FORWARDED:
            answer = _fabricated(fault, request, body, self._upstream.last_envelope)
            self._record(request, fault, forwarded=False, status=answer.status)
            return answer
        status, headers, content = await self._forward(request, body)
        if request.method in _WRITES and not request.path.startswith(_LOGIN_PATHS):
            with self._lock:
                self.forwarded_writes += 1
        if fault is Fault.LOSE_ANSWER:
            self._record(request, fault, forwarded=True, status=None)
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("stand-in: answer lost on purpose")
        if fault is Fault.DELAY and rule is not None:
            await asyncio.sleep(rule.delay)
        status, headers, content = _mangled(fault, status, headers, content)
        self._record(request, fault, forwarded=True, status=status)
        return web.Response(status=status, headers=headers, body=content)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, CIMultiDict[str], bytes]:
        session = self._upstream.session
        assert session is not None
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP)
        async with session.request(
            request.method,
            self._upstream.url + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as answer:
            content = await answer.read()
            kept = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP)
            with contextlib.suppress(ValueError):
                decoded = json.loads(content)
                if isinstance(decoded, dict) and "serial" in decoded:
                    self._upstream.last_envelope = decoded
            return answer.status, kept, content

    def _record(self, request: web.Request, fault: Fault, *, forwarded: bool, status: int | None) -> None:
        with self._lock:
            self.exchanges.append(Exchange(request.method, request.path_qs, fault, forwarded, status))


def _mangled(
    fault: Fault, status: int, headers: CIMultiDict[str], content: bytes
) -> tuple[int, CIMultiDict[str], bytes]:
    if fault is Fault.HTML_200:
        return 200, _typed(headers, "text/html"), _HTML.encode()
    if fault is Fault.NOT_JSON:
        return 200, _typed(headers, "text/plain"), b"OK\n"
    if fault is Fault.EMPTY_BODY:
        return 200, _typed(headers, "application/json"), b""
    try:
        envelope = json.loads(content)
    except ValueError:
        return status, headers, content
    if not isinstance(envelope, dict):
        return status, headers, content
    if fault is Fault.JSON_LIST:
        return status, headers, json.dumps([envelope]).encode()
    if fault is Fault.NO_STATUS:
        envelope.pop("status", None)
    elif fault is Fault.DROP_RESULTS:
        envelope.pop("results", None)
    elif fault is Fault.EMPTY_RESULTS:
        envelope["results"] = []
    elif fault is Fault.WRONG_MKEY:
        envelope["mkey"] = f"{envelope.get('mkey', 'x')}-not-this-one"
    return status, headers, json.dumps(envelope).encode()


def _typed(headers: CIMultiDict[str], content_type: str) -> CIMultiDict[str]:
    out = CIMultiDict((k, v) for k, v in headers.items() if k.lower() != "content-type")
    out["Content-Type"] = content_type
    return out


def _fabricated(fault: Fault, request: web.Request, body: bytes, last: dict[str, Any]) -> web.Response:
    if fault is Fault.FAKE_404:
        page = "<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
        return web.Response(status=404, text=page, content_type="text/html")
    # SWALLOW_WRITE: exactly what FortiOS answers for an applied write, but nothing was applied.
    segments = request.path.split("/")
    envelope: dict[str, Any] = {
        "http_method": request.method,
        "revision": last.get("revision", "0" * 32),
        "revision_changed": True,
        "old_revision": last.get("revision", "0" * 32),
        "vdom": request.query.get("vdom", "root"),
        "path": segments[4] if len(segments) > 4 else "",
        "name": segments[5] if len(segments) > 5 else "",
        "status": "success",
        "http_status": 200,
        "serial": last.get("serial", "FGVMLAB0000000001"),
        "version": last.get("version", "v7.0.15"),
        "build": last.get("build", 0),
    }
    mkey = _written_mkey(request, body, segments)
    if mkey is not None:
        envelope["mkey"] = mkey
    return web.json_response(envelope)


def _written_mkey(request: web.Request, body: bytes, segments: list[str]) -> Any:
    if request.method != "POST" and len(segments) > 6:
        return segments[6]
    with contextlib.suppress(ValueError):
        decoded = json.loads(body or b"null")
        if isinstance(decoded, dict):
            return decoded.get("name", decoded.get("policyid"))
    return None


class ProxyThread:
    """``FortiOSProxy`` on its own event loop in a thread, for synchronous tests and subprocess runs."""

    def __init__(self, upstream: str, *, upstream_ca: Path | None, directory: Path) -> None:
        self._args = (upstream, upstream_ca, directory)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fortios-standin", daemon=True)
        self.proxy: FortiOSProxy | None = None

    def __enter__(self) -> FortiOSProxy:
        self._thread.start()
        upstream, upstream_ca, directory = self._args

        async def start() -> FortiOSProxy:
            proxy = FortiOSProxy(upstream, upstream_ca=upstream_ca, directory=directory)
            await proxy.start()
            return proxy

        self.proxy = asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=30)
        return self.proxy

    def __exit__(self, *exc_info: object) -> None:
        if self.proxy is not None:
            asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


def proxied_site(site: Path, proxy: FortiOSProxy, *, device: str = "fgt-001") -> Path:
    """A copy of a site file (beside it, so relative paths hold) with ``device`` reached through ``proxy``.

    The device's ``url`` becomes the stand-in's and its ``verify_tls`` the stand-in's CA; token,
    probes and everything else stay as they were.
    """
    from ruamel.yaml import YAML  # noqa: PLC0415 - the lab's YAML library, only needed here

    yaml = YAML(typ="rt")
    data = yaml.load(site.read_text())
    entry = next(d for d in data["devices"] if d["name"] == device)
    entry["url"] = proxy.url
    entry["verify_tls"] = str(proxy.ca_path)
    out = site.with_name(f"{site.stem}-via-standin{site.suffix}")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out
