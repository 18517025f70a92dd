"""`fortiauto rollback --run ID` from the journal alone: no site file, and never a secret in the journal."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.clikit import Fleet, assert_no_traceback, fleet_running, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("journal-only") / "lab", devices=2) as fleet:
        yield fleet


def test_a_committed_run_is_undone_after_its_site_file_is_gone(lab, tmp_path):
    lab.reset()
    site = lab.site.with_name("site-gone.yml")
    site.write_text(lab.site.read_text())
    journal = tmp_path / "j"
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", journal)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    text = (journal / f"{run_id}.jsonl").read_text()
    for secret in lab.secrets():
        assert secret not in text
    reach = next(json.loads(line) for line in text.splitlines() if '"type": "run"' in line)["reach"]
    assert {r["name"] for r in reach} == {"fgt-001", "fgt-002"}
    assert all(r["credential"].startswith("${file:/") for r in reach)  # the reference, absolute

    site.unlink()  # the site file is gone (a fresh AWX container, a deleted checkout ...)
    undo = run_cli("rollback", "--yes", "--run", run_id, "--journal-dir", journal, "--output", "json")
    assert_no_traceback(undo.stderr)
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert {d["status"] for d in json.loads(undo.stdout)["devices"]} == {"rolled_back"}
    assert lab.states() == lab.pristine
