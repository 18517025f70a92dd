"""Site-file loading speed (issue 18): ``load_site`` and ``fortiauto validate`` on 100 and 1,000 devices.

Generates a fleet site (one mail server per device, every device on the same certificate, key
and CA bundle, as a real fleet of branch firewalls would be), then measures

- ``load_site`` in this process (parse, references, defaults, models, certificate checks),
  median of several runs, and where its time goes (cProfile, top entries);
- ``fortiauto validate SITE`` as a user runs it: a fresh process, wall time and its own CPU.

Run: ``.venv/bin/python bench/siteload.py [--devices 100 1000] [--write-results]``.
Nothing here is collected by pytest; the numbers go into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fortiauto.site.loader import load_site  # noqa: E402

CERTS = ROOT / "tests" / "fixtures" / "certs"
FORTIAUTO = str(Path(sys.executable).parent / "fortiauto")
ENV = {"FGT_TOKEN": "bench-token-0123456789"}

DEVICE = """  - name: fgt-{i:04d}
    url: https://10.{a}.{b}.1:8443
    mail_servers:
      - name: mx1
        policy: {{vip: vip-mx1}}
        certificate: {{cert: certs/mx1.pem, key: certs/mx1.key}}
        emailfilter_profile: fa-mail-inbound
        ssl_profile: fa-protect-mx1
        protocol_options: fa-smtp-inbound
        probe:
          host: 10.{a}.{b}.25
          server_name: mx1.example.test
          timeout: 5
          retries: 2
          retry_delay: 0.5
        fallback: [certificate-inspection]
"""


def write_site(folder: Path, devices: int) -> Path:
    (folder / "certs").mkdir(parents=True, exist_ok=True)
    for name in ("mx1.pem", "mx1.key", "ca.pem"):
        shutil.copy(CERTS / name, folder / "certs" / name)
    head = "version: 1\ndefaults:\n  token: ${env:FGT_TOKEN}\n  verify_tls: certs/ca.pem\n  timeout: 15\n"
    body = "".join(DEVICE.format(i=i, a=i // 250, b=i % 250) for i in range(devices))
    path = folder / f"site-{devices}.yml"
    path.write_text(head + "rollout: {canary: 1, batch_size: 50, concurrency: 20}\ndevices:\n" + body)
    return path


def in_process(path: Path, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        site = load_site(path, environ=ENV)
        times.append(time.perf_counter() - start)
    assert site.devices
    return statistics.median(times), min(times)


def profile_top(path: Path, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    load_site(path, environ=ENV)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start:])


def cli_validate(path: Path, repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    env = os.environ | ENV
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen([FORTIAUTO, "validate", str(path)], env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        assert os.waitstatus_to_exitcode(status) == 0, "validate failed"
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, help="print the top N cProfile entries")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.devices:
            path = write_site(Path(tmp), count)
            median, best = in_process(path, args.repeat)
            wall, cpu = cli_validate(path, max(1, args.repeat // 2))
            size = path.stat().st_size
            rows.append((count, size, median, best, wall, cpu))
            if args.profile:
                print(f"--- cProfile, load_site on {count} devices (tottime)")
                print(profile_top(path, args.profile))
    print("| devices | file size | load_site median | load_site best | `validate` wall | `validate` CPU |")
    print("|---|---|---|---|---|---|")
    for count, size, median, best, wall, cpu in rows:
        print(
            f"| {count} | {size / 1024:.0f} KB | {median * 1000:.0f} ms | {best * 1000:.0f} ms "
            f"| {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
