"""``fortiauto apply`` (the real console script) through the stand-in in front of a lab device.

Issue 13's two cases, end to end: with every answer after the first write mangled the run must
not claim a verified rollback (exit 4, the device failed); with the policy write swallowed
("200 success" that never took effect) the read-back must catch it and roll back for real,
leaving the device byte-identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fortiauto_lab.server import Lab
from tests.standins.conftest import lab_http
from tests.standins.fortios_proxy import Fault, ProxyThread, Rule, proxied_site

pytestmark = pytest.mark.e2e

FORTIAUTO = str(Path(sys.executable).with_name("fortiauto"))


def lab_state(lab: Lab) -> bytes:
    with lab_http(lab) as http:
        answer = http.get("/__lab__/state")
        assert answer.status_code == 200
        return answer.content


def apply(site: Path, journal: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [FORTIAUTO, "apply", str(site), "--yes", "--journal-dir", str(journal), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def the_device(report: dict[str, Any]) -> dict[str, Any]:
    (device,) = report["devices"]
    return device


def test_every_answer_after_the_first_write_mangled_is_exit_4(lab: Lab, tmp_path: Path) -> None:
    with ProxyThread(lab.devices[0].url, upstream_ca=lab.ca_path, directory=tmp_path / "standin") as proxy:
        proxy.add(Rule(Fault.HTML_200, after_writes=1, path=r"^/api/v2/(cmdb|monitor)/"))
        code, report = apply(proxied_site(lab.site_path, proxy), tmp_path / "journal")
        assert proxy.forwarded_writes >= 1
    device = the_device(report)
    assert code == 4
    assert device["status"] == "failed"
    assert "not a FortiOS answer" in device["reason"]
    assert "verified" not in device["reason"]


def test_a_swallowed_write_is_caught_by_the_read_back_and_rolled_back(lab: Lab, tmp_path: Path) -> None:
    before = lab_state(lab)
    with ProxyThread(lab.devices[0].url, upstream_ca=lab.ca_path, directory=tmp_path / "standin") as proxy:
        proxy.add(Rule(Fault.SWALLOW_WRITE, method="WRITE", path=r"^/api/v2/cmdb/firewall/policy/"))
        code, report = apply(proxied_site(lab.site_path, proxy), tmp_path / "journal")
        swallowed = [e for e in proxy.exchanges if e.fault is Fault.SWALLOW_WRITE]
    device = the_device(report)
    assert swallowed
    assert code == 3
    assert device["status"] == "rolled_back"
    assert "read-back" in device["reason"]
    assert lab_state(lab) == before
