"""Fixtures for the stand-in tests: one lab per FortiOS family, a misbehaving proxy in front of it.

The lab runs on its own event loop (``LabThread``); the proxy runs in the test's loop. Tests
that change the device reset it first through the lab's control API.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fortiauto_lab.server import Lab, LabThread
from tests.standins.fortios_proxy import FortiOSProxy


@pytest.fixture(scope="session")
def lab_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Lab]]:
    """``lab_for("7.0")``: a one-device lab of that family, started once per session."""
    started: dict[str, tuple[LabThread, Lab]] = {}

    def get(version: str) -> Lab:
        if version not in started:
            thread = LabThread(tmp_path_factory.mktemp(f"standin-lab-{version}"), devices=1, version=version)
            started[version] = (thread, thread.__enter__())
        return started[version][1]

    yield get
    for thread, _ in started.values():
        thread.__exit__(None, None, None)


def lab_http(lab: Lab) -> httpx.Client:
    """A plain httpx client straight to the lab's first device (token auth, the lab CA)."""
    device = lab.devices[0]
    headers = {"Authorization": f"Bearer {device.token}"}
    verify = ssl.create_default_context(cafile=str(lab.ca_path))
    return httpx.Client(base_url=device.url, verify=verify, headers=headers, timeout=10)


def reset(lab: Lab) -> None:
    with lab_http(lab) as http:
        assert http.post("/__lab__/reset").status_code == 200


@pytest.fixture
def lab(lab_for: Callable[[str], Lab]) -> Lab:
    """The 7.0 lab, reset to its seed state."""
    chosen = lab_for("7.0")
    reset(chosen)
    return chosen


@pytest.fixture
async def proxy(lab: Lab, tmp_path: Path) -> AsyncIterator[FortiOSProxy]:
    """A transparent stand-in in front of the lab's first device (add rules to make it misbehave)."""
    async with FortiOSProxy(lab.devices[0].url, upstream_ca=lab.ca_path, directory=tmp_path) as standin:
        yield standin


def upstream_get(lab: Lab, path: str, **params: Any) -> httpx.Response:
    """A read straight from the lab device, past the stand-in: what the device really holds."""
    with lab_http(lab) as http:
        return http.get(path, params=params)
