"""Wall time of the Ansible path beside the CLI path, on the same lab (10 and 50 devices).

Run from the repository root (takes a few minutes on 2 cores):

    .venv/bin/python -m bench.ansible                  # 10 and 50 devices, writes bench/RESULTS-ansible.md
    .venv/bin/python -m bench.ansible --devices 10 --repeat 3 --no-write

For each fleet size one lab runs in this process; before every measured run each device is
reset to its seed state. Three operations per path: plan (``--check``, zero writes), the first
apply (every device changes: baseline probe, five writes, probe, effect check) and a re-run
(nothing to change). Both paths run the same engine with ten devices in flight:
``ansible-playbook --forks 10`` (a sliding window of module processes, one per device) and
``fortiauto apply`` with a rollout of ``canary: 0, batch_size: N, concurrency: 10`` (one
event loop). The CLI with the lab's own rollout (a canary, then batches of ten) is shown too.
Every run's outcome is checked, so a number is never the time of a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: this folder would shadow the `ansible` package; import from the repository root.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from ruamel.yaml import YAML

from fortiauto_lab.server import LabThread
from tests.e2e.ansible_kit import BIN, REPO, run_playbook
from tests.integration.engine.labkit import Control

RESULTS = REPO / "bench" / "RESULTS-ansible.md"
OPERATIONS = ("plan", "apply", "re-run")
EXPECTED = {"plan": "changed", "apply": "changed", "re-run": "unchanged"}


def _sliding_site(site: Path, devices: int) -> Path:
    """The lab's site file with a rollout comparable to --forks 10: no canary, ten in flight."""
    yaml = YAML()
    data = yaml.load(site.read_text())
    data["rollout"] = {"canary": 0, "batch_size": devices, "concurrency": 10, "max_failures": devices}
    out = site.with_name("site-bench.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def _cli(site: Path, operation: str, journal: Path) -> float:
    command = [str(BIN / "fortiauto"), "apply", str(site), "--yes", "--output", "json"]
    command += ["--journal-dir", str(journal)]
    if operation == "plan":
        command.append("--check")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.perf_counter() - started
    run = json.loads(done.stdout)
    statuses = {d["status"] for d in run["devices"]}
    if done.returncode != 0 or statuses != {EXPECTED[operation]}:
        raise SystemExit(f"CLI {operation} did not succeed: exit {done.returncode}, {statuses}")
    return elapsed


def _ansible(hosts: Path, operation: str, home: Path, devices: int) -> float:
    args = ("--check",) if operation == "plan" else ()
    started = time.perf_counter()
    run = run_playbook("site.yml", hosts, *args, home=home, forks=10, timeout=900)
    elapsed = time.perf_counter() - started
    statuses = {r["status"] for r in run.results.values()}
    if run.returncode != 0 or len(run.results) != devices or statuses != {EXPECTED[operation]}:
        raise SystemExit(f"ansible {operation} did not succeed: rc {run.returncode}, {statuses}")
    return elapsed


def _paths(state: Path, devices: int, work: Path) -> dict[str, Callable[[str, int], float]]:
    hosts, site, sliding = state / "hosts.yml", state / "site.yml", _sliding_site(state / "site.yml", devices)
    return {
        "ansible-playbook --forks 10": lambda op, n: _ansible(hosts, op, work / f"home{n}", devices),
        "fortiauto apply, concurrency 10": lambda op, n: _cli(sliding, op, work / f"journal{n}"),
        "fortiauto apply, lab rollout (canary 1, batches of 10)": lambda op, n: _cli(
            site, op, work / f"journal{n}"
        ),
    }


def bench_fleet(devices: int, repeat: int, work: Path) -> dict[str, dict[str, list[float]]]:
    """Seconds per path and operation, ``repeat`` times each, on one lab of ``devices`` devices."""
    state = work / f"lab-{devices}"
    times: dict[str, dict[str, list[float]]] = {}
    with LabThread(state, devices=devices, version="7.0"):
        info = json.loads((state / "lab.json").read_text())
        controls = [Control(d, str(state / "ca.pem")) for d in info["devices"]]
        paths = _paths(state, devices, work)
        try:
            for n in range(repeat):
                for name, run in paths.items():
                    for control in controls:
                        control.reset()
                    for operation in OPERATIONS:
                        seconds = run(operation, n)
                        times.setdefault(name, {}).setdefault(operation, []).append(seconds)
                        print(f"{devices:>3} devices  {name:<55} {operation:<7} {seconds:6.1f} s", flush=True)
        finally:
            for control in controls:
                control.close()
    return times


def _machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if "model name" in line
            ),
            model,
        )
    ansible = subprocess.run(
        [str(BIN / "ansible-playbook"), "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return (
        f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {ansible}"
    )


def _load() -> str:
    path = Path("/proc/loadavg")
    return ", ".join(path.read_text().split()[:3]) if path.exists() else "unknown"


def _markdown(results: dict[int, dict[str, dict[str, list[float]]]], repeat: int) -> str:
    lines = [
        "# Ansible path beside the CLI path",
        "",
        f"Written by `python -m bench.ansible` on {datetime.now(UTC):%Y-%m-%d}. Machine: {_machine()}.",
        "",
        f"Wall time in seconds (median of {repeat} run{'s' if repeat > 1 else ''}) against the built-in",
        "lab (FortiOS 7.0), every device reset to its seed state first. *plan*: `--check`, zero writes.",
        "*apply*: first run, every device changes (baseline probe, five writes, probe, email filter log",
        "check). *re-run*: nothing left to change (baseline probe and plan). Ten devices in flight on",
        "both paths; the lab, the CLI and Ansible share the same cores.",
        "",
        "| devices | path | plan | apply | re-run |",
        "|---:|---|---:|---:|---:|",
    ]
    for devices, paths in results.items():
        for name, ops in paths.items():
            cells = " | ".join(f"{statistics.median(ops[op]):.1f}" for op in OPERATIONS)
            lines.append(f"| {devices} | {name} | {cells} |")
    lines += [
        "",
        "Reading: both paths run the same engine and make the same requests and probes per device.",
        "The Ansible path adds one Python process per device and task (AnsiballZ, then importing",
        "fortiauto and its dependencies: about 0.6 s of CPU each) and ansible-playbook's own work; on",
        "2 cores, shared with the lab, that CPU time is most of its wall time, so it grows with the",
        "fleet at roughly 0.6 s per device. The CLI runs every device on one event loop in one process.",
        f"Load average (1, 5, 15 min) when the run ended: {_load()}; other work on the machine adds noise.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, action="append", help="fleet sizes (default 10 and 50)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help=f"do not rewrite {RESULTS.name}")
    options = parser.parse_args()
    sizes = options.devices or [10, 50]
    with tempfile.TemporaryDirectory(prefix="fortiauto-bench-ansible-") as tmp:
        results = {n: bench_fleet(n, options.repeat, Path(tmp)) for n in sizes}
    text = _markdown(results, options.repeat)
    print(text)
    if not options.no_write:
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
