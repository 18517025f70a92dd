"""A daily timer with a kill -9 in the middle of a renewal's retirement: the next runs finish it.

The kill lands after the rotation committed (the new certificate bound and probed) and while the
old certificate's delete is in flight. The next plain ``apply`` resumes: it finishes the
retirement instead of refusing the device; the loop then ends with exactly one fortiauto
certificate, bound, probe-green, and a last run that writes nothing.
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
from tests.integration.day2.daykit import renewed_certificate, site_copy
from tests.integration.engine.labkit import apply

KILL_TIMEOUT = 60.0


def _certificates(control) -> set[str]:
    response = control.http.get("/api/v2/cmdb/vpn.certificate/local")
    response.raise_for_status()
    return {c["name"] for c in response.json()["results"] if c["name"].startswith("fa-")}


def _wait_for_the_retiring_delete(journal_dir: Path, proc, earlier: set[Path]) -> str:
    deadline = time.monotonic() + KILL_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, "fortiauto finished before the delete to kill it at"
        for journal in set(journal_dir.glob("*.jsonl")) - earlier:
            entries = read_journal(journal)
            if any(e.get("type") == "pre" and e["change"]["action"] == "delete" for e in entries):
                return journal.stem
        time.sleep(0.01)
    raise AssertionError(f"no retiring delete journaled in {KILL_TIMEOUT} s")


@pytest.mark.parametrize("version", ["6.4", "7.2"])
async def test_a_timer_loop_with_a_kill_mid_retirement_settles_on_one_bound_certificate(
    lab_factory, tmp_path, version
):
    lab = lab_factory(version)
    control = lab.control()
    first = await apply(lab.site, tmp_path / "j")
    assert first.devices[0].status == "changed", first.devices[0].reason
    renewed = renewed_certificate(lab.site.parent, f"mx1-renewed-{tmp_path.name}")
    site = site_copy(lab.site, f"renewed-{tmp_path.name}", mail_server={"certificate": renewed})

    runs = []
    for attempt in range(5):
        if attempt == 0:  # the renewal's run: killed while it deletes the old certificate
            control.faults("api-latency=400")
            earlier = set((tmp_path / "j").glob("*.jsonl"))
            proc = spawn_cli("apply", site, "--yes", "--journal-dir", tmp_path / "j")
            killed = _wait_for_the_retiring_delete(tmp_path / "j", proc, earlier)
            os.kill(proc.pid, signal.SIGKILL)
            finish(proc)
            control.faults({})
            continue
        done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", tmp_path / "j")
        assert done.returncode == 0, done.stdout + done.stderr
        runs.append(json.loads(done.stdout)["devices"][0])

    resumed = runs[0]  # the first run after the kill
    assert killed in " ".join(resumed["warnings"]) + resumed["reason"]
    assert len(_certificates(control)) == 1
    last = runs[-1]
    assert last["status"] == "unchanged", last["reason"]
    assert last["requests"]["writes"] == 0
    assert last["probe"]["passed"] is True
    entries = read_journal(tmp_path / "j" / f"{killed}.jsonl")
    assert any(e.get("type") == "end" and e.get("resumed_by") for e in entries)
