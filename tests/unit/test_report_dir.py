"""Reports never change the mode of a directory that already existed (a shared 1777 one stays so)."""

from __future__ import annotations

from datetime import UTC, datetime

from fortiauto.report import write_reports
from fortiauto.results import RunResult
from fortiauto.transaction.outcome import Ending, conclude


def _run() -> RunResult:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    device = conclude("fgt-1", Ending.COMPLIANT, "already compliant")
    return RunResult(
        run_id="20261201T000000Z-aaaaaa", started=now, finished=now, devices=(device,), exit_code=0
    )


def test_a_shared_report_directory_keeps_its_mode_and_the_files_are_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    paths = write_reports(_run(), shared)
    assert oct(shared.stat().st_mode & 0o7777) == "0o1777"
    assert {oct(p.stat().st_mode & 0o777) for p in paths} == {"0o600"}


def test_a_report_directory_fortiauto_creates_is_private(tmp_path):
    write_reports(_run(), tmp_path / "new" / "reports")
    assert oct((tmp_path / "new" / "reports").stat().st_mode & 0o777) == "0o700"
