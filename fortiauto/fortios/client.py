"""The async FortiOS REST client: the only code in fortiauto that talks HTTP to a FortiGate.

Tasks read facts and write changes through it, the engine asks it for the device's version and
request counts. It builds ``/api/v2/{cmdb,monitor,log}`` URLs (vdom on every call, mkeys encoded
with no safe characters), signs requests with ``auth.py``, retries what is safe to retry, parses
answers with ``envelope.py`` and lets ``errormap.py`` turn every failure, and every answer that
is not a well-formed FortiOS envelope for what was asked, into ``fortiauto.errors``. A write
whose answer is lost or mangled is never sent again: the caller gets ``ResponseLost`` or
``MalformedAnswer`` and re-reads. Write answers carry ``concurrent_edit`` (``revisions.py``).
Creating a client installs the log redaction of ``redact.py``; ``verify="sha256:..."`` pins
the device's own certificate (``pinning.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from fortiauto.errors import (
    AuthError,
    FortiOSError,
    InputError,
    MalformedAnswer,
    NotFound,
    RateLimited,
    ServerError,
    TLSVerifyError,
    TransportError,
)
from fortiauto.fortios.auth import (
    API_LOGIN_PATH,
    LoginRejected,
    SessionAuth,
    TokenAuth,
    as_secret,
    auth_for,
)
from fortiauto.fortios.envelope import Envelope, SystemStatus, decode_body, parse_envelope
from fortiauto.fortios.errormap import (
    SECRET_FIELDS,
    RequestContext,
    malformed,
    mapped_errors,
    nothing_sent,
    raise_for_answer,
    secret_values,
)
from fortiauto.fortios.pinning import is_pin, parse_pin, pinned_context
from fortiauto.fortios.redact import install_log_redaction
from fortiauto.fortios.revisions import RevisionTrail
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.results import RequestCounts

__all__ = ["USE_DEFAULT", "FortiOSClient", "UseDefault"]

logger = logging.getLogger("fortiauto.fortios")

# The one seam tests replace to observe backoff without waiting for it.
_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

_T = TypeVar("_T")

_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
# One keep-alive connection per device: the engine reads several objects at once (plan,
# read-back, log settings), and without a cap each concurrent read opened a TLS connection of
# its own (~5 per device), whose handshakes cost both sides a fifth of a fleet run's CPU
# (bench/RESULTS.md). The fleet's parallelism is across devices; one FortiGate's REST daemon
# gains little from parallel calls of one admin and rate-limits them (429).
_LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=1)
# A log read may answer plain text (the raw log format); an HTML page is never a log.
_TEXT_LOG_PROBLEMS = frozenset({"a body that is not JSON", "an empty body"})


class UseDefault:
    """Type of ``USE_DEFAULT``: "not given" as distinct from ``None`` (which omits the vdom)."""

    def __repr__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT: Final = UseDefault()


class _State(Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class FortiOSClient:
    """Async client for one FortiGate's REST API, authenticated by API token or session login.

    Use it as ``async with FortiOSClient(url, token=...) as api:``; entering logs in (session
    mode), leaving logs out and closes the connections. ``verify`` is True (system CAs), False,
    a CA bundle path, or ``"sha256:<hex>"`` to pin the device's own certificate.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | SecretStr | None = None,
        username: str | None = None,
        password: str | SecretStr | None = None,
        vdom: str = "root",
        verify: bool | str | Path = True,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "",
        allow_insecure_http: bool = False,
    ) -> None:
        install_log_redaction()
        self._name = name
        self._url = _base_url(url)
        token, password = as_secret(token), as_secret(password)
        self._auth = auth_for(token, username, password, device=name)
        if self._url.scheme == "http" and self._auth is not None and not allow_insecure_http:
            raise InputError(
                f"{self._url} is plain http: credentials would cross the network in clear text "
                "(use https, or set allow_insecure_http)"
            )
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise InputError("retries and backoff must be >= 0 and timeout > 0")
        self._secrets = tuple(s.get_secret_value() for s in (token, password) if s is not None)
        self._vdom = vdom
        self._verify = _tls_verify(verify)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._state = _State.UNOPENED
        self._total = 0
        self._writes = 0
        self._version: FortiOSVersion | None = None
        self._revisions = RevisionTrail()

    def __repr__(self) -> str:
        mode = {TokenAuth: "token", SessionAuth: "session"}.get(type(self._auth), "none")
        return f"FortiOSClient(name={self._name!r}, url={str(self._url)!r}, vdom={self._vdom!r}, auth={mode})"

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the connection pool and, in session mode, log in now (so bad credentials fail early)."""
        http = self._client()
        self._state = _State.OPEN
        if isinstance(self._auth, SessionAuth) and not self._auth.logged_in:
            try:
                await self._login(http, self._auth)
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        """Log out (session mode) and close the connections; safe to call twice."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        http, self._http = self._http, None
        if http is None:
            return
        try:
            if isinstance(self._auth, SessionAuth) and self._auth.logged_in:
                await self._logout(http, self._auth)
        finally:
            await http.aclose()

    # --- facts --------------------------------------------------------------------------

    @property
    def counts(self) -> RequestCounts:
        """API requests that reached (or may have reached) the device; login and logout excluded."""
        return RequestCounts(total=self._total, writes=self._writes)

    @property
    def version(self) -> FortiOSVersion | None:
        """The FortiOS version from the latest envelope that named one."""
        return self._version

    @property
    def name(self) -> str:
        return self._name

    async def system_status(self) -> SystemStatus:
        """``GET monitor/system/status``: version, serial, hostname, build and model."""
        envelope = await self._call("GET", "monitor", "system/status", vdom=USE_DEFAULT)
        try:
            if not isinstance(envelope.results, dict):
                raise ValueError("system status answer has no results object")
            return SystemStatus.from_envelope(envelope)
        except ValueError as exc:
            ctx = self._context("GET", "monitor/system/status", None, self._resolve_vdom(USE_DEFAULT))
            raise malformed(ctx, f"unexpected system status answer: {exc}") from exc

    # --- CMDB -----------------------------------------------------------------------------

    async def get(
        self,
        path: str,
        mkey: str | int | None = None,
        *,
        vdom: str | object = USE_DEFAULT,
        params: Mapping[str, str | list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """CMDB GET of a table, a member (a list of one) or a singleton (``[object]``); always a list.

        Raises ``MalformedAnswer`` when the answer has no ``results`` or results of the wrong
        shape (a member read is exactly one object: a missing member is FortiOS's 404).
        """
        envelope = await self._call("GET", "cmdb", path, mkey, vdom=vdom, params=params)
        results = envelope.results
        return [results] if isinstance(results, dict) else list(results)

    async def get_one(
        self,
        path: str,
        mkey: str | int,
        *,
        vdom: str | object = USE_DEFAULT,
        params: Mapping[str, str | list[str]] | None = None,
    ) -> dict[str, Any] | None:
        """One CMDB member, or ``None`` only when FortiOS itself answers 404 (or -3) for that mkey."""
        try:
            found = await self.get(path, mkey, vdom=vdom, params=params)
        except NotFound:
            return None
        return found[0]

    async def create(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        vdom: str | object = USE_DEFAULT,
        params: Mapping[str, str | list[str]] | None = None,
        mkey: str | int | None = None,
    ) -> Envelope:
        """POST a new member to a CMDB table (the mkey is inside ``body``).

        ``mkey``, when given, is the key FortiOS must echo (a name; not an auto-assigned policyid).
        """
        return await self._call("POST", "cmdb", path, vdom=vdom, params=params, body=body, expect_mkey=mkey)

    async def update(
        self,
        path: str,
        mkey: str | int,
        body: Mapping[str, Any],
        *,
        vdom: str | object = USE_DEFAULT,
        params: Mapping[str, str | list[str]] | None = None,
    ) -> Envelope:
        """PUT a CMDB member; FortiOS merges top-level keys but replaces any list that is sent."""
        return await self._call("PUT", "cmdb", path, mkey, vdom=vdom, params=params, body=body)

    async def delete(self, path: str, mkey: str | int, *, vdom: str | object = USE_DEFAULT) -> Envelope:
        """DELETE a CMDB member."""
        return await self._call("DELETE", "cmdb", path, mkey, vdom=vdom)

    async def move(
        self,
        path: str,
        mkey: str | int,
        *,
        before: str | int | None = None,
        after: str | int | None = None,
        vdom: str | object = USE_DEFAULT,
    ) -> Envelope:
        """Move a member (a firewall policy) before or after another: ``PUT ?action=move&after=N``."""
        if (before is None) == (after is None):
            raise InputError("move needs exactly one of before= or after=")
        where, target = ("before", before) if before is not None else ("after", after)
        params = {"action": "move", where: str(target)}
        return await self._call("PUT", "cmdb", path, mkey, vdom=vdom, params=params)

    # --- monitor and log ----------------------------------------------------------------

    async def monitor_get(
        self,
        path: str,
        *,
        vdom: str | object = USE_DEFAULT,
        params: Mapping[str, str | list[str]] | None = None,
    ) -> Any:
        """``results`` of ``GET /api/v2/monitor/<path>``."""
        envelope = await self._call("GET", "monitor", path, vdom=vdom, params=params)
        return envelope.results

    async def monitor_post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        vdom: str | object = USE_DEFAULT,
        params: Mapping[str, str | list[str]] | None = None,
    ) -> Envelope:
        """``POST /api/v2/monitor/<path>`` (an action such as a certificate import); counts as a write."""
        return await self._call("POST", "monitor", path, vdom=vdom, params=params, body=body)

    async def log_get(
        self,
        path: str,
        *,
        vdom: str | object = USE_DEFAULT,
        params: Mapping[str, str | list[str]] | None = None,
    ) -> Any:
        """``GET /api/v2/log/<path>``: the ``results`` of a JSON answer, or the raw log text.

        An HTML page, a JSON answer without ``results`` or any other non-envelope is ``MalformedAnswer``.
        """
        response, envelope = await self._exchange("GET", "log", path, vdom=vdom, params=params, text_ok=True)
        return response.text if envelope is None else envelope.results

    # --- the exchange -------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        api: str,
        path: str,
        mkey: str | int | None = None,
        *,
        vdom: str | object,
        params: Mapping[str, str | list[str]] | None = None,
        body: Mapping[str, Any] | None = None,
        expect_mkey: str | int | None = None,
    ) -> Envelope:
        _, envelope = await self._exchange(
            method, api, path, mkey, vdom=vdom, params=params, body=body, expect_mkey=expect_mkey
        )
        assert envelope is not None  # only text_ok exchanges answer without an envelope
        return envelope

    async def _exchange(
        self,
        method: str,
        api: str,
        path: str,
        mkey: str | int | None = None,
        *,
        vdom: str | object,
        params: Mapping[str, str | list[str]] | None = None,
        body: Mapping[str, Any] | None = None,
        expect_mkey: str | int | None = None,
        text_ok: bool = False,
    ) -> tuple[httpx.Response, Envelope | None]:
        path = _clean_path(path)
        resolved_vdom = self._resolve_vdom(vdom)
        url = f"/api/v2/{api}/{path}"
        if mkey is not None:
            url = f"{url}/{quote(str(mkey), safe='')}"
        ctx_path = path if api == "cmdb" else f"{api}/{path}"
        ctx = self._context(method, ctx_path, mkey, resolved_vdom, body, api=api, expect_mkey=expect_mkey)
        query = _query(params, resolved_vdom)
        http = self._client()

        async def once() -> tuple[httpx.Response, Envelope | None]:
            request = http.build_request(method, url, params=query, json=None if body is None else dict(body))
            response = await self._send(http, request, ctx)
            value, problem = decode_body(response.content, response.headers.get("content-type", ""))
            if text_ok and problem in _TEXT_LOG_PROBLEMS and 200 <= response.status_code < 300:
                return response, None
            envelope = parse_envelope(
                value if problem is None else None, http_status=response.status_code, http_method=method
            )
            self._learn_version(envelope)
            return response, self._checked(ctx, path, envelope, problem)

        return await self._retrying(ctx, once)

    def _checked(self, ctx: RequestContext, path: str, envelope: Envelope, problem: str | None) -> Envelope:
        """The envelope once ``errormap`` accepts it, with what it tells about revisions recorded."""
        try:
            envelope = raise_for_answer(ctx, envelope, problem)
        except NotFound:
            if ctx.api == "cmdb" and ctx.method == "GET":
                self._revisions.read(ctx.vdom, path, ctx.mkey, envelope.revision)
            raise
        if ctx.method == "GET":
            if ctx.api == "cmdb":
                self._revisions.read(ctx.vdom, path, ctx.mkey, envelope.revision)
            return envelope
        if ctx.api != "cmdb":
            self._revisions.unrevisioned_write()
            return envelope
        written = ctx.mkey if ctx.mkey is not None else envelope.mkey
        return self._revisions.wrote(ctx.vdom, path, written, envelope)

    async def _send(
        self, http: httpx.AsyncClient, request: httpx.Request, ctx: RequestContext, *, api: bool = True
    ) -> httpx.Response:
        """One attempt and its DEBUG line (method, path and query, outcome, ms; never headers or body).

        ``api=False`` is for the login and logout requests: sent outside the auth flow (which would
        otherwise log in to log in) and left out of the request counts.
        """
        started = time.perf_counter()
        outcome = "?"
        try:
            with mapped_errors(ctx):
                response = await http.send(request, auth=httpx.USE_CLIENT_DEFAULT if api else None)
            outcome = str(response.status_code)
        except FortiOSError as err:
            outcome = type(err).__name__
            if api and _reached_device(err):
                self._count(request.method)
            raise
        finally:
            ms = (time.perf_counter() - started) * 1000
            logger.debug(
                "%s%s %s -> %s (%.0f ms)",
                _prefix(self._name),
                request.method,
                request.url.raw_path.decode("ascii", "replace"),  # _query keeps secrets out of the URL
                outcome,
                ms,
            )
        if api:
            self._count(request.method)
        return response

    async def _retrying(self, ctx: RequestContext, once: Callable[[], Awaitable[_T]]) -> _T:
        for attempt in range(self._retries + 1):
            try:
                return await once()
            except FortiOSError as err:
                if attempt >= self._retries or not _may_retry(err, write=ctx.write):
                    raise
                delay = self._backoff * 2**attempt
                logger.debug(
                    "%s%s %s: %s, retry %d/%d in %.2f s",
                    _prefix(self._name),
                    ctx.method,
                    ctx.path,
                    type(err).__name__,
                    attempt + 1,
                    self._retries,
                    delay,
                )
                await _sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    async def _login(self, http: httpx.AsyncClient, auth: SessionAuth) -> None:
        ctx = self._context("POST", API_LOGIN_PATH.lstrip("/"), None, None, write=True, api="login")

        async def once() -> None:
            request: httpx.Request | None = auth.login_start(http.base_url)
            while request is not None:
                step = self._context(
                    "POST", request.url.path.lstrip("/"), None, None, write=True, api="login"
                )
                response = await self._send(http, request, step, api=False)
                with mapped_errors(step):
                    request = auth.login_next(response)

        await self._retrying(ctx, once)

    async def _logout(self, http: httpx.AsyncClient, auth: SessionAuth) -> None:
        request = auth.logout_request(http.base_url)
        auth.forget()
        if request is None:
            return
        ctx = self._context(request.method, request.url.path.lstrip("/"), None, None, write=True, api="login")
        try:
            await self._send(http, request, ctx, api=False)
        except FortiOSError as err:
            # Nothing to undo: an orphaned session idles out on the device (admintimeout).
            logger.warning(
                "%slogout failed (%s); the session will expire on its own",
                _prefix(self._name),
                type(err).__name__,
            )

    # --- helpers --------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._state is _State.CLOSED:
            raise RuntimeError("FortiOSClient is closed")  # a bug in the caller, not a device failure
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self._url,
                auth=self._auth,
                verify=self._verify,
                # Waiting for the device's one connection is not a device failure: no pool timeout.
                timeout=httpx.Timeout(self._timeout, pool=None),
                transport=self._transport,
                # SessionAuth keeps the session cookies itself; a second jar would only duplicate them.
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
                follow_redirects=False,
                trust_env=False,
                limits=_LIMITS,
            )
        return self._http

    def _context(
        self,
        method: str,
        path: str,
        mkey: Any,
        vdom: str | None,
        body: Mapping[str, Any] | None = None,
        *,
        write: bool | None = None,
        api: str = "cmdb",
        expect_mkey: str | int | None = None,
    ) -> RequestContext:
        session = self._auth.secrets() if isinstance(self._auth, SessionAuth) else ()
        return RequestContext(
            method=method,
            path=path,
            mkey=mkey,
            vdom=vdom,
            device=self._name,
            write=method in _WRITE_METHODS if write is None else write,
            secrets=self._secrets + session + secret_values(body),
            api=api,
            expect_mkey=expect_mkey,
            url=str(self._url).rstrip("/"),
            timeout=self._timeout,
        )

    def _resolve_vdom(self, vdom: str | object) -> str | None:
        if isinstance(vdom, UseDefault):
            return self._vdom
        if vdom is None or isinstance(vdom, str):
            return vdom
        raise InputError(f"vdom must be a string, None or USE_DEFAULT, not {type(vdom).__name__}")

    def _learn_version(self, envelope: Envelope) -> None:
        if not envelope.version:
            return
        try:
            self._version = FortiOSVersion.parse(envelope.version)
        except ValueError:
            logger.debug("%signoring unparsable version %r", _prefix(self._name), envelope.version)

    def _count(self, method: str) -> None:
        self._total += 1
        if method in _WRITE_METHODS:
            self._writes += 1


def _may_retry(err: FortiOSError, *, write: bool) -> bool:
    if isinstance(err, AuthError | TLSVerifyError):
        # Asking again changes neither answer, and repeated failed logins lock the admin out.
        return False
    if nothing_sent(err):
        return True
    if write:
        return False
    return isinstance(err, TransportError | ServerError | RateLimited | MalformedAnswer)


def _reached_device(err: FortiOSError) -> bool:
    # A refused session login happens before the request itself is sent.
    return not (nothing_sent(err) or isinstance(err.__cause__, LoginRejected))


def _base_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InputError(f"not a usable device URL: {exc}") from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise InputError("the device URL must look like https://HOST[:PORT]")
    if parsed.userinfo:
        raise InputError("put credentials in token/username/password, not in the device URL")
    if parsed.path not in ("", "/") or parsed.query:
        raise InputError("the device URL must not have a path or query: https://HOST[:PORT]")
    return parsed.copy_with(path="/", query=None, fragment=None)


def _tls_verify(verify: bool | str | Path) -> bool | ssl.SSLContext:
    if isinstance(verify, bool):
        return verify
    if is_pin(verify):
        # One context per client: the pin travels in its SSLObject class.
        return pinned_context(parse_pin(str(verify)))
    # httpx 0.28 deprecates CA paths in verify=; an SSLContext is the supported form.
    try:
        return _ca_context(str(verify))
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"cannot load the CA bundle {verify}: {exc.strerror or exc}") from None


@functools.lru_cache(maxsize=32)
def _ca_context(cafile: str) -> ssl.SSLContext:
    """One verifying context per CA bundle, shared by every device that names it (a fleet run)."""
    return ssl.create_default_context(cafile=cafile)


def _clean_path(path: str) -> str:
    cleaned = path.strip().strip("/")
    if not cleaned or any(c in cleaned for c in "?#"):
        raise InputError(f"not an API path: {path!r}")
    return cleaned


def _query(params: Mapping[str, str | list[str]] | None, vdom: str | None) -> dict[str, str | list[str]]:
    query = dict(params or {})
    refused = sorted(key for key in query if key.lower() in SECRET_FIELDS)
    if refused:
        # URLs end up in logs (httpx logs every request URL at INFO) and proxies; secrets go in
        # headers or bodies. 7.4.5+ refuses ?access_token= anyway.
        raise InputError(f"secret values must not go in the URL query: {', '.join(refused)}")
    if vdom is not None:
        query["vdom"] = vdom
    return query


def _prefix(name: str) -> str:
    return f"{name}: " if name else ""
