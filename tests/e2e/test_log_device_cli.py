"""The proof of the fix read where the unit really logs: a unit logging to disk, memory log off.

Through the CLI against a real lab process (``lab up --log-device disk``): the effect is proven
from the disk log (the memory log is off, as on units with a disk), and the JSON and the change
record show the entry that proved it (time, subject token, policy id, action, source).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.clikit import assert_no_traceback, lab_running, run_cli

pytestmark = pytest.mark.e2e


def test_the_effect_is_proven_from_the_disk_log(tmp_path: Path) -> None:
    with lab_running(tmp_path / "lab", "--devices", "1", "--log-device", "disk") as fleet:
        control = fleet.controls["fgt-001"]
        memory = control.http.get("/api/v2/cmdb/log.memory/setting").json()["results"]
        disk = control.http.get("/api/v2/cmdb/log.disk/setting").json()["results"]
        assert (memory["status"], disk["status"]) == ("disable", "enable")

        reports = tmp_path / "reports"
        done = run_cli(
            "apply", fleet.site, "--yes", "--output", "json",
            "--journal-dir", tmp_path / "journal", "--report-dir", reports,
        )  # fmt: skip
        assert_no_traceback(done.stderr)
        device = json.loads(done.stdout)["devices"][0]
        token = (device.get("evidence") or {}).get("token", "")
        on_disk = control.http.get(
            "/api/v2/log/disk/emailfilter/raw", params={"filter": f"subject=@{token}"}
        ).text
        in_memory = control.http.get(
            "/api/v2/log/memory/emailfilter/raw", params={"filter": f"subject=@{token}"}
        )

    assert (done.returncode, device["status"], device["effect"]) == (0, "changed", "logged"), device["reason"]
    evidence = device["evidence"]
    assert evidence["source"] == "disk"
    assert evidence["policy_id"] == 1
    assert evidence["token"] in evidence["subject"]
    assert evidence["token"] in on_disk  # the lab's own disk log holds the entry fortiauto cited
    assert evidence["token"] not in in_memory.text  # and the memory log, off, does not
    record = next(reports.glob("*.md")).read_text()
    assert "the probe message is in the email filter log" in record
    assert "log disk" in record
