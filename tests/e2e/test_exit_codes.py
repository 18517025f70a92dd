"""Each row of the README's exit-code table, produced by the real CLI against a real lab process.

One lab device, reset before each case; each case sets up what its row describes and checks
the exit code, the device's status and what the lab itself says about its configuration.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.e2e.clikit import Fleet, assert_no_traceback, fleet_running, run_cli

pytestmark = pytest.mark.e2e

FAST = {"timeout": 1.5, "retries": 1, "retry_delay": 0.1}


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("codes") / "lab", devices=1) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    return lab_process


def _site(lab: Fleet, name: str, *, fallback: bool = False, **device: object) -> Path:
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    data["devices"][0].update(device)
    for server in data["devices"][0]["mail_servers"]:
        server["probe"].update(FAST)
        if not fallback:
            server.pop("fallback", None)
    out = lab.site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def _apply(site: Path, journal: Path) -> tuple[int, dict]:
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", journal)
    assert_no_traceback(done.stderr)
    payload = json.loads(done.stdout)
    assert payload["exit_code"] == done.returncode
    return done.returncode, payload["devices"][0]


def test_0_compliant_with_the_full_fix(lab, tmp_path):
    code, device = _apply(_site(lab, "ok"), tmp_path / "j")
    assert (code, device["status"], device["effect"]) == (0, "changed", "logged")


def test_2_input_the_device_cannot_take_and_nothing_written(lab, tmp_path):
    code, device = _apply(_site(lab, "badvdom", vdom="nope"), tmp_path / "j")
    assert (code, device["status"]) == (2, "failed")
    assert lab.requests()["fgt-001"]["writes"] == 0


def test_3_rolled_back_and_verified(lab, tmp_path):
    lab.faults({"fgt-001": "banner-hold-on-utm"})
    code, device = _apply(_site(lab, "hold"), tmp_path / "j")
    assert (code, device["status"]) == (3, "rolled_back")
    assert device["failure"]["failure_class"].startswith("F4")
    lab.faults({"fgt-001": "{}"})
    assert lab.states() == lab.pristine


def test_4_not_in_a_known_state_lists_what_is_left(lab, tmp_path):
    # The token stops working after the first writes: neither the rest of the change nor its undo
    # can be made, so what is on the unit is listed for a human.
    lab.faults({"fgt-001": "token-expiry-after=12"})
    code, device = _apply(_site(lab, "expiry"), tmp_path / "j")
    assert (code, device["status"]) == (4, "failed"), device["reason"]
    assert device["left_over"]


def test_5_refused_before_any_write(lab, tmp_path):
    lab.faults({"fgt-001": "fortimanager-managed"})
    code, device = _apply(_site(lab, "fmg"), tmp_path / "j")
    assert (code, device["status"]) == (5, "refused")
    assert lab.requests()["fgt-001"]["writes"] == 0


def test_6_mail_flows_on_a_fallback_rung(lab, tmp_path):
    lab.faults({"fgt-001": "banner-hold-on-utm"})
    code, device = _apply(_site(lab, "fallback", fallback=True), tmp_path / "j")
    assert (code, device["status"], device["fallback_used"]) == (6, "fallback", "certificate-inspection")


def test_7_unreachable_names_the_url_and_the_cause(lab, tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        url = f"https://127.0.0.1:{port}"
        done = run_cli("plan", _site(lab, "closed", url=url), "--output", "json")
    assert_no_traceback(done.stderr)
    device = json.loads(done.stdout)["devices"][0]
    assert (done.returncode, device["status"]) == (7, "failed")
    assert url in device["reason"]
    assert "connection refused" in device["reason"]
