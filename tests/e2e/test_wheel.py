"""The built wheel, installed into a fresh virtualenv, is a working fortiauto on its own.

Builds the wheel from the checkout, installs it into a new venv (no system site packages, the
dependencies resolved by pip from the configured index), then runs it from a temporary
directory away from the checkout: ``fortiauto --version``, ``fortiauto validate`` on the shipped
example, a run report rendered from the templates inside the installed package, and (with the
``lab`` extra) ``fortiauto lab up`` whose site file validates. A missing dependency declaration
(an import that only arrived through another package) fails here.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fortiauto

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

_RENDER = """
import sys
from datetime import UTC, datetime
from pathlib import Path

import fortiauto
from fortiauto.report import write_reports
from fortiauto.report.assets import reports_dir
from fortiauto.results import DeviceResult, RunResult

when = datetime(2026, 11, 24, tzinfo=UTC)
device = DeviceResult(name="fgt-wheel", status="unchanged", reason="nothing to change")
run = RunResult(run_id="20261124T000000Z-abcdef", started=when, finished=when, devices=(device,), exit_code=0)
print(Path(fortiauto.__file__).resolve())
print(reports_dir().resolve())
for path in write_reports(run, Path(sys.argv[1])):
    print(path)
"""


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def _example(into: Path) -> Path:
    """The shipped single-device example with the certificates it names, in the same layout."""
    site = into / "inventory" / "examples" / "single-device.yml"
    site.parent.mkdir(parents=True)
    shutil.copy(ROOT / "inventory" / "examples" / "single-device.yml", site)
    shutil.copytree(ROOT / "tests" / "fixtures" / "certs", into / "tests" / "fixtures" / "certs")
    return site


def test_the_wheel_installs_into_a_fresh_venv_and_runs_from_its_own_files(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()

    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT], cwd=work, env=env
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("fortiauto-*.whl")
    assert wheel.name.startswith(f"fortiauto-{fortiauto.__version__}-")  # the version has one source

    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=work, env=env)
    assert made.returncode == 0, made.stderr
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    python = venv / "bin" / "python"
    installed = _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", f"{wheel}[lab]"], cwd=work, env=env
    )
    assert installed.returncode == 0, installed.stderr

    version = _run([venv / "bin" / "fortiauto", "--version"], cwd=work, env=env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"fortiauto {fortiauto.__version__}"

    site = _example(work)
    valid = _run([venv / "bin" / "fortiauto", "validate", site], cwd=work, env={**env, "FGT_TOKEN": "t" * 30})
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "valid" in valid.stdout

    rendered = _run([python, "-c", _RENDER, work / "reports"], cwd=work, env=env)
    assert rendered.returncode == 0, rendered.stderr
    package, templates, *reports = rendered.stdout.split()
    site_packages = str(venv.resolve())
    assert package.startswith(site_packages)  # the installed copy, not the checkout
    assert templates.startswith(site_packages)
    assert sorted(Path(r).suffix for r in reports) == [".html", ".json", ".md", ".xml"]
    assert "fgt-wheel" in (work / "reports" / "20261124T000000Z-abcdef.html").read_text()

    lab_site = _lab_up(venv / "bin" / "fortiauto", work / "lab", env)
    lab_valid = _run([venv / "bin" / "fortiauto", "validate", lab_site], cwd=work, env=env)
    assert lab_valid.returncode == 0, lab_valid.stdout + lab_valid.stderr


def _lab_up(fortiauto_bin: Path, state: Path, env: dict[str, str]) -> Path:
    """Start ``lab up`` from the venv, wait for ``lab ready: SITE``, stop it with Ctrl-C; returns SITE."""
    process = subprocess.Popen(
        [str(fortiauto_bin), "lab", "up", "--devices", "1", "--state-dir", str(state)],
        cwd=state.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                if selector.select(timeout=1):
                    line = process.stdout.readline()
                    seen.append(line)
                    if line.startswith("lab ready: "):
                        return Path(line.removeprefix("lab ready: ").strip())
        raise AssertionError(f"lab did not start: {''.join(seen)}")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
