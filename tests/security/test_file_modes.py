"""Journal, lock and report files are 0600 in 0700 directories, whatever the umask says.

fortiauto runs with umask 000 here, so a mode that only came from the usual 022 umask would show
up as world-readable. The lock exists only while a run holds it: the lab's API latency keeps the
apply busy long enough to look at it. ~3 s.
"""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

from tests.chaos.chaoskit import CLI_TIMEOUT, cli_command, cli_env
from tests.security.conftest import Canaries, SecLab, site_variant


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _wait_for(path: Path, process: subprocess.Popen[bytes], *, deadline: float = 30) -> int | None:
    end = time.monotonic() + deadline
    while time.monotonic() < end and process.poll() is None:
        try:
            return _mode(path)
        except FileNotFoundError:
            time.sleep(0.005)
    return None


def test_journal_lock_and_reports_are_private(sec_lab: SecLab, canaries: Canaries, tmp_path: Path) -> None:
    sec_lab.control.reset()
    site = site_variant(sec_lab, "modes", auth="token", canaries=canaries)
    journal, reports = tmp_path / "state" / "journal", tmp_path / "out" / "reports"
    env = cli_env(journal, MX1_KEY_PASSPHRASE=canaries.values["passphrase"])
    sec_lab.control.faults("api-latency=100")
    apply = subprocess.Popen(
        cli_command("apply", str(site), "--yes", "--report-dir", str(reports)),
        env=env,
        umask=0,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock_mode = _wait_for(journal / "fortiauto.lock", apply)
        assert apply.wait(timeout=CLI_TIMEOUT) == 0
    finally:
        if apply.poll() is None:
            apply.kill()
            apply.wait(timeout=CLI_TIMEOUT)
    sec_lab.control.faults({})
    assert lock_mode == 0o600
    assert not (journal / "fortiauto.lock.holder.json").exists()  # released at the end of the run
    (run,) = journal.glob("*.jsonl")
    assert _mode(journal) == 0o700
    assert _mode(run) == 0o600
    written = sorted(reports.iterdir())
    assert {p.suffix for p in written} == {".json", ".xml", ".md", ".html"}
    assert _mode(reports) == 0o700
    assert all(_mode(p) == 0o600 for p in written), {p.name: oct(_mode(p)) for p in written}

    # The rollback appends to the same journal (and writes its own reports) under the same rules.
    done = subprocess.run(
        cli_command("rollback", "--yes", "--last", "--report-dir", str(reports)),
        env=env,
        umask=0,
        capture_output=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _mode(run) == 0o600
    assert all(_mode(p) == 0o600 for p in reports.iterdir())
