"""One lab of five devices for the whole chaos suite; every test starts from freshly reset devices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fortiauto_lab.server import LabThread
from tests.integration.engine.labkit import Control

DEVICES = 5


@dataclass
class ChaosLab:
    state_dir: Path
    site: Path
    info: dict[str, Any] = field(repr=False)  # holds the lab's tokens and passwords
    controls: dict[str, Control] = field(repr=False)

    @property
    def names(self) -> list[str]:
        return list(self.controls)

    def reset(self) -> dict[str, bytes]:
        """Seed state, no faults, empty counters; returns each device's pristine state dump."""
        for control in self.controls.values():
            control.reset()
            control.faults({})
        return {name: control.state() for name, control in self.controls.items()}


@pytest.fixture(scope="session")
def chaos_lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosLab]:
    state_dir = tmp_path_factory.mktemp("chaos-lab")
    with LabThread(state_dir, devices=DEVICES, version="7.0"):
        info = json.loads((state_dir / "lab.json").read_text())
        ca = str(state_dir / "ca.pem")
        controls = {d["name"]: Control(d, ca) for d in info["devices"]}
        yield ChaosLab(state_dir, state_dir / "site.yml", info, controls)
        for control in controls.values():
            control.close()


@pytest.fixture
def chaos_lab(chaos_lab_session: ChaosLab) -> ChaosLab:
    chaos_lab_session.reset()
    return chaos_lab_session
