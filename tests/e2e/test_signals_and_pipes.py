"""A real ``fortiauto apply`` against a real lab process, interrupted the ways terminals and shells do.

Four SIGTERMs in a row, a closed terminal (SIGHUP), an output pipe that closes after three lines:
each must end with the device byte-identical to its seed or fully applied and probe-green, the
journal's lock released, and no traceback. Judged from the lab's own state dumps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clikit import (
    FORTIAUTO,
    Fleet,
    assert_no_traceback,
    cli_env,
    finish,
    fleet_running,
    run_cli,
    site_variant,
    spawn_cli,
    wait_until,
)

pytestmark = pytest.mark.e2e

SLOW_API = "api-latency=150"  # a request takes 150 ms: the run lasts long enough to be interrupted


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("signals") / "lab", devices=2) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    return lab_process


def _untouched_or_applied_and_green(lab: Fleet, site: Path, name: str) -> str:
    lab.faults({name: "{}"})
    state = lab.states([name])[name]
    if state == lab.pristine[name]:
        return "untouched"
    plan = run_cli("plan", site, "--output", "json", "--limit", name)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["devices"][0]["status"] == "unchanged", "half-applied device"
    probe = run_cli("probe", site, "--device", name, "--output", "json")
    assert probe.returncode == 0, probe.stdout
    return "applied"


def _lock_released(journal: Path) -> bool:
    return not (journal / "fortiauto.lock.holder.json").exists()


@pytest.mark.timeout(120)
def test_four_sigterms_after_the_first_write_still_roll_back_to_the_end(lab, tmp_path):
    lab.faults({"fgt-001": SLOW_API})
    site = site_variant(lab, "sigterm4")
    journal = tmp_path / "j"
    proc = spawn_cli(
        "apply", site, "--yes", "--output", "json", "--limit", "fgt-001", "--journal-dir", journal
    )
    wait_until(
        lambda: lab.requests(["fgt-001"])["fgt-001"]["writes"] >= 1, timeout=60, what="the first write"
    )
    for _ in range(4):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
    code, out, err = finish(proc, timeout=90)
    assert_no_traceback(err)
    assert "is closed" not in err
    device = json.loads(out)["devices"][0]
    assert (code, device["status"]) == (3, "rolled_back"), (device["reason"], err)
    assert _untouched_or_applied_and_green(lab, site, "fgt-001") == "untouched"
    assert _lock_released(journal)


@pytest.mark.timeout(120)
def test_a_closed_terminal_during_the_run_finishes_it_cleanly(lab, tmp_path):
    lab.faults({"fgt-001": SLOW_API})
    site = site_variant(lab, "sighup")
    journal = tmp_path / "j"
    proc = spawn_cli(
        "apply", site, "--yes", "--output", "json", "--limit", "fgt-001", "--journal-dir", journal
    )
    wait_until(
        lambda: lab.requests(["fgt-001"])["fgt-001"]["writes"] >= 5, timeout=60, what="the policy write"
    )
    proc.send_signal(signal.SIGHUP)  # the terminal went away while the change is being probed
    code, out, err = finish(proc, timeout=90)
    assert_no_traceback(err)
    device = json.loads(out)["devices"][0]
    outcome = _untouched_or_applied_and_green(lab, site, "fgt-001")
    assert (device["status"], outcome) in (("changed", "applied"), ("rolled_back", "untouched")), device
    assert code == device["exit_code"]
    assert _lock_released(journal)
    again = run_cli("plan", site, "--limit", "fgt-001", "--output", "json")
    assert "never finished" not in again.stdout  # the run ended: nothing unfinished is left behind


@pytest.mark.timeout(120)
def test_an_output_pipe_closed_after_three_lines_never_aborts_the_transaction(lab, tmp_path):
    site = site_variant(lab, "pipe")
    journal = tmp_path / "j"
    shell = (
        f"{FORTIAUTO} apply {site} --yes --limit fgt-002 --journal-dir {journal} 2>&1 | head -3; "
        'exit "${PIPESTATUS[0]}"'
    )
    done = subprocess.run(
        ["bash", "-c", shell], env=cli_env(), capture_output=True, text=True, timeout=90, check=False
    )
    assert len(done.stdout.splitlines()) <= 3
    assert done.returncode == 0, done.stdout
    assert _untouched_or_applied_and_green(lab, site, "fgt-002") == "applied"
    assert _lock_released(journal)


@pytest.mark.timeout(120)
def test_two_runs_from_different_site_files_and_journals_never_change_one_firewall_at_once(lab, tmp_path):
    lab.faults({"fgt-001": SLOW_API})
    first_site, second_site = site_variant(lab, "site-a"), site_variant(lab, "site-b")
    locks = Path(os.environ["FORTIAUTO_LOCK_DIR"])
    first = spawn_cli("apply", first_site, "--yes", "--limit", "fgt-001", "--journal-dir", tmp_path / "a")
    try:
        wait_until(
            lambda: any(locks.glob("device-*.holder.json")), timeout=60, what="the first run's device lock"
        )
        first.send_signal(signal.SIGSTOP)  # hold it, alive, however slowly the second run starts
        second = run_cli(
            "apply",
            second_site,
            "--yes",
            "--output",
            "json",
            "--limit",
            "fgt-001",
            "--journal-dir",
            tmp_path / "b",
        )
    finally:
        first.send_signal(signal.SIGCONT)
        code, _, err = finish(first, timeout=90)
    assert code == 0, err
    device = json.loads(second.stdout)["devices"][0]
    assert (second.returncode, device["status"]) == (5, "refused")
    assert "another run holds the lock on device fgt-001" in device["reason"]
    assert f"pid {first.pid}" in device["reason"]
    assert not list(locks.glob("device-*.holder.json"))  # released when the first run ended
