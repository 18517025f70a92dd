"""A running lab per test session (and per extra FortiOS version), with clients for its devices.

Everything is real sockets on 127.0.0.1 with OS-picked ports. Tests that change a device
reset it first through the control API, so the order of tests does not matter.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fortiauto_lab.server import Lab, LabThread


class Api:
    """An httpx client for one lab device: token auth, the lab CA, and the control API."""

    def __init__(self, lab: Lab, index: int = 0, *, auth: bool = True) -> None:
        self.lab = lab
        self.device = lab.devices[index]
        self.ca = str(lab.ca_path)
        self.verify = ssl.create_default_context(cafile=self.ca)
        headers = {"Authorization": f"Bearer {self.device.token}"} if auth else {}
        self.http = httpx.Client(base_url=self.device.url, verify=self.verify, headers=headers, timeout=10)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.put(path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request("DELETE", path, **kwargs)

    def results(self, path: str, **kwargs: Any) -> Any:
        response = self.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["results"]

    def state(self) -> bytes:
        response = self.get("/__lab__/state")
        assert response.status_code == 200
        return response.content

    def reset(self) -> None:
        assert self.post("/__lab__/reset").status_code == 200

    def faults(self, body: str) -> httpx.Response:
        return self.post("/__lab__/faults", content=body)

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Lab]]:
    """``lab_factory(version="7.0", devices=1)``: one shared lab per argument set."""
    started: dict[tuple[Any, ...], tuple[LabThread, Lab]] = {}

    def get(version: str = "7.0", devices: int = 1, faults: str | None = None, **options: Any) -> Lab:
        key = (version, devices, faults, tuple(sorted(options.items())))
        if key not in started:
            thread = LabThread(
                tmp_path_factory.mktemp(f"lab-{version}"),
                devices=devices,
                version=version,
                faults=faults,
                **options,
            )
            started[key] = (thread, thread.__enter__())
        return started[key][1]

    yield get
    for thread, _ in started.values():
        thread.__exit__(None, None, None)


@pytest.fixture(scope="session")
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    """The default lab: two FortiOS 7.0 devices."""
    return lab_factory("7.0", devices=2)


@pytest.fixture
def api(lab: Lab) -> Iterator[Api]:
    """fgt-001 of the default lab, reset to its seed state."""
    client = Api(lab)
    client.reset()
    yield client
    client.close()


@pytest.fixture
def api_for(lab_factory: Callable[..., Lab]) -> Iterator[Callable[..., Api]]:
    """``api_for("6.4")``: fgt-001 of a one-device lab of that version, reset."""
    made: list[Api] = []

    def get(version: str, **kwargs: Any) -> Api:
        client = Api(lab_factory(version), **kwargs)
        client.reset()
        made.append(client)
        return client

    yield get
    for client in made:
        client.close()


@pytest.fixture
def lab_api(lab_factory: Callable[..., Lab]) -> Iterator[Callable[..., Api]]:
    """``lab_api("7.6.5", model="FortiGate-60F", strict=True)``: fgt-001 of such a lab, reset."""
    made: list[Api] = []

    def get(version: str = "7.0", **options: Any) -> Api:
        client = Api(lab_factory(version, **options))
        client.reset()
        made.append(client)
        return client

    yield get
    for client in made:
        client.close()


@pytest.fixture
def state_dir(lab: Lab) -> Path:
    return lab.state_dir
