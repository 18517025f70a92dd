"""How the client proves who it is to a FortiGate: an API token or a ``/logincheck`` session.

Both are httpx.Auth flows; the client installs one on its httpx client, so every request is
signed in one place. ``TokenAuth`` adds ``Authorization: Bearer``. ``SessionAuth`` owns the
cookie and CSRF dance of shared/reference/fortios-protocol.md section 7.2: it logs in
(``/logincheck``, success iff the body starts with ``1``), keeps the session cookies itself,
sends ``X-CSRFTOKEN`` on writes, logs in again once when an idle session expires (401), and
builds the logout request. Secrets live in ``SecretStr`` and only ever go into request bodies
and headers.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from fortiauto.errors import InputError

__all__ = ["LOGIN_PATH", "LOGOUT_PATH", "LoginRejected", "SessionAuth", "TokenAuth", "as_secret", "auth_for"]

LOGIN_PATH = "/logincheck"
LOGOUT_PATH = "/logout"

# 7.0.14+/7.2.6+ add a port or id suffix (ccsrftoken_443); 7.6.3+ spell it ccsrf_token_<port>_<hash>.
_CSRF_COOKIE = re.compile(r"^ccsrf_?token(?:_.+)?$", re.IGNORECASE)
# A failed login sets every cookie to "0&0", URL-encoded.
_FAILED_COOKIE_VALUE = "0%260"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRejected(Exception):
    """The device refused the session login; ``errormap`` turns this into ``AuthError``/``RateLimited``."""

    def __init__(self, reason: str, *, http_status: int) -> None:
        self.http_status = http_status
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
    """Username/password session: ``/logincheck`` cookies plus the ``X-CSRFTOKEN`` header on writes."""

    requires_response_body = True  # the login verdict is the first byte of the body

    def __init__(self, username: str, password: SecretStr) -> None:
        self._username = username
        self._password = password
        self._cookie_header: str | None = None
        self._csrf: str | None = None

    def __repr__(self) -> str:
        state = "logged in" if self.logged_in else "logged out"
        return f"SessionAuth(username={self._username!r}, {state})"

    @property
    def logged_in(self) -> bool:
        return self._cookie_header is not None

    def login_request(self, url: httpx.URL) -> httpx.Request:
        """The ``/logincheck`` POST for the device at ``url`` (any URL on it)."""
        form = urlencode(
            {"username": self._username, "secretkey": self._password.get_secret_value(), "ajax": "1"}
        )
        return httpx.Request(
            "POST",
            url.copy_with(path=LOGIN_PATH, query=None),
            content=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def accept_login(self, response: httpx.Response) -> None:
        """Take the session from a ``/logincheck`` answer, or raise ``LoginRejected``."""
        if response.status_code != 200:
            raise LoginRejected(
                f"session login answered HTTP {response.status_code}", http_status=response.status_code
            )
        if not response.text.lstrip().startswith("1"):
            raise LoginRejected("session login rejected: check username and password", http_status=401)
        cookies = _set_cookies(response)
        csrf = next((_unquote(v) for name, v in cookies.items() if _CSRF_COOKIE.match(name)), None)
        if csrf is None or csrf in ("", _FAILED_COOKIE_VALUE):
            # 7.6.3+ answers 200 without a session cookie; those builds need /api/v2/authentication.
            raise LoginRejected("session login gave no CSRF cookie (use an API token)", http_status=401)
        self._cookie_header = "; ".join(f"{name}={value}" for name, value in cookies.items())
        self._csrf = csrf

    def logout_request(self, url: httpx.URL) -> httpx.Request | None:
        """The ``/logout`` POST ending this session, or ``None`` when not logged in."""
        if not self.logged_in:
            return None
        request = httpx.Request("POST", url.copy_with(path=LOGOUT_PATH, query=None))
        self._sign(request)
        return request

    def forget(self) -> None:
        """Drop the session (after logout, or when the device says it expired)."""
        self._cookie_header = None
        self._csrf = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.logged_in:
            self.accept_login((yield self.login_request(request.url)))
        response = yield self._sign(request)
        if response.status_code == 401:
            # The session idled out (admintimeout, 5 min by default). A 401 means FortiOS did not
            # act on the request, so one fresh login and one resend are safe, writes included.
            self.forget()
            self.accept_login((yield self.login_request(request.url)))
            yield self._sign(request)

    def _sign(self, request: httpx.Request) -> httpx.Request:
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
    token: SecretStr | None, username: str | None, password: SecretStr | None
) -> TokenAuth | SessionAuth | None:
    """The auth flow the given credentials call for (``None``: unauthenticated), or ``InputError``."""
    if token is not None and (username is not None or password is not None):
        raise InputError("give either token or username/password, not both")
    if token is not None:
        if not token.get_secret_value():
            raise InputError("the API token is empty")
        return TokenAuth(token)
    if (username is None) != (password is None):
        raise InputError("session login needs both username and password")
    if username is not None and password is not None:
        return SessionAuth(username, password)
    return None


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
