"""A fresh lab per test module and version; each test resets the device it uses."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fortiauto_lab.server import LabThread
from tests.integration.engine.labkit import Control


class RunningLab:
    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.info: dict[str, Any] = json.loads((Path(lab.state_dir) / "lab.json").read_text())
        self.site = Path(lab.state_dir) / "site.yml"
        self.ca = str(Path(lab.state_dir) / "ca.pem")
        self.controls = [Control(d, self.ca) for d in self.info["devices"]]

    def control(self, index: int = 0) -> Control:
        return self.controls[index]


@pytest.fixture(scope="module")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunningLab]]:
    started: dict[tuple[str, int, str | None], tuple[Any, RunningLab]] = {}

    def get(version: str = "7.0", devices: int = 1, faults: str | None = None) -> RunningLab:
        key = (version, devices, faults)
        if key not in started:
            thread = LabThread(
                tmp_path_factory.mktemp(f"lab-{version}"), devices=devices, version=version, faults=faults
            )
            started[key] = (thread, RunningLab(thread.__enter__()))
        running = started[key][1]
        for control in running.controls:
            control.reset()
            if faults is None:
                control.faults({})
        return running

    yield get
    for thread, running in started.values():
        for control in running.controls:
            control.close()
        thread.__exit__(None, None, None)
