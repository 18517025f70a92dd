"""A lab of two mock FortiGates managed by the mock FortiManager, on one background event loop.

Everything is real HTTPS on 127.0.0.1 with OS-picked ports. Each test starts from a reset
lab: the devices back to their seed, the FortiManager re-importing them, faults cleared.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fortiauto_lab.fortimanager import RunningFortiManager
from fortiauto_lab.server import Lab, LabThread


@dataclass
class FmgLab:
    thread: LabThread
    lab: Lab
    fmg: RunningFortiManager
    ca_path: Path

    @property
    def url(self) -> str:
        return self.fmg.url

    def control(self) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.ca_path))
        headers = {"Authorization": f"Bearer {self.fmg.mock.token}"}
        return httpx.Client(base_url=self.url, verify=verify, headers=headers, timeout=10)

    def faults(self, spec: str) -> None:
        with self.control() as http:
            assert http.post("/__lab__/faults", content=spec).status_code == 200

    def use_packages(self, layout: str) -> None:
        """The FortiManager re-imports the units with a package each (``per-device``) or one ``shared``."""
        mock = self.fmg.mock
        self.thread.call(_async(lambda: mock.use_packages(layout)))

    def reset(self) -> None:
        for device in self.lab.devices:
            self.thread.call(_async(device.reset))
        with self.control() as http:
            assert http.post("/__lab__/reset").status_code == 200


def _async(fn):  # run a plain call on the lab's loop (the lab's state belongs to that thread)
    async def run():
        return fn()

    return run


@pytest.fixture(scope="session")
def fmg_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FmgLab]:
    """``lab up --fortimanager`` in-process: two FortiOS 7.0 devices and the FortiManager managing them."""
    state = tmp_path_factory.mktemp("fmg-lab")
    thread = LabThread(state, devices=2, version="7.0", fortimanager=True)
    lab = thread.__enter__()
    assert lab.fortimanager is not None
    yield FmgLab(thread, lab, lab.fortimanager, lab.ca_path)
    thread.__exit__(None, None, None)


@pytest.fixture
def env(fmg_lab: FmgLab) -> FmgLab:
    fmg_lab.reset()
    return fmg_lab


@pytest.fixture
def shared_env(env: FmgLab) -> Iterator[FmgLab]:
    """The lab with one policy package ``mail-edge`` installed to both units (then per-device again)."""
    env.use_packages("shared")
    try:
        yield env
    finally:
        env.use_packages("per-device")
