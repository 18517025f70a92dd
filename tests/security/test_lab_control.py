"""The lab's control API wants the device's token; the lab listens on 127.0.0.1 only.

The control API can rewrite a device's faults and reset its config, so it is guarded like the
REST API: no ``Authorization`` header, a wrong token, another device's token, or the right token
in the URL query all get 401 and change nothing. Every socket ``fortiauto lab up`` listens on
(HTTPS API, SMTP VIP listeners, backend mail servers) is read from ``/proc`` for its process and
must be bound to 127.0.0.1. ~3 s.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import SecLab

ENDPOINTS = [
    ("GET", "state"),
    ("GET", "requests"),
    ("GET", "faults"),
    ("POST", "faults"),
    ("GET", "messages"),
    ("GET", "log"),
    ("POST", "reset"),
]
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def _client(lab: SecLab, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=lab.device["url"],
        verify=ssl.create_default_context(cafile=str(lab.state_dir / "ca.pem")),
        headers=headers or {},
        timeout=10,
    )


def _credentials(lab: SecLab) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    token = lab.device["token"]
    return {
        "no-token": ({}, {}),
        "bad-token": ({"Authorization": "Bearer " + "0" * len(token)}, {}),
        "token-prefix": ({"Authorization": f"Bearer {token[:-1]}"}, {}),
        "not-bearer": ({"Authorization": f"Basic {token}"}, {}),
        "token-in-query": ({}, {"access_token": token}),
        "admin-password": ({"Authorization": f"Bearer {lab.device['password']}"}, {}),
    }


@pytest.mark.parametrize(("method", "name"), ENDPOINTS, ids=[f"{m} {n}" for m, n in ENDPOINTS])
def test_control_api_rejects_requests_without_the_token(sec_lab: SecLab, method: str, name: str) -> None:
    sec_lab.control.reset()
    sec_lab.control.faults("http500-on-write=1")
    before = sec_lab.control.state()
    statuses = {}
    for label, (headers, params) in _credentials(sec_lab).items():
        with _client(sec_lab, headers) as http:
            body = "{}" if method == "POST" else None
            response = http.request(method, f"/__lab__/{name}", params=params, content=body)
            statuses[label] = response.status_code
            assert sec_lab.device["token"] not in response.text
    assert set(statuses.values()) == {401}, statuses
    assert sec_lab.control.state() == before  # no reset went through
    assert sec_lab.control.http.get("/__lab__/faults").json() == {"http500-on-write": 1}  # nor a fault change
    sec_lab.control.faults({})


def _listening_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _listeners(pid: int) -> list[tuple[str, str, int]]:
    """(family, address, port) of every listening TCP socket the process owns."""
    inodes = _listening_inodes(pid)
    found = []
    for family in ("tcp", "tcp6"):
        table = Path(f"/proc/{pid}/net/{family}")
        for row in table.read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and inode in inodes:
                address, port = local.split(":")
                found.append((family, address, int(port, 16)))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_lab_listens_on_loopback_only(sec_lab: SecLab) -> None:
    listeners = _listeners(sec_lab.pid)
    ports = {port for _, _, port in listeners}
    # the API port and every VIP listener from lab.json are among them (backends add more)
    expected = {int(sec_lab.device["url"].rsplit(":", 1)[1])} | {s["port"] for s in sec_lab.device["smtp"]}
    assert expected <= ports, (expected, ports)
    loopback = socket.inet_aton("127.0.0.1")[::-1].hex().upper()  # /proc prints the address little-endian
    assert all(family == "tcp" and address == loopback for family, address, _ in listeners), listeners
