"""The HTML run report in a real headless browser (Debian's chromium, installed by .ci/run).

Chromium loads the report file as a user would open it, and the tests read what it built: the
DOM after load (``--dump-dom``) and its console log. The page's Content-Security-Policy
(``default-src 'none'``) makes Chromium log every load the page attempts; a control page with
one image and one stylesheet shows that log line appears, so its absence for the report means
the report requested nothing. Hostile device names must show as text, never as elements.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fortiauto.report import write_reports
from fortiauto.report.safe import visible
from fortiauto.report.to_html import CONTENT_SECURITY_POLICY
from tests.unit import reportkit as kit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium not installed (.ci/run installs it)"
)

_VIOLATION = "Content Security Policy directive"


def _chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.devices: list[str | None] = []
        self.csp: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "section":
            self.devices.append(values.get("data-device"))
        if tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp = values.get("content")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _report(tmp_path: Path, run) -> Path:
    paths = write_reports(run, tmp_path / "reports", journal_dir=tmp_path / "journal")
    return next(p for p in paths if p.suffix == ".html")


def _run_with_hostile_names():
    hostile = kit.changed(kit.HOSTILE, reason=kit.HOSTILE)
    return kit.run_of(hostile, *kit.fleet().devices, exit_code=3, notes=(kit.HOSTILE,))


def test_the_browser_shows_every_device_and_loads_nothing(tmp_path: Path):
    run = _run_with_hostile_names()
    shown = _chromium(tmp_path, _report(tmp_path, run), "--dump-dom")
    dom = _Dom()
    dom.feed(shown.stdout)
    assert dom.devices == [visible(d.name) for d in run.devices]  # every device, the hostile name as data
    assert dom.csp == CONTENT_SECURITY_POLICY
    assert "script" not in dom.tags
    assert "img" not in dom.tags
    assert "link" not in dom.tags
    text = "".join(dom.text)
    assert "<script>alert(1)</script>" in text  # shown as text
    assert "Failure that caused the rollback" in text
    assert "Failure that caused the fallback" in text
    assert "Outage window: mail was broken for 38000 ms" in text
    assert _VIOLATION not in shown.stderr, shown.stderr  # the page attempted no load at all


def test_the_violation_check_sees_an_attempted_load(tmp_path: Path):
    control = tmp_path / "control.html"
    control.write_text(
        f'<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<p>control</p><img src="http://203.0.113.9/x.png"><link rel="stylesheet" href="http://203.0.113.9/a.css">'
    )
    shown = _chromium(tmp_path, control, "--dump-dom")
    assert shown.stderr.count(_VIOLATION) >= 2


def test_the_browser_draws_the_page(tmp_path: Path):
    shot = tmp_path / "report.png"
    _chromium(tmp_path, _report(tmp_path, kit.fleet()), f"--screenshot={shot}", "--window-size=1280,2400")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2400)
    assert len(data) > 50_000  # text, tables and bars, not a blank page
