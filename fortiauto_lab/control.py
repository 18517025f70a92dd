"""``/__lab__/...``: the lab-only control API on every device port, guarded by the device's API token.

Tests, benchmarks and the chaos suite use it to look behind the REST API: ``GET state``
(the canonical, byte-stable config dump), ``GET requests`` (what the API received),
``GET``/``POST faults`` (``POST`` replaces them: a fault list string such as
``http500-on-write=2`` or a JSON object; ``{}`` clears), ``GET messages`` (mail the
backends delivered), ``GET log`` (the email filter log as JSON) and ``POST reset``
(seed state, launch faults, empty logs and counters). Its requests are neither
counted nor subject to faults.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fortiauto_lab.envelope import json_response, unauthorized
from fortiauto_lab.errors import LabInputError
from fortiauto_lab.faults import Faults, parse_fault_list

if TYPE_CHECKING:
    from fortiauto_lab.device import LabDevice

__all__ = ["handle_control"]


def _authorised(device: LabDevice, request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return False
    return secrets.compare_digest(header[7:].strip().encode(), device.token.encode())


def parse_faults_body(raw: bytes) -> Faults:
    """A control-API fault body: a fault list (``"a,b=3"``), its JSON string, or a JSON object.

    Raises:
        LabInputError: an unknown fault name or a bad argument.
    """
    text = raw.decode("utf-8", "replace").strip()
    try:
        value: Any = json.loads(text) if text else {}
    except ValueError:
        value = text
    if isinstance(value, dict | str):
        return parse_fault_list(value)
    raise LabInputError("faults must be a fault list string or a JSON object")


async def handle_control(request: web.Request, device: LabDevice, name: str) -> web.Response:  # noqa: PLR0911 - a dispatcher: one answer per control endpoint
    """Serve one ``/__lab__/<name>`` request."""
    if not _authorised(device, request):
        return unauthorized()
    route = (request.method, name)
    if route == ("GET", "state"):
        return web.Response(body=device.store.dump(), content_type="application/json")
    if route == ("GET", "requests"):
        return json_response(device.requests.to_json())
    if route == ("GET", "faults"):
        return json_response(device.current_faults().to_json())
    if route == ("POST", "faults"):
        try:
            faults = parse_faults_body(await request.read())
        except LabInputError as exc:
            return json_response({"error": str(exc)}, 400)
        device.set_faults(faults)
        return json_response(faults.to_json())
    if route == ("GET", "messages"):
        return json_response(device.messages())
    if route == ("GET", "log"):
        return json_response(list(device.emailfilter_log))
    if route == ("POST", "reset"):
        device.reset()
        return json_response({"reset": device.name})
    known = name in ("state", "requests", "faults", "messages", "log", "reset")
    return json_response(
        {"error": f"no such control endpoint: {request.method} {name}"}, 405 if known else 404
    )
