"""The reports of a real run: ``fortiauto apply --report-dir`` against the lab, read as people read them.

Three lab devices, one of which stops relaying the SMTP banner once deep inspection is on (the
field report's failure), so the run has changed devices and one that fell back or rolled back.
The console summary must show that device's failure with its timings; the HTML report is opened
in headless Chromium and must show every device and load nothing; the Markdown change record
must hold the shared plan once and a back-out command naming the journal directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.e2e.clikit import (
    CLI_TIMEOUT,
    FAST_FAILING_PROBE,
    FORTIAUTO,
    Fleet,
    assert_no_traceback,
    cli_env,
    fleet_running,
    run_cli,
    site_variant,
)

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROKEN = "fgt-002"


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("reports") / "lab", devices=3) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    return lab_process


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.devices: list[str | None] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.devices.append(dict(attrs).get("data-device"))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _browser_dom(page: Path, profile: Path) -> tuple[str, str]:
    shown = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return shown.stdout, shown.stderr


@pytest.mark.timeout(150)
def test_reports_of_a_run_with_a_failed_probe(lab: Fleet, tmp_path: Path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (.ci/run installs it)")
    site = site_variant(lab, "reports", probe=FAST_FAILING_PROBE)
    lab.faults({BROKEN: "banner-hold-on-utm"})
    reports, journal = tmp_path / "reports", tmp_path / "journal"
    # As in a CI log or a pipe: no terminal and no COLUMNS, so no width to wrap at.
    env = {k: v for k, v in cli_env().items() if k != "COLUMNS"}
    done = subprocess.run(
        [FORTIAUTO, "apply", str(site), "--yes", "--report-dir", str(reports), "--journal-dir", str(journal)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert_no_traceback(done.stdout, done.stderr)
    assert done.returncode != 0, done.stdout  # the broken device did not get the full fix

    # Console: the summary row, then the failure that caused the fallback or rollback.
    row = next(line for line in done.stdout.splitlines() if line.startswith(f"│ {BROKEN}"))
    broken = next(
        d for d in json.loads((next(reports.glob("*.json"))).read_text())["devices"] if d["name"] == BROKEN
    )
    assert broken["reason"] in row  # the whole reason on the device's one row, not wrapped at 80
    failure_line = next(line for line in done.stdout.splitlines() if line.startswith(f"{BROKEN}: F4"))
    assert "outage window: mail broken for" in failure_line
    assert any(line.lstrip().startswith("banner") and "FAIL" in line for line in done.stdout.splitlines())

    (page,) = reports.glob("*.html")
    (record,) = reports.glob("*.md")
    dom, log = _browser_dom(page, tmp_path / "profile")
    shown = _Sections()
    shown.feed(dom)
    assert shown.devices == lab.names
    text = "".join(shown.text)
    assert "Failure that caused the" in text
    assert "F4 banner-timeout" in text
    assert "Content Security Policy directive" not in log  # nothing was requested
    assert f"--journal-dir {journal}" in text

    markdown = record.read_text()
    assert f"--journal-dir {journal}" in markdown or f"--journal-dir '{journal}'" in markdown
    assert markdown.count("FortiOS CLI equivalent") < len(lab.names)  # the two alike devices share one plan
    assert f"## Device {BROKEN}" in markdown

    # The back-out, as the record says it, from another directory: its own reports read the same way.
    run_id = page.name.removesuffix(".html")
    undone_reports = tmp_path / "undone"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    undone = run_cli(
        "rollback",
        "--yes",
        "--run",
        run_id,
        "--journal-dir",
        journal,
        "--report-dir",
        undone_reports,
        cwd=elsewhere,
    )
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert lab.states() == lab.pristine
    (undo_page,) = undone_reports.glob("*.html")
    dom, log = _browser_dom(undo_page, tmp_path / "profile")
    shown = _Sections()
    shown.feed(dom)
    assert sorted(d or "" for d in shown.devices) == lab.names
    assert "Content Security Policy directive" not in log


def test_console_shows_bracketed_text_from_a_file_literally(tmp_path: Path):
    """Rich markup in a path or a value is text: ``[bold]`` and ``[http 500, error -1]`` stay as typed."""
    site = tmp_path / "[bold]site [http 500, error -1].yml"
    site.write_text(
        "version: 1\ndevices:\n"
        '  - name: "[red]fgt[/red]"\n    url: https://127.0.0.1:1\n    token: x\n    mail_servers: []\n'
    )
    done = run_cli("validate", site, cwd=tmp_path)
    assert done.returncode == 2
    assert_no_traceback(done.stdout, done.stderr)
    (line,) = done.stderr.strip().splitlines()  # one line, nothing forged or eaten
    assert line.startswith(f"error: {site}:3: ")
    assert "'[red]fgt[/red]'" in line
