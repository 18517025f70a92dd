"""Serve the mock FortiManager over HTTPS on 127.0.0.1 and describe it for ``lab.json`` and ``site.yml``.

``fortiauto lab up --fortimanager`` (``fortiauto_lab/server.py``) calls ``start_fortimanager``
with the lab's devices and CA: one aiohttp site on an OS-picked port answers ``POST /jsonrpc``
(``api.py``) and the lab-only control API ``/__lab__/{state,requests,faults,reset}`` guarded by
the FortiManager's API key (``state`` is the ADOM, packages, device DB and revisions; ``requests``
counts what FortiManager received, ``installs`` included). ``RunningFortiManager.info()`` is the
``fortimanager`` entry of ``lab.json``; ``route_site`` turns the lab's ``site.yml`` data into the
FortiManager path: a ``fortimanager:`` block and, per device, ``fortimanager: {device, package, vdom}``
naming its own package (or the shared one).
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from fortiauto_lab.errors import LabInputError
from fortiauto_lab.fortimanager.api import SERIAL, FortiManagerMock, ManagedUnit
from fortiauto_lab.fortimanager.faults import FmgFaults, parse_fmg_faults
from fortiauto_lab.pki import CertKey, issue_cert

__all__ = ["MOCK", "RunningFortiManager", "make_fmg_app", "route_site", "start_fortimanager"]

MOCK = web.AppKey("fortimanager", FortiManagerMock)
_MAX_BODY = 4 * 1024 * 1024
_SHUTDOWN = 0.5


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


async def _jsonrpc(request: web.Request) -> web.Response:
    mock = request.app[MOCK]
    try:
        body = json.loads(await request.read())
    except ValueError:
        return web.json_response(
            {"id": None, "result": [{"status": {"code": -9, "message": "Invalid JSON"}}]}
        )
    bearer = _bearer(request)
    if bearer is not None and not secrets.compare_digest(bearer.encode(), mock.token.encode()):
        return web.Response(status=401, text="401 Unauthorized\n")
    return web.json_response(mock.call(body, bearer=bearer))


async def _control(request: web.Request) -> web.Response:  # noqa: PLR0911 - a dispatcher: one answer per control endpoint
    mock = request.app[MOCK]
    bearer = _bearer(request)
    if bearer is None or not secrets.compare_digest(bearer.encode(), mock.token.encode()):
        return web.Response(status=401, text="401 Unauthorized\n")
    route = (request.method, request.match_info["name"])
    if route == ("GET", "state"):
        return web.json_response(mock.dump())
    if route == ("GET", "requests"):
        return web.json_response(mock.requests.to_json())
    if route == ("GET", "faults"):
        return web.json_response(mock.faults.to_json())
    if route == ("POST", "faults"):
        try:
            faults = parse_fmg_faults(await request.read())
        except LabInputError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        mock.set_faults(faults)
        return web.json_response(faults.to_json())
    if route == ("POST", "reset"):
        mock.reset()
        return web.json_response({"reset": "fortimanager"})
    return web.json_response({"error": f"no such control endpoint: {request.method} {route[1]}"}, status=404)


def make_fmg_app(mock: FortiManagerMock) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY)
    app[MOCK] = mock
    app.router.add_post("/jsonrpc", _jsonrpc)
    app.router.add_route("*", "/__lab__/{name}", _control)
    return app


@dataclass
class RunningFortiManager:
    """The mock FortiManager as served: its state, address and credentials."""

    mock: FortiManagerMock
    host: str
    port: int
    runner: web.AppRunner

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def info(self) -> dict[str, Any]:
        """The ``fortimanager`` entry of ``lab.json`` (secrets included: the file is 0600)."""
        return {
            "url": self.url,
            "username": self.mock.username,
            "password": self.mock.password,
            "token": self.mock.token,
            "adom": self.mock.adom_name,
            "package_layout": self.mock.package_layout,
            "packages": dict(self.mock.assignment),  # device -> its policy package
            "vdom": self.mock.vdom,
            "serial": SERIAL,
        }

    async def stop(self) -> None:
        await self.runner.cleanup()


def _context(ca: CertKey, cert_dir: Path) -> ssl.SSLContext:
    pair = issue_cert(ca, "fortimanager", sans=("127.0.0.1", "localhost"))
    path = cert_dir / "fortimanager.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(pair.cert_pem + pair.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(path)
    return context


async def start_fortimanager(
    devices: Sequence[ManagedUnit],
    *,
    ca: CertKey,
    cert_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    adom: str = "root",
    package: str = "mail-edge",
    packages: str = "per-device",
    workspace_mode: str = "normal",
    faults: FmgFaults | str | None = None,
) -> RunningFortiManager:
    """Serve a mock FortiManager that manages ``devices`` (their vdom ``root``) on ``host:port``.

    ``packages``: ``per-device`` gives each device its own policy package ``<package>-<device>``,
    ``shared`` one package ``<package>`` installed to every device.

    Its TLS certificate is signed by ``ca`` (the lab's, so ``ca.pem`` verifies it too) and
    written, with its key, 0600 under ``cert_dir``.
    """
    parsed = parse_fmg_faults(faults) if isinstance(faults, str) else faults
    mock = FortiManagerMock(
        devices, adom=adom, package=package, packages=packages, workspace_mode=workspace_mode, faults=parsed
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    runner = web.AppRunner(
        make_fmg_app(mock), access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN
    )
    try:
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=_context(ca, cert_dir)).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return RunningFortiManager(mock, host, sock.getsockname()[1], runner)


def route_site(site: dict[str, Any], fortimanager: Mapping[str, Any]) -> dict[str, Any]:
    """The lab's site data with every device reached through the mock FortiManager.

    ``fortimanager`` is ``RunningFortiManager.info()`` (lab.json's entry). The API key is read
    from ``tokens/fortimanager.token`` beside the site file (``server.py`` writes it 0600); each
    device keeps its own token for read-only facts and logs.
    """
    routed = dict(site)
    routed["fortimanager"] = {
        "url": fortimanager["url"],
        "token": "${file:tokens/fortimanager.token}",
        "adom": fortimanager["adom"],
        "verify_tls": "ca.pem",
        "workspace": "auto",
    }
    packages = fortimanager["packages"]
    routed["devices"] = [
        {
            **device,
            "fortimanager": {
                "device": device["name"],
                "package": packages[device["name"]],
                "vdom": fortimanager["vdom"],
            },
        }
        for device in site.get("devices", [])
    ]
    return routed
