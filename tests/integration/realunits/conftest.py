"""Labs playing real units: a FortiOS release, a model, a state; one lab per module and options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fortiauto_lab.server import LabThread
from tests.integration.engine.conftest import RunningLab


@pytest.fixture(scope="module")
def unit_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunningLab]]:
    """``unit_lab(version, model=..., faults=..., mail_chain=...)``: a running lab, reset to its seed."""
    started: dict[tuple[tuple[str, Any], ...], tuple[Any, RunningLab]] = {}

    def get(version: str, **options: Any) -> RunningLab:
        key = (("version", version), *sorted(options.items()))
        if key not in started:
            thread = LabThread(
                tmp_path_factory.mktemp(f"unit-{version}"), devices=1, version=version, **options
            )
            started[key] = (thread, RunningLab(thread.__enter__()))
        running = started[key][1]
        for control in running.controls:
            control.reset()
        return running

    yield get
    for thread, running in started.values():
        for control in running.controls:
            control.close()
        thread.__exit__(None, None, None)
