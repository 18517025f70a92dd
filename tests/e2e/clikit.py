"""Helpers for driving the real ``fortiauto`` console script against a ``fortiauto lab up`` subprocess.

The lab runs as its own process (as an operator would run it), the CLI as another; the tests
look behind the REST API only through the lab's control API (canonical state dumps, request
logs with the lab process's monotonic timestamps), never through fortiauto's own objects.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.integration.engine.labkit import Control

FORTIAUTO = str(Path(sys.executable).with_name("fortiauto"))
READY_TIMEOUT = 60.0  # a 20-device lab starts in a few seconds; generous for a loaded CI box
CLI_TIMEOUT = 60.0


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no inherited journal override, wide plain output."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORTIAUTO_JOURNAL_DIR", "FORCE_COLOR")}
    # Wide enough that the summary table never wraps a device name or a reason mid-word.
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def run_cli(
    *args: str | Path, cwd: Path | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``fortiauto ARGS`` to completion (bounded), capturing stdout and stderr."""
    return subprocess.run(
        [FORTIAUTO, *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``fortiauto ARGS`` in the background (the caller must ``finish`` it)."""
    return subprocess.Popen(
        [FORTIAUTO, *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = CLI_TIMEOUT) -> tuple[int, str, str]:
    """Wait for a spawned CLI (bounded; killed on timeout) and return (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"fortiauto did not finish in {timeout} s; stderr:\n{err}") from None
    return proc.returncode, out, err


def run_in_pty(
    *args: str | Path, cwd: Path | None = None, size: tuple[int, int] = (30, 120)
) -> tuple[int, str, str]:
    """Run ``fortiauto ARGS`` with stderr on a pseudo-terminal (what a human sees); stdout is a pipe."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    env = cli_env()
    env.pop("NO_COLOR")
    env.pop("COLUMNS")  # let rich size itself from the terminal, as it would for a user
    proc = subprocess.Popen(
        [FORTIAUTO, *map(str, args)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + CLI_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
        code, out, _ = finish(proc, timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
    return code, out, b"".join(chunks).decode("utf-8", "replace")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms; fail the test (not hang it) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Fleet:
    """A running ``fortiauto lab up`` process and the control API of each of its devices."""

    def __init__(self, proc: subprocess.Popen[str], state_dir: Path) -> None:
        self.proc = proc
        self.state_dir = state_dir
        self.site = state_dir / "site.yml"
        self.info: dict[str, Any] = json.loads((state_dir / "lab.json").read_text())
        self.ca = str(state_dir / "ca.pem")
        self.names: list[str] = [d["name"] for d in self.info["devices"]]
        self.controls = {d["name"]: Control(d, self.ca) for d in self.info["devices"]}
        self.pristine = self.states()

    def states(self, names: Iterable[str] | None = None) -> dict[str, bytes]:
        return {n: self.controls[n].state() for n in (self.names if names is None else names)}

    def requests(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        return {n: self.controls[n].requests() for n in (self.names if names is None else names)}

    def reset(self) -> None:
        """Every device back to its seed: config, request log, messages and (no) faults."""
        for control in self.controls.values():
            control.reset()

    def faults(self, spec: dict[str, str]) -> None:
        for name, faults in spec.items():
            self.controls[name].faults(faults)

    def secrets(self) -> list[str]:
        """Every secret the lab handed out, and a line of the mail server's private key."""
        found = [d[key] for d in self.info["devices"] for key in ("token", "password")]
        key_lines = (self.state_dir / "certs" / "mx1.key").read_text().splitlines()
        return found + [line for line in key_lines if len(line) > 40][:2]

    def stop(self) -> None:
        for control in self.controls.values():
            control.close()
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGINT (the lab's clean stop), then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def lab_up(state_dir: Path, *args: str) -> subprocess.Popen[str]:
    """``fortiauto lab up --state-dir DIR ARGS`` in the background, once it printed ``lab ready``."""
    log = (state_dir.parent / f"{state_dir.name}.log").open("w")
    proc = subprocess.Popen(
        [FORTIAUTO, "lab", "up", "--state-dir", str(state_dir), *args],
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    line = ""
    while not line.startswith("lab ready:"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            stop_process(proc)
            raise AssertionError(
                f"fortiauto lab up {' '.join(args)} not ready (exit {proc.returncode}); see {log.name}"
            )
        if select.select([proc.stdout], [], [], min(left, 0.5))[0]:
            line = proc.stdout.readline()
    return proc


def start_fleet(state_dir: Path, devices: int = 20) -> Fleet:
    """``fortiauto lab up --devices N`` in the background, returned once it printed ``lab ready``."""
    return Fleet(lab_up(state_dir, "--devices", str(devices)), state_dir)


@contextlib.contextmanager
def fleet_running(state_dir: Path, devices: int = 20) -> Iterator[Fleet]:
    fleet = start_fleet(state_dir, devices)
    try:
        yield fleet
    finally:
        fleet.stop()


@contextlib.contextmanager
def lab_running(state_dir: Path, *args: str) -> Iterator[Fleet]:
    """``fortiauto lab up ARGS`` for the block, with each device's control API; stopped after."""
    fleet = Fleet(lab_up(state_dir, *args), state_dir)
    try:
        yield fleet
    finally:
        fleet.stop()


def site_variant(
    fleet: Fleet,
    name: str,
    *,
    rollout: dict[str, Any] | None = None,
    change_window: dict[str, str] | None = None,
    probe: dict[str, Any] | None = None,
    probe_devices: Collection[str] | None = None,
    fallback: Sequence[str] | None = ("certificate-inspection",),
) -> Path:
    """A copy of the lab's site file beside it (relative paths keep working) with top-level and
    mail-server keys changed: ``probe`` settings for ``probe_devices`` (all when None);
    ``fallback=None`` removes the fallback ladder."""
    yaml = YAML()
    data = yaml.load(fleet.site.read_text())
    if rollout is not None:
        data["rollout"] = rollout
    if change_window is not None:
        data["change_window"] = change_window
    for device in data["devices"]:
        for server in device["mail_servers"]:
            if probe_devices is None or device["name"] in probe_devices:
                server["probe"].update(probe or {})
            if fallback is None:
                server.pop("fallback", None)
            else:
                server["fallback"] = list(fallback)
    out = fleet.site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


# For the devices meant to fail: a held banner fails in ~3 s instead of ~10 s, while two attempts
# still keep a slow-but-healthy baseline probe on a loaded CI machine from failing.
FAST_FAILING_PROBE = {"timeout": 1.5, "retries": 2, "retry_delay": 0.1}


def activity(requests: dict[str, Any]) -> tuple[float, float] | None:
    """First and last API request a device received (lab clock), or None when it received none."""
    times = [entry["t"] for entry in requests["log"]]
    return (min(times), max(times)) if times else None


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of intervals that are open at the same instant (closed intervals)."""
    pairs = list(intervals)
    # At a tie the start sorts first: touching intervals count as overlapping (the strict reading).
    edges = sorted([(start, 0) for start, _ in pairs] + [(end, 1) for _, end in pairs])
    open_now = peak = 0
    for _, kind in edges:
        open_now += 1 if kind == 0 else -1
        peak = max(peak, open_now)
    return peak


def statuses(payload: dict[str, Any]) -> dict[str, str]:
    return {d["name"]: d["status"] for d in payload["devices"]}


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text
