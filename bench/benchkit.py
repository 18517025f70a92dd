"""Shared plumbing for the benchmarks in ``bench/``: the lab and fortiauto as separate processes.

Every benchmark starts the lab exactly as a user would (``fortiauto lab up`` in its own
process, ready when it prints ``lab ready:``) and drives fortiauto through its CLI, so the
numbers include interpreter start-up, imports and both sides' TLS. Peak memory of a
finished command comes from ``os.wait4`` (the kernel's ``ru_maxrss`` for exactly that
child, the number ``/usr/bin/time -v`` prints); the lab's comes from ``VmHWM`` in
``/proc/PID/status``. Nothing here is collected by pytest.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

__all__ = [
    "BENCH_DIR",
    "FORTIAUTO",
    "LabProcess",
    "Measured",
    "fmt_mb",
    "hot_spots",
    "lab_process",
    "load_average",
    "machine",
    "markdown_table",
    "median",
    "profiled",
    "py_spy",
    "run_measured",
    "sampling",
    "site_variant",
    "wait_quiet",
    "write_section",
]

BENCH_DIR = Path(__file__).resolve().parent
# The fortiauto console script of the interpreter running the benchmark (the venv's).
FORTIAUTO = str(Path(sys.executable).parent / "fortiauto")
_READY = re.compile(r"^lab ready: (?P<site>.+)$")


@dataclass(frozen=True)
class Measured:
    """One finished command: exit code, wall time, CPU time and peak resident memory."""

    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kb: int
    stdout: str
    stderr: str
    timed_out: bool = False


def run_measured(
    argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Measured:
    """Run ``argv`` to completion and measure it with ``wait4`` (bounded: killed after ``timeout``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            # wait4 reaps the child and returns its own rusage (ru_maxrss in KiB on Linux).
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            argv=tuple(argv),
            returncode=proc.returncode,
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            max_rss_kb=usage.ru_maxrss,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            timed_out=killed.is_set(),
        )


def _proc_status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def _proc_cpu_s(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat are utime and stime in clock ticks; the comm field
    # may contain spaces, so split after its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class LabProcess:
    """A running ``fortiauto lab up`` child process and what it wrote into its state dir."""

    proc: subprocess.Popen[str]
    state_dir: Path
    site_path: Path
    start_s: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        return _proc_status(self.pid)["VmRSS"]

    def peak_rss_kb(self) -> int:
        return _proc_status(self.pid)["VmHWM"]

    def cpu_s(self) -> float:
        return _proc_cpu_s(self.pid)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.info["ca"])

    def request_counts(self) -> dict[str, tuple[int, int]]:
        """``{device: (total, writes)}`` from every device's ``/__lab__/requests``."""
        return asyncio.run(self._request_counts())

    async def _request_counts(self) -> dict[str, tuple[int, int]]:
        context = self.ssl_context()
        limit = asyncio.Semaphore(20)

        async def one(client: httpx.AsyncClient, device: dict[str, Any]) -> tuple[str, tuple[int, int]]:
            async with limit:
                response = await client.get(
                    f"{device['url']}/__lab__/requests",
                    headers={"Authorization": f"Bearer {device['token']}"},
                )
            response.raise_for_status()
            data = response.json()
            return device["name"], (int(data["total"]), int(data["writes"]))

        async with httpx.AsyncClient(verify=context, timeout=30) as client:
            pairs = await asyncio.gather(*(one(client, d) for d in self.info["devices"]))
        return dict(pairs)

    def reset_all(self) -> None:
        """``POST /__lab__/reset`` on every device: seed config, launch faults, empty logs."""
        asyncio.run(self._reset_all())

    async def _reset_all(self) -> None:
        limit = asyncio.Semaphore(20)

        async def one(client: httpx.AsyncClient, device: dict[str, Any]) -> None:
            async with limit:
                response = await client.post(
                    f"{device['url']}/__lab__/reset",
                    headers={"Authorization": f"Bearer {device['token']}"},
                )
            response.raise_for_status()

        async with httpx.AsyncClient(verify=self.ssl_context(), timeout=30) as client:
            await asyncio.gather(*(one(client, d) for d in self.info["devices"]))

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


@contextmanager
def lab_process(
    devices: int,
    state_dir: Path,
    *,
    faults: str | None = None,
    version: str = "7.0",
    timeout: float = 120,
) -> Iterator[LabProcess]:
    """Start ``fortiauto lab up`` in its own process; ``start_s`` is spawn -> ``lab ready:`` line."""
    argv = [FORTIAUTO, "lab", "up", "--devices", str(devices), "--state-dir", str(state_dir)]
    argv += ["--version", version]
    if faults:
        argv += ["--faults", faults]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    )
    lab = None
    try:
        site = _wait_ready(proc, timeout)
        lab = LabProcess(proc, state_dir, Path(site), time.perf_counter() - start)
        lab.info = json.loads((state_dir / "lab.json").read_text())
        yield lab
    finally:
        if lab is not None:
            lab.stop()
        elif proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    """Read the lab's output until ``lab ready: <site>``; a reader thread keeps this bounded."""
    found: list[str] = []
    seen: list[str] = []
    ready = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = _READY.match(line.strip())
            if match and not found:
                found.append(match["site"])
                ready.set()
            elif not found:
                seen.append(line)
        ready.set()  # EOF: the lab exited

    # The thread keeps draining the pipe after "ready" so the lab never blocks on a full pipe.
    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        raise RuntimeError(f"lab not ready within {timeout:g} s: {''.join(seen)[-2000:]}")
    return found[0]


def site_variant(site: Path, name: str, *, rollout: dict[str, Any] | None = None, **probe: Any) -> Path:
    """A copy of the lab's site file beside it with ``rollout`` and probe keys changed.

    ``fallback=None`` (a probe key here for brevity) removes the fallback ladder instead.
    """
    yaml = YAML()
    data = yaml.load(site.read_text())
    if rollout:
        data["rollout"].update(rollout)
    remove_fallback = "fallback" in probe and probe.pop("fallback") is None
    for device in data["devices"]:
        for server in device["mail_servers"]:
            server["probe"].update(probe)
            if remove_fallback:
                server.pop("fallback", None)
    out = site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def load_average() -> float:
    """The 1-minute load average: other work on the machine skews every wall time."""
    return float(Path("/proc/loadavg").read_text().split()[0])


# All waits of one benchmark script together never exceed this, so a script stays bounded.
_QUIET_BUDGET_S = [90.0]


def wait_quiet(max_load: float, timeout: float) -> float:
    """Wait (bounded) until the 1-minute load average drops below ``max_load``; return it.

    Other sessions share this machine; a benchmark started under their load measures them.
    After ``timeout`` (or when the script's 90 s waiting budget is spent) the run goes ahead
    and the load it ran under is reported with it.
    """
    start = time.monotonic()
    deadline = start + min(timeout, _QUIET_BUDGET_S[0])
    load = load_average()
    while load >= max_load and time.monotonic() < deadline:
        time.sleep(2)
        load = load_average()
    _QUIET_BUDGET_S[0] -= time.monotonic() - start
    return load


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_mb(kib: float) -> str:
    return f"{kib / 1024:.0f} MB"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line describing where the numbers were taken (cores, RAM, CPU, Python, kernel)."""
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.partition(":")[2].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, Linux {platform.release()}"
    )


def write_section(results: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in ``results``.

    The markers are appended when missing, so a script's section can be regenerated without
    touching the hand-written analysis around it.
    """
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(text)


# -- profiling (py-spy) ------------------------------------------------------------------


def py_spy() -> str:
    """The py-spy binary (``.venv/bin/pip install py-spy``), or an error saying how to get it."""
    candidate = Path(sys.executable).parent / "py-spy"
    found = str(candidate) if candidate.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def profiled(argv: Sequence[str], raw: Path, rate: int = 250) -> list[str]:
    """``argv`` run under ``py-spy record`` writing collapsed stacks to ``raw``."""
    return [py_spy(), "record", "-r", str(rate), "-f", "raw", "-o", str(raw), "--", *argv]


@contextmanager
def sampling(pid: int, raw: Path, rate: int = 250) -> Iterator[None]:
    """Sample a running process (the lab) with py-spy while the block runs."""
    argv = [py_spy(), "record", "-r", str(rate), "-f", "raw", "-o", str(raw), "--pid", str(pid)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # py-spy attaches before the measured work starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(10)


def hot_spots(raw: Path, *, top: int = 12, prefix: str = "fortiauto/") -> str:
    """Top frames of a py-spy collapsed-stack file: own samples, then inclusive ``prefix`` frames."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        frames = stack.split(";")
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            if prefix in frame:
                inclusive[frame] += samples
    lines = [f"{raw.name}: {total} samples", "  own time:"]
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines.append(f"  inclusive, {prefix} frames:")
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)
