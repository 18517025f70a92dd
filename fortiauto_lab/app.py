"""The aiohttp application one mock FortiGate serves: routing, authentication, API faults, request log.

``server.py`` binds one of these per device. Every request lands in ``dispatch``, which
splits the *raw* path (``%2F`` inside an mkey must survive routing), sends ``/__lab__/``
to the control API, and for everything else applies the device's API faults
(``api-latency``, ``rate-limit`` -> 429, ``token-expiry-after`` -> 401,
``http500-on-write`` -> 500 with no effect, ``reset-on-write`` -> the write takes effect
and the connection is dropped unanswered), authenticates (401 HTML page), checks the
CSRF header of session writes (403), refuses the writes the device's state forbids (an HA
secondary: 500 / -37; a read-only token: 403), routes to the CMDB, monitor, log and login
handlers, and records the request. No exception ever reaches a client as a traceback:
it becomes a FortiOS 500 envelope.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse

from aiohttp import web

from fortiauto_lab.auth import (
    Principal,
    authenticate,
    csrf_ok,
    handle_authentication,
    handle_logincheck,
    handle_logout,
)
from fortiauto_lab.cmdb import handle_cmdb
from fortiauto_lab.control import handle_control
from fortiauto_lab.device import LabDevice
from fortiauto_lab.envelope import Target, error_envelope, json_response, unauthorized
from fortiauto_lab.logapi import handle_log
from fortiauto_lab.monitor import READ_ONLY_POSTS, handle_monitor

__all__ = ["DEVICE", "MAX_BODY", "make_app"]

logger = logging.getLogger(__name__)

DEVICE = web.AppKey("device", LabDevice)
MAX_BODY = 1024 * 1024  # bigger bodies get 413, as FortiOS's httpsd refuses them
_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
_TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&]*")


def make_app(device: LabDevice) -> web.Application:
    """The application serving ``device`` on its port."""
    app = web.Application(client_max_size=MAX_BODY)
    app[DEVICE] = device
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def _segments(request: web.Request) -> list[str]:
    raw = request.raw_path.split("?", 1)[0]
    return [urllib.parse.unquote(s) for s in raw.split("/")[1:]]


def _is_write(method: str, segments: list[str]) -> bool:
    if method not in _WRITE_METHODS or segments[:2] != ["api", "v2"] or len(segments) < 3:
        return False
    if segments[2] == "cmdb":
        return True
    return segments[2] == "monitor" and "/".join(s for s in segments[3:] if s) not in READ_ONLY_POSTS


def _target(request: web.Request, device: LabDevice, segments: list[str]) -> Target:
    vdom = request.query.get("vdom", "") or device.store.vdoms[0]
    path, name = ([*segments[3:], "", ""])[:2] if segments[:2] == ["api", "v2"] else ("", "")
    return Target(request.method, vdom, path, name)


async def dispatch(request: web.Request) -> web.StreamResponse:
    device = request.app[DEVICE]
    segments = _segments(request)
    if segments[0] == "__lab__":
        return await handle_control(request, device, "/".join(segments[1:]))
    faults = device.current_faults()
    write = _is_write(request.method, segments)
    try:
        response = await _api(request, device, segments, write)
    except web.HTTPException as exc:  # 413 from aiohttp's body size check, and its kin
        response = json_response(
            error_envelope(device, _target(request, device, segments), exc.status), exc.status
        )
    except Exception:
        logger.exception("%s: internal error on %s %s", device.name, request.method, request.path)
        response = json_response(
            error_envelope(device, _target(request, device, segments), 500, error=-1), 500
        )
    query = _TOKEN_IN_QUERY.sub(r"\1***", request.query_string)  # never log a token
    device.requests.add(
        method=request.method, path=request.path, query=query, status=response.status, write=write
    )
    if faults.api_latency_ms:
        # The device did the work; only its answer is late (a client that gives up loses the answer).
        await asyncio.sleep(faults.api_latency_ms / 1000)
    return response


def _refused_write(
    request: web.Request, device: LabDevice, segments: list[str], principal: Principal
) -> web.Response | None:
    """The answer to a write this device refuses whatever its content, before it counts for faults."""
    why = device.write_refusal(principal.kind)
    if why is None:
        return None
    target = _target(request, device, segments)
    if why == "read-only":
        # The access profile lacks read-write on the table's group: FortiOS answers 403 (protocol §6).
        return json_response(error_envelope(device, target, 403), 403)
    cli_error = "This unit is an HA secondary: configure the primary\nCommand fail. Return code -37"
    return json_response(error_envelope(device, target, 500, error=-37, cli_error=cli_error), 500)


async def _api(  # noqa: PLR0911 - each early answer is one of FortiOS's refusals, in the order FortiOS checks them
    request: web.Request, device: LabDevice, segments: list[str], write: bool
) -> web.StreamResponse:
    if not device.count_api_request():
        return json_response(error_envelope(device, _target(request, device, segments), 429), 429)
    head = segments[0]
    if head == "logincheck":
        return await handle_logincheck(request, device)
    if head == "logout":
        return await handle_logout(request, device)
    if segments[:3] == ["api", "v2", "authentication"]:
        return await handle_authentication(request, device)
    handler = {"cmdb": handle_cmdb, "monitor": handle_monitor, "log": handle_log}.get(
        segments[2] if segments[:2] == ["api", "v2"] and len(segments) > 2 else ""
    )
    if handler is None:
        return web.Response(text="404 Not Found\n", status=404, content_type="text/html")
    principal = authenticate(device, request)
    if principal is None:
        return unauthorized()
    if not csrf_ok(principal, request):
        return json_response(error_envelope(device, _target(request, device, segments), 403), 403)
    if write:
        refused = _refused_write(request, device, segments, principal)
        if refused is not None:
            return refused
    fault = device.next_write_fault() if write else None
    if fault == "http500":
        return json_response(error_envelope(device, _target(request, device, segments), 500, error=-1), 500)
    response = await handler(request, device, segments[3:])
    if fault == "reset" and request.transport is not None:
        # The write has taken effect; the client never hears of it (ResponseLost).
        request.transport.abort()
    return response
