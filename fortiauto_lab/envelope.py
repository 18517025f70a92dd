"""The FortiOS reply envelope and request bodies, as the lab's REST side speaks them.

Every JSON answer the lab gives goes through ``envelope`` (``http_method``, ``status``,
``http_status``, ``vdom``, ``path``, ``name``, ``serial``, ``version`` as ``vX.Y.Z``,
``build``; CMDB adds ``revision``); the 401 page is the HTML real units send. Bodies are
parsed the tolerant way FortiOS parses them: by content, never by Content-Type; JSON,
Python-repr single quotes, the ``{"json": {...}}`` wrapper, ``null`` or nothing.
A form-encoded body is a 424 (pyfortiapi's documented pitfall).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from fortiauto_lab.device import LabDevice

__all__ = [
    "UNAUTHORIZED_HTML",
    "BodyError",
    "Target",
    "envelope",
    "error_envelope",
    "json_response",
    "parse_body",
    "unauthorized",
]

UNAUTHORIZED_HTML = """<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">
<html><head>
<title>401 Unauthorized</title>
</head><body>
<h1>Unauthorized</h1>
<p>This server could not verify that you
are authorized to access the document
requested.  Either you supplied the wrong
credentials (e.g., bad password), or your
browser doesn't understand how to supply
the credentials required.</p>
</body></html>
"""

_FORM = re.compile(r"[^\s=&{}\[\]'\"]+=[^&]*(?:&[^\s=&]+=[^&]*)*")


class BodyError(Exception):
    """A body FortiOS would not parse: 424 for form-encoded, 400 for anything else."""

    def __init__(self, http_status: int) -> None:
        self.http_status = http_status
        super().__init__(f"unparseable request body (http {http_status})")


@dataclass(frozen=True)
class Target:
    """What a request addressed, as the envelope names it (``firewall``/``policy``, ``system``/``status``)."""

    method: str
    vdom: str
    path: str
    name: str
    action: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def envelope(
    device: LabDevice, target: Target, *, http_status: int | None = 200, **fields: Any
) -> dict[str, Any]:
    """A FortiOS envelope; ``fields`` (``results``, ``mkey``, ``revision``...) go in FortiOS's order."""
    out: dict[str, Any] = {"http_method": target.method}
    for key in ("revision", "revision_changed", "old_revision", "results"):
        if key in fields:
            out[key] = fields.pop(key)
    out |= {"vdom": target.vdom, "path": target.path, "name": target.name}
    if target.action is not None:
        out["action"] = target.action
    out |= target.extra
    out |= fields
    out["status"] = "success" if http_status in (200, None) else "error"
    if http_status is not None:
        out["http_status"] = http_status
    out |= {"serial": device.serial, "version": device.version.tag, "build": device.build}
    return out


def error_envelope(
    device: LabDevice,
    target: Target,
    http_status: int,
    *,
    error: int | None = None,
    cli_error: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    extra: dict[str, Any] = dict(fields)
    if cli_error is not None:
        # 7.6 sends the CLI's lines as a list (facts.py "rest.cli-error-list"); earlier releases one string.
        lines = [line for line in cli_error.splitlines() if line.strip()]
        extra["cli_error"] = lines if device.version.has("rest.cli-error-list") else cli_error
    if error is not None:
        extra["error"] = error
    return envelope(device, target, http_status=http_status, **extra)


def json_response(body: Any, status: int = 200) -> web.Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, status=status, content_type="application/json")


def unauthorized() -> web.Response:
    return web.Response(text=UNAUTHORIZED_HTML, status=401, content_type="text/html")


def parse_body(raw: bytes) -> Any:
    """A request body as FortiOS reads it (``None`` for nothing or ``null``).

    Raises:
        BodyError: 424 for a form-encoded body, 400 for anything else unparseable.
    """
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BodyError(400) from None
    if not text:
        return None
    try:
        value = json.loads(text)
    except RecursionError:
        raise BodyError(400) from None
    except ValueError:
        value = _literal(text)
    if isinstance(value, dict) and set(value) == {"json"} and isinstance(value["json"], dict):
        value = value["json"]
    return value


def _literal(text: str) -> Any:
    if _FORM.fullmatch(text):
        raise BodyError(424)
    try:
        # pyfortiapi documents Python-repr payloads ("{'name': 'x'}"); FortiOS accepts them.
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise BodyError(400) from None
