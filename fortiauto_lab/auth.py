"""Who is calling a mock FortiGate: API token, session cookie or session key, and the login endpoints.

Every API request passes ``authenticate`` (``app.py``): a ``Bearer`` token or session
key, ``?access_token=`` (refused from 7.4.5 unless ``rest-api-key-url-query`` is enabled,
as the KB describes), or an ``APSCOOKIE_<n>`` session cookie, tolerating the raw
``Set-Cookie`` text Ansible forwards. Session writes need ``X-CSRFTOKEN`` (quotes
stripped). The login endpoints answer with the exact bodies and quoted cookies that
pyfortiapi, fortiosapi, fortigate-api, Ansible and Terraform parse (protocol §7, §10).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiohttp import web

from fortiauto_lab.envelope import BodyError, json_response, parse_body

if TYPE_CHECKING:
    from fortiauto_lab.device import LabDevice, Session

__all__ = [
    "Principal",
    "authenticate",
    "csrf_ok",
    "handle_authentication",
    "handle_logincheck",
    "handle_logout",
]

_FAILED = '"0%260"'
# The session cookie is APSCOOKIE_<n> up to 7.6.2, session_key_<port>_<hash> from 7.6.3 (KB 227837).
_SESSION_COOKIES = ("APSCOOKIE_", "session_key_")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; ``session`` is set for cookie and session-key logins."""

    kind: Literal["token", "session-key", "cookie"]
    session: Session | None = None


def _cookies(header: str) -> dict[str, str]:
    """Cookie pairs, quotes stripped; tolerates attributes (``path=/; secure``) pasted in."""
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out[name.strip()] = value.strip().strip('"')
    return out


def _url_token_allowed(device: LabDevice) -> bool:
    if not device.version.has("auth.url-token-opt-in"):
        return True
    setting = device.store.singleton(device.store.vdoms[0], "system/global").get("rest-api-key-url-query")
    return setting == "enable"


def authenticate(device: LabDevice, request: web.Request) -> Principal | None:
    """The caller of an API request, or None (the app answers 401)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        value = header[7:].strip()
        if device.token_valid(value):
            return Principal("token")
        session = device.session_by_key(value)
        return Principal("session-key", session) if session else None
    url_token = request.query.get("access_token")
    if url_token is not None:
        return Principal("token") if _url_token_allowed(device) and device.token_valid(url_token) else None
    for name, value in _cookies(request.headers.get("Cookie", "")).items():
        if name.startswith(_SESSION_COOKIES):
            session = device.session_by_cookie(value)
            if session is not None:
                return Principal("cookie", session)
    return None


def csrf_ok(principal: Principal, request: web.Request) -> bool:
    """Cookie sessions must send ``X-CSRFTOKEN`` on writes (clients may leave its quotes on)."""
    if principal.kind != "cookie" or request.method in ("GET", "HEAD"):
        return True
    assert principal.session is not None
    sent = request.headers.get("X-CSRFTOKEN", "").strip().strip('"')
    return bool(sent) and sent == principal.session.csrf


def _credentials(raw: bytes) -> tuple[str, str]:
    # The body is form-encoded whatever Content-Type says (Terraform labels it JSON);
    # pyfortiapi does not URL-encode it at all.
    fields = {}
    for pair in raw.decode("utf-8", "replace").strip().split("&"):
        key, _, value = pair.partition("=")
        fields[key] = urllib.parse.unquote_plus(value)
    return fields.get("username", ""), fields.get("secretkey", "")


def _cookie_names(device: LabDevice) -> tuple[str, ...]:
    """Session cookie, then CSRF cookie name(s), as this release names them (protocol 7.2, 7.3)."""
    n = device.port
    if device.version.has("auth.session-key-cookies"):
        suffix = device.serial[-8:].lower()
        return (f"session_key_{n}_{suffix}", f"ccsrf_token_{n}_{suffix}")
    return (f"APSCOOKIE_{n}", "ccsrftoken", f"ccsrftoken_{n}")


def _session_cookies(response: web.StreamResponse, device: LabDevice, session: Session | None) -> None:
    csrf = f'"{session.csrf}"' if session else _FAILED
    aps = f'"{session.cookie}"' if session else _FAILED
    session_name, *csrf_names = _cookie_names(device)
    response.headers.add("Set-Cookie", f"{session_name}={aps}; path=/; secure; HttpOnly; SameSite=Strict")
    for name in csrf_names:
        response.headers.add("Set-Cookie", f"{name}={csrf}; path=/; secure")


async def handle_logincheck(request: web.Request, device: LabDevice) -> web.Response:
    """``POST /logincheck``: body ``1...`` and quoted session cookies, or ``0...`` and ``"0%260"``."""
    if request.method != "POST":
        # Ansible 2.3.x sends a GET here before using its token; any answer will do.
        return web.Response(text="", content_type="text/html")
    username, password = _credentials(await request.read())
    if not device.version.has("auth.logincheck-session"):
        # 7.6.3+: /logincheck answers 200 but opens no session and sets no cookie (KB 227837).
        return web.Response(text='1document.location="/";\n', content_type="text/html")
    session = device.login(username, password)
    if session is None:
        response = web.Response(text='0document.location="/login?errmsg=1";\n', content_type="text/html")
    else:
        response = web.Response(
            text='1document.location="/prompt?viewOnly&redir=%2F";\n', content_type="text/html"
        )
    _session_cookies(response, device, session)
    return response


async def handle_logout(request: web.Request, device: LabDevice) -> web.Response:
    """``GET`` or ``POST /logout``: ends the cookie session, expires the cookies."""
    principal = authenticate(device, request)
    if principal is not None and principal.session is not None:
        device.logout(principal.session)
    response = web.Response(text='<html><body><script>top.location="/login";</script></body></html>\n')
    response.content_type = "text/html"
    expired = "path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; secure"
    for name in _cookie_names(device):
        response.headers.add("Set-Cookie", f'{name}=""; {expired}')
    return response


async def handle_authentication(request: web.Request, device: LabDevice) -> web.Response:  # noqa: PLR0911 - each early answer is one outcome of the 7.6 login, as FortiOS orders them
    """``/api/v2/authentication``: POST logs in (``session_key`` works as Bearer), PUT renews, DELETE ends."""
    if not device.version.has("auth.api-authentication"):
        return web.Response(text="404 Not Found\n", status=404, content_type="text/html")
    if request.method == "DELETE":
        principal = authenticate(device, request)
        if principal is None or principal.session is None:
            return json_response({"status": -1, "status_message": "LOGOUT_FAILED"}, 401)
        device.logout(principal.session)
        return json_response({"status": 0, "status_message": "LOGOUT_SUCCESS"})
    if request.method == "PUT":
        principal = authenticate(device, request)
        if principal is None or principal.session is None:
            return json_response({"status": -1, "status_message": "LOGIN_FAILED"}, 401)
        return json_response({"status": 5, "status_message": "LOGIN_SUCCESS"})
    if request.method != "POST":
        return json_response({"status": -1, "status_message": "METHOD_NOT_ALLOWED"}, 405)
    try:
        body = parse_body(await request.read())
    except BodyError:
        body = None
    if not isinstance(body, dict):
        return json_response({"status": -1, "status_message": "LOGIN_FAILED"}, 401)
    password = str(body.get("secretkey") or body.get("password") or "")
    session = device.login(str(body.get("username", "")), password)
    if session is None:
        return json_response({"status": -1, "status_message": "LOGIN_FAILED"}, 401)
    answer: dict[str, object] = {"status": 5, "status_message": "LOGIN_SUCCESS"}
    if body.get("request_key"):
        answer["session_key"] = session.key
    response = json_response(answer)
    _session_cookies(response, device, session)
    return response
