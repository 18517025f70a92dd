"""Benchmark the mock FortiGate lab itself: start time, resident memory, GET throughput.

Issue 3's targets: 200 devices start in under 10 s and stay under 1 GB resident. The lab
runs as ``fortiauto lab up`` in its own process (start time = spawn until its ``lab ready:``
line, so interpreter start-up and imports are included). The read load is a bounded number
of REST GETs spread over every device of the largest lab, from one httpx async client with
keep-alive connections; on a 2-core machine that client competes with the lab for CPU, so
the lab's own CPU time per request is reported too (its capacity on one core is
1000 / that).

    .venv/bin/python bench/lab.py                       # 1, 50, 200 devices; 6000 GETs
    .venv/bin/python bench/lab.py --write-results       # also update bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from benchkit import (
    BENCH_DIR,
    LabProcess,
    fmt_mb,
    lab_process,
    machine,
    markdown_table,
    median,
    wait_quiet,
    write_section,
)

# A read mix like a fortiauto plan or an Ansible fact run: tables, one filtered lookup, status.
_PATHS = (
    "/api/v2/cmdb/firewall/policy?vdom=root",
    "/api/v2/cmdb/firewall/vip?vdom=root&filter=name==vip-mx1",
    "/api/v2/cmdb/emailfilter/profile?vdom=root",
    "/api/v2/cmdb/firewall/ssl-ssh-profile?vdom=root&with_meta=1",
    "/api/v2/cmdb/firewall/profile-protocol-options?vdom=root",
    "/api/v2/monitor/system/status",
)
START_TARGET_S = 10.0
RSS_TARGET_KB = 1024 * 1024


@dataclass(frozen=True)
class StartRow:
    devices: int
    start_s: list[float]
    rss_kb: int
    peak_kb: int
    loads: list[float]


@dataclass(frozen=True)
class LoadRow:
    devices: int
    requests: int
    concurrency: int
    errors: int
    wall_s: float
    latencies_ms: list[float]
    lab_cpu_s: float
    peak_kb_after: int
    load: float

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s

    @property
    def lab_cpu_ms_per_request(self) -> float:
        return self.lab_cpu_s * 1000 / self.requests


def measure_start(devices: int, repeat: int, quiet: float) -> StartRow:
    """Start the lab ``repeat`` times; memory is from the last start (it is the same each time)."""
    times: list[float] = []
    loads: list[float] = []
    rss = peak = 0
    for _ in range(repeat):
        loads.append(wait_quiet(quiet, timeout=60))
        with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp, lab_process(devices, Path(tmp)) as lab:
            times.append(lab.start_s)
            rss, peak = lab.rss_kb(), lab.peak_rss_kb()
    return StartRow(devices, times, rss, peak, loads)


async def _load(lab: LabProcess, total: int, concurrency: int) -> tuple[float, list[float], int]:
    devices = lab.info["devices"]
    # Round-robin over devices and paths so every device's app and store are exercised.
    jobs = itertools.islice(itertools.cycle(itertools.product(devices, _PATHS)), total)
    queue: asyncio.Queue[tuple[dict[str, Any], str]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            device, path = queue.get_nowait()
            start = time.perf_counter()
            response = await client.get(
                device["url"] + path, headers={"Authorization": f"Bearer {device['token']}"}
            )
            latencies.append((time.perf_counter() - start) * 1000)
            errors += response.status_code != 200

    async with httpx.AsyncClient(verify=lab.ssl_context(), limits=limits, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return wall, latencies, errors


def measure_load(lab: LabProcess, devices: int, total: int, concurrency: int, quiet: float) -> LoadRow:
    load = wait_quiet(quiet, timeout=60)
    # Warm up: open the keep-alive connections (one TLS handshake per device) outside the window.
    asyncio.run(_load(lab, len(lab.info["devices"]), concurrency))
    cpu_before = lab.cpu_s()
    wall, latencies, errors = asyncio.run(_load(lab, total, concurrency))
    lab_cpu = lab.cpu_s() - cpu_before
    return LoadRow(devices, total, concurrency, errors, wall, latencies, lab_cpu, lab.peak_rss_kb(), load)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def render(starts: list[StartRow], load: LoadRow, command: str) -> str:
    start_rows = []
    for row in starts:
        ok = median(row.start_s) < START_TARGET_S and row.peak_kb < RSS_TARGET_KB
        start_rows.append(
            (
                row.devices,
                f"{median(row.start_s):.2f} s",
                f"{min(row.start_s):.2f}-{max(row.start_s):.2f} s",
                fmt_mb(row.rss_kb),
                fmt_mb(row.peak_kb),
                " / ".join(f"{load:.1f}" for load in row.loads),
                "-" if row.devices != 200 else ("met" if ok else "**missed**"),
            )
        )
    lat = load.latencies_ms
    return "\n\n".join(
        [
            "### Lab: start time and memory (`bench/lab.py`)",
            f"Machine: {machine()}. Command: `{command}`.",
            markdown_table(
                (
                    "devices",
                    "start (median)",
                    "start (range)",
                    "RSS when ready",
                    "peak RSS",
                    "load at start",
                    "target (200: <10 s, <1 GB)",
                ),
                start_rows,
            ),
            f"### Lab: GET-heavy load on the {load.devices}-device lab",
            markdown_table(
                (
                    "requests",
                    "client concurrency",
                    "errors",
                    "wall",
                    "requests/s",
                    "latency p50 / p95 / p99",
                    "lab CPU per request",
                    "lab CPU busy",
                    "lab peak RSS after load",
                    "load at start",
                ),
                [
                    (
                        load.requests,
                        load.concurrency,
                        load.errors,
                        f"{load.wall_s:.2f} s",
                        f"{load.rps:.0f}",
                        f"{_pct(lat, 50):.1f} / {_pct(lat, 95):.1f} / {_pct(lat, 99):.1f} ms",
                        f"{load.lab_cpu_ms_per_request:.2f} ms",
                        f"{load.lab_cpu_s / load.wall_s:.0%}",
                        fmt_mb(load.peak_kb_after),
                        f"{load.load:.1f}",
                    )
                ],
            ),
            f"Mix: round-robin over all {load.devices} devices of "
            + ", ".join(f"`{p.split('?')[0].removeprefix('/api/v2/')}`" for p in _PATHS)
            + " (Bearer token, keep-alive; one warm-up pass opens the connections first). "
            "The load generator shares the 2 cores with the lab; the lab's single-core capacity is "
            f"about {1000 / load.lab_cpu_ms_per_request:.0f} requests/s (1000 / lab CPU per request).",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--repeat", type=int, default=3, help="starts per fleet size (default 3)")
    parser.add_argument("--requests", type=int, default=6000, help="GETs in the load (default 6000)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=1.5,
        help="wait up to 60 s before each measurement for the 1-min load average to drop below this",
    )
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    starts = []
    for devices in args.devices:
        row = measure_start(devices, args.repeat, args.quiet_load)
        print(f"{devices} devices: start {median(row.start_s):.2f} s, peak {fmt_mb(row.peak_kb)}", flush=True)
        starts.append(row)
    largest = max(args.devices)
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp, lab_process(largest, Path(tmp)) as lab:
        load = measure_load(lab, largest, args.requests, args.concurrency, args.quiet_load)
    print(f"load: {load.rps:.0f} requests/s, {load.errors} errors", flush=True)

    command = (
        f".venv/bin/python bench/lab.py --devices {' '.join(map(str, args.devices))} "
        f"--repeat {args.repeat} --requests {args.requests} --concurrency {args.concurrency}"
    )
    text = render(starts, load, command)
    print(text)
    if args.write_results:
        write_section(BENCH_DIR / "RESULTS.md", "bench/lab.py", text)
    return 0 if load.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
