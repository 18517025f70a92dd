"""How the client proves who it is to a FortiGate: an API token or a username/password session.

Both are httpx.Auth flows; the client installs one on its httpx client, so every request is
signed in one place. ``TokenAuth`` adds ``Authorization: Bearer`` (and refuses, before anything
is sent, a token no HTTP header can carry, such as one read from a file with its newline).
``SessionAuth`` logs in through ``POST /api/v2/authentication`` (FortiOS 6.4.2+, the only
session login from 7.6.3, where ``/logincheck`` no longer gives a session cookie: Fortinet KB
"FortiOS v7.6.3: /logincheck no longer returns a session cookie", community.fortinet.com
ta-p 227837; body fields as Ansible's fortinet.fortios httpapi plugin sends them), taking the
``session_key`` as a Bearer token or, failing that, the session cookies. A build that answers
that endpoint 404/405 or with no JSON (older than 6.4.2) gets the legacy ``/logincheck`` form
login (success iff the body starts with ``1``, cookies plus ``X-CSRFTOKEN`` on writes). A JSON
``LOGIN_FAILED`` is final: trying the other flow would only count a second failed login toward
the admin lockout. An idle session expiring (401) gets one fresh login and one resend. Secrets
live in ``SecretStr`` and only ever go into request bodies and headers.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from fortiauto.errors import InputError

__all__ = [
    "API_LOGIN_PATH",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "LoginRejected",
    "SessionAuth",
    "TokenAuth",
    "as_secret",
    "auth_for",
    "check_token",
]

API_LOGIN_PATH = "/api/v2/authentication"
LOGIN_PATH = "/logincheck"
LOGOUT_PATH = "/logout"
_API = "api"
_LEGACY = "legacy"

# 7.0.14+/7.2.6+ add a port or id suffix (ccsrftoken_443); 7.6.3+ spell it ccsrf_token_<port>_<hash>.
_CSRF_COOKIE = re.compile(r"^ccsrf_?token(?:_.+)?$", re.IGNORECASE)
_SESSION_COOKIE = re.compile(r"^(?:APSCOOKIE_|session_key_).+$", re.IGNORECASE)
# What an HTTP header value can carry: visible ASCII (RFC 9110 field-vchar, less obs-text).
_HEADER_SAFE = re.compile(r"^[\x21-\x7e]+$")
# A failed login sets every cookie to "0&0", URL-encoded.
_FAILED_COOKIE_VALUE = "0%260"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRejected(Exception):
    """The session login failed; ``errormap`` turns this into ``AuthError``/``RateLimited``.

    ``malformed`` marks an answer that is no FortiOS login verdict at all (a portal page, JSON
    without ``status_message``): ``MalformedAnswer`` then, not "check username and password".
    """

    def __init__(self, reason: str, *, http_status: int, malformed: bool = False) -> None:
        self.http_status = http_status
        self.malformed = malformed
        super().__init__(reason)


class TokenAuth(httpx.Auth):
    """REST API admin token sent as ``Authorization: Bearer`` (never in the URL: 7.4.5+ refuses that)."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "TokenAuth(token='**********')"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


class SessionAuth(httpx.Auth):
    """Username/password session: ``/api/v2/authentication``, else the ``/logincheck`` cookie dance.

    The login is a small state machine (``login_start`` -> ``login_next`` until it returns
    ``None``), driven by the client on ``open()`` and by ``auth_flow`` when a session expires.
    """

    requires_response_body = True  # login verdicts are in the body

    def __init__(self, username: str, password: SecretStr) -> None:
        self._username = username
        self._password = password
        self._flow: str | None = None  # the login flow that worked: _API or _LEGACY
        self._pending: str | None = None  # the flow of the login request in flight
        self._session_key: str | None = None
        self._cookie_header: str | None = None
        self._csrf: str | None = None
        self._cookie_values: tuple[str, ...] = ()

    def __repr__(self) -> str:
        state = "logged in" if self.logged_in else "logged out"
        return f"SessionAuth(username={self._username!r}, {state})"

    @property
    def logged_in(self) -> bool:
        return self._session_key is not None or self._cookie_header is not None

    def secrets(self) -> tuple[str, ...]:
        """The session's own secrets (key, cookie values, CSRF token), for scrubbing echoed texts."""
        found = (self._password.get_secret_value(), self._session_key, self._csrf, *self._cookie_values)
        return tuple(value for value in found if value)

    def login_start(self, url: httpx.URL) -> httpx.Request:
        """The first login request for the device at ``url`` (the flow that worked last, else the API)."""
        if self._flow == _LEGACY:
            return self._logincheck_request(url)
        return self._api_login_request(url)

    def login_next(self, response: httpx.Response) -> httpx.Request | None:
        """Take a login answer: ``None`` once logged in, the next request to send, or ``LoginRejected``."""
        if self._pending == _API:
            if not _api_login_unsupported(response):
                self._accept_api_login(response)
                return None
            # The build predates /api/v2/authentication (6.4.2): its legacy form login.
            return self._logincheck_request(response.request.url)
        self.accept_login(response)
        return None

    def _api_login_request(self, url: httpx.URL) -> httpx.Request:
        self._pending = _API
        # The five fields Ansible's and Terraform's FortiOS clients send; request_key asks for a
        # session key usable as a Bearer token (no CSRF dance then).
        body = {
            "username": self._username,
            "secretkey": self._password.get_secret_value(),
            "ack_pre_disclaimer": True,
            "ack_post_disclaimer": True,
            "request_key": True,
        }
        return httpx.Request("POST", url.copy_with(path=API_LOGIN_PATH, query=None), json=body)

    def _logincheck_request(self, url: httpx.URL) -> httpx.Request:
        self._pending = _LEGACY
        form = urlencode(
            {"username": self._username, "secretkey": self._password.get_secret_value(), "ajax": "1"}
        )
        return httpx.Request(
            "POST",
            url.copy_with(path=LOGIN_PATH, query=None),
            content=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def _accept_api_login(self, response: httpx.Response) -> None:
        status = response.status_code
        answer = _json_object(response)
        message = str(answer.get("status_message", "")) if answer else ""
        if status == 429:
            raise LoginRejected("session login blocked after too many failed attempts", http_status=429)
        if status >= 500:
            raise LoginRejected(f"session login answered HTTP {status}", http_status=status)
        if message == "LOGIN_FAILED" or (status in (401, 403) and answer is not None):
            raise LoginRejected("session login rejected: check username and password", http_status=401)
        if not message:
            raise LoginRejected(
                f"the login answer (HTTP {status}) has no status_message", http_status=status, malformed=True
            )
        if status != 200 or message != "LOGIN_SUCCESS":
            raise LoginRejected(f"session login not completed ({message})", http_status=401)
        key = answer.get("session_key") if answer else None
        if isinstance(key, str) and key:
            self._session_key = key
        else:
            # Without request_key support the session comes as cookies (7.6.3+: session_key_<port>_<hash>).
            self._take_cookies(response, require_session=True)
        self._flow = _API

    def accept_login(self, response: httpx.Response) -> None:
        """Take the session from a ``/logincheck`` answer, or raise ``LoginRejected``."""
        if response.status_code != 200:
            raise LoginRejected(
                f"session login answered HTTP {response.status_code}", http_status=response.status_code
            )
        verdict = response.text.lstrip()[:1]
        if verdict not in ("0", "1"):
            # FortiOS's /logincheck answer starts with 1 (in) or 0 (refused); anything else is not it.
            raise LoginRejected("the /logincheck answer has no 0/1 verdict", http_status=200, malformed=True)
        if verdict == "0":
            raise LoginRejected("session login rejected: check username and password", http_status=401)
        self._take_cookies(response, require_session=False)
        self._flow = _LEGACY

    def _take_cookies(self, response: httpx.Response, *, require_session: bool) -> None:
        cookies = _set_cookies(response)
        csrf = next((_unquote(v) for name, v in cookies.items() if _CSRF_COOKIE.match(name)), None)
        if csrf is None or csrf in ("", _FAILED_COOKIE_VALUE):
            # 7.6.3+ answers /logincheck with 200 and no session cookie at all.
            raise LoginRejected("session login gave no CSRF cookie (use an API token)", http_status=401)
        if require_session and not any(_SESSION_COOKIE.match(name) for name in cookies):
            raise LoginRejected("session login gave neither a session key nor a cookie", http_status=401)
        self._cookie_header = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self._cookie_values = tuple(_unquote(v) for v in cookies.values() if _unquote(v))
        self._csrf = csrf

    def logout_request(self, url: httpx.URL) -> httpx.Request | None:
        """The request ending this session (``DELETE /api/v2/authentication`` or ``POST /logout``)."""
        if not self.logged_in:
            return None
        if self._flow == _API:
            request = httpx.Request("DELETE", url.copy_with(path=API_LOGIN_PATH, query=None))
        else:
            request = httpx.Request("POST", url.copy_with(path=LOGOUT_PATH, query=None))
        self._sign(request)
        return request

    def forget(self) -> None:
        """Drop the session (after logout, or when the device says it expired)."""
        self._session_key = None
        self._cookie_header = None
        self._csrf = None
        self._cookie_values = ()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.logged_in:
            yield from self._login_flow(request.url)
        response = yield self._sign(request)
        if response.status_code == 401:
            # The session idled out (admintimeout, 5 min by default). A 401 means FortiOS did not
            # act on the request, so one fresh login and one resend are safe, writes included.
            self.forget()
            yield from self._login_flow(request.url)
            yield self._sign(request)

    def _login_flow(self, url: httpx.URL) -> Generator[httpx.Request, httpx.Response, None]:
        login: httpx.Request | None = self.login_start(url)
        while login is not None:
            login = self.login_next((yield login))

    def _sign(self, request: httpx.Request) -> httpx.Request:
        if self._session_key is not None:
            request.headers["Authorization"] = f"Bearer {self._session_key}"
            return request
        if self._cookie_header is not None:
            request.headers["Cookie"] = self._cookie_header
        if self._csrf is not None and request.method not in _READ_METHODS:
            request.headers["X-CSRFTOKEN"] = self._csrf
        return request


def as_secret(value: str | SecretStr | None) -> SecretStr | None:
    """Wrap a plain string so no repr or traceback can show it."""
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)


def auth_for(
    token: SecretStr | None, username: str | None, password: SecretStr | None, *, device: str = ""
) -> TokenAuth | SessionAuth | None:
    """The auth flow the given credentials call for (``None``: unauthenticated), or ``InputError``."""
    if token is not None and (username is not None or password is not None):
        raise InputError("give either token or username/password, not both")
    if token is not None:
        check_token(token, device=device)
        return TokenAuth(token)
    if (username is None) != (password is None):
        raise InputError("session login needs both username and password")
    if username is not None and password is not None:
        return SessionAuth(username, password)
    return None


def check_token(token: SecretStr, *, device: str = "") -> None:
    """Refuse, naming the device and the ``token`` key, a token no HTTP header can carry.

    httpcore would refuse it too, but its error quotes the whole header value, token included.
    """
    value = token.get_secret_value()
    where = f"{device}: token" if device else "token"
    if not value:
        raise InputError(f"{where}: the API token is empty")
    if _HEADER_SAFE.match(value):
        return
    if value.strip() and _HEADER_SAFE.match(value.strip()):
        kind = "newline" if any(c in value for c in "\r\n") else "whitespace"
        raise InputError(
            f"{where}: the API token has a leading or trailing {kind}; strip it from the file or "
            "variable the token comes from"
        )
    raise InputError(
        f"{where}: the API token contains whitespace, control or non-ASCII characters; "
        "a FortiOS API key is letters and digits"
    )


def _api_login_unsupported(response: httpx.Response) -> bool:
    """True when the answer to ``/api/v2/authentication`` means "no such endpoint here"."""
    if response.status_code in (404, 405):
        return True
    # 6.4.0/6.4.1 serve their HTML pages there; a JSON answer is a real verdict.
    return response.status_code in (200, 401) and _json_object(response) is None


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Name -> raw value of each ``Set-Cookie``; values keep their quotes, as a browser sends them back."""
    cookies: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        pair = header.split(";", 1)[0]
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            cookies[name.strip()] = value.strip()
    return cookies


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value
