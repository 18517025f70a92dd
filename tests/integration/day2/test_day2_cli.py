"""Day 2 through the real ``fortiauto`` command, as a daily timer runs it, on FortiOS 6.4 and 7.2.

- a lost reply to the old certificate's DELETE is settled by reading again, not reported as kept;
- ``rollback --last`` after a completed rotation stops before any write and says the remedy on
  the console;
- after a kill -9 in the middle of a rotation, the next plain ``apply`` names the unfinished run
  and changes nothing until it is undone; undone, the next apply completes the rotation.

The lab runs in this process (a thread), the CLI as a subprocess. Runtime: about 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from fortiauto.journal import read_journal
from tests.e2e.clikit import finish, run_cli, spawn_cli
from tests.integration.day2.daykit import derived_name, renewed_certificate, site_copy
from tests.integration.engine.labkit import apply

VERSIONS = ["6.4", "7.2"]
KILL_TIMEOUT = 30.0


def _certificates(control) -> set[str]:
    response = control.http.get("/api/v2/cmdb/vpn.certificate/local")
    response.raise_for_status()
    return {c["name"] for c in response.json()["results"] if c["name"].startswith("fa-")}


def _bound(control) -> list[str]:
    response = control.http.get("/api/v2/cmdb/firewall/ssl-ssh-profile/protect-mx1")
    response.raise_for_status()
    value = response.json()["results"][0]["server-cert"]
    return [value] if isinstance(value, str) else [c["name"] for c in value]


async def _deployed_and_renewed(lab, tmp_path: Path) -> tuple[Path, str, str]:
    """mx1 deployed with its first certificate; a site naming the renewed one; (site, old, new)."""
    first = await apply(lab.site, tmp_path / "j")
    assert first.devices[0].status == "changed", first.devices[0].reason
    state_dir = lab.site.parent
    renewed = renewed_certificate(state_dir, f"mx1-renewed-{tmp_path.name}")
    site = site_copy(lab.site, f"renewed-{tmp_path.name}", mail_server={"certificate": renewed})
    return site, derived_name(state_dir, "certs/mx1.pem"), derived_name(state_dir, renewed["cert"])


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_lost_reply_to_the_old_certificates_delete_is_read_again(lab_factory, tmp_path, version):
    lab = lab_factory(version)
    control = lab.control()
    site, _old, new = await _deployed_and_renewed(lab, tmp_path)
    control.faults("reset-on-write=3")  # import, rebind, then the delete: done, its answer never comes
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", tmp_path / "j")
    assert done.returncode == 0, done.stderr
    device = json.loads(done.stdout)["devices"][0]
    assert device["status"] == "changed", device["reason"]
    assert _certificates(control) == {new}
    assert not any("answer was lost" in w or "kept certificate" in w for w in device["warnings"])
    assert [c["action"] for c in device["changes"]] == ["import", "update", "delete"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_rollback_last_after_a_completed_rotation_stops_and_says_the_remedy(
    lab_factory, tmp_path, version
):
    lab = lab_factory(version)
    control = lab.control()
    site, old, new = await _deployed_and_renewed(lab, tmp_path)
    rotated = run_cli("apply", site, "--yes", "--journal-dir", tmp_path / "j")
    assert rotated.returncode == 0, rotated.stderr
    assert _certificates(control) == {new}
    before = control.requests()
    state = control.state()
    undone = run_cli("rollback", "--last", "--yes", "--journal-dir", tmp_path / "j")
    assert undone.returncode == 4, undone.stderr
    console = undone.stdout + undone.stderr
    assert "re-import it from its files" in console  # the remedy, on the console
    assert old in console
    after = control.requests()
    assert after["writes"] == before["writes"]  # no write that could only fail
    assert control.state() == state
    assert _bound(control) == [new]


def _wait_for_write(journal_dir: Path, path: str, proc, earlier: set[Path]) -> str:
    """The new run's id once it has journaled a write of ``path`` (a ``pre`` line)."""
    deadline = time.monotonic() + KILL_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, "fortiauto finished before the write to kill it at"
        for journal in set(journal_dir.glob("*.jsonl")) - earlier:
            entries = read_journal(journal)
            if any(e.get("type") == "pre" and e["change"]["path"] == path for e in entries):
                return journal.stem
        time.sleep(0.02)
    raise AssertionError(f"no write of {path} journaled in {KILL_TIMEOUT} s")


@pytest.mark.parametrize("version", VERSIONS)
async def test_kill_mid_rotation_then_apply_names_the_unfinished_run(lab_factory, tmp_path, version):
    lab = lab_factory(version)
    control = lab.control()
    site, old, new = await _deployed_and_renewed(lab, tmp_path)
    control.faults("api-latency=400")  # slow enough to kill between the rebind and the probe
    earlier = set((tmp_path / "j").glob("*.jsonl"))
    proc = spawn_cli("apply", site, "--yes", "--journal-dir", tmp_path / "j")
    killed = _wait_for_write(tmp_path / "j", "firewall/ssl-ssh-profile", proc, earlier)
    os.kill(proc.pid, signal.SIGKILL)
    finish(proc)
    control.faults({})
    mark = control.requests()

    again = run_cli("apply", site, "--yes", "--journal-dir", tmp_path / "j")
    console = again.stdout + again.stderr
    assert again.returncode == 5, console
    assert killed in console  # the unfinished run, named
    assert f"fortiauto rollback --run {killed}" in console  # and how to undo it
    assert "already compliant" not in console
    assert control.requests()["writes"] == mark["writes"]

    # Undone, the next run of the timer completes the rotation: one certificate, bound.
    undone = run_cli("rollback", "--run", killed, "--yes", "--journal-dir", tmp_path / "j")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert old in _certificates(control)
    assert _bound(control) == [old]
    for _ in range(2):
        last = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", tmp_path / "j")
        assert last.returncode == 0, last.stderr
    device = json.loads(last.stdout)["devices"][0]
    assert device["status"] == "unchanged", device["reason"]
    assert device["requests"]["writes"] == 0
    assert device["probe"]["passed"] is True
    assert _certificates(control) == {new}
    assert _bound(control) == [new]
