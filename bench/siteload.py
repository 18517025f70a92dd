"""Site-file loading speed (issue 18): ``load_site`` and ``fortiauto validate`` on 100 and 1,000 devices.

Generates a fleet site (one mail server per device, every device on the same certificate, key
and CA bundle, as a real fleet of branch firewalls would be), then measures

- ``load_site`` in this process (parse, references, defaults, models, certificate checks),
  median of several runs, and where its time goes (cProfile, top entries);
- ``fortiauto validate SITE`` as a user runs it: a fresh process, wall time and its own CPU.

and how long hostile files take to be refused (alias bomb, a 5 MB site file, ``/dev/zero`` and
a FIFO as a token file): each must be refused in well under a second.

Run: ``.venv/bin/python bench/siteload.py [--devices 100 1000] [--write-results]``.
Nothing here is collected by pytest; the numbers go into ``bench/RESULTS.md`` (section siteload).
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
sys.path.insert(0, str(ROOT / "bench"))

from benchkit import load_average, machine, write_section  # noqa: E402

from fortiauto.errors import SiteInvalid  # noqa: E402
from fortiauto.site.loader import load_site  # noqa: E402
from fortiauto.site.yamldata import parse_yaml  # noqa: E402

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


def in_process(path: Path, repeat: int) -> tuple[float, float, float]:
    """Median wall, median CPU of ``load_site``, and the CPU of parsing alone (best of ``repeat``)."""
    walls, cpus, parses = [], [], []
    text = path.read_text()
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        site = load_site(path, environ=ENV)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        cpu = time.process_time()
        parse_yaml(text, file=str(path))
        parses.append(time.process_time() - cpu)
    assert site.devices
    return statistics.median(walls), statistics.median(cpus), min(parses)


def hostile(folder: Path) -> list[tuple[str, float, str]]:
    """How long each hostile file takes to be refused, and the first line of the refusal."""
    base = write_site(folder, 1).read_text()
    bomb = ["bomb:", '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    bomb += [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    (folder / "bomb.yml").write_text(base.replace("version: 1\n", "version: 1\n" + "\n".join(bomb) + "\n"))
    with (folder / "huge.yml").open("wb") as handle:
        handle.write(base.encode())
        handle.write(b"#" * (5 * 1024 * 1024))
    (folder / "dense.yml").write_text("version: 1\nx: [" + "1," * 1_900_000 + "1]\n")
    (folder / "zero.yml").write_text(base.replace("${env:FGT_TOKEN}", "${file:/dev/zero}"))
    fifo = folder / "token.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    (folder / "fifo.yml").write_text(base.replace("${env:FGT_TOKEN}", f"${{file:{fifo}}}"))
    rows = []
    for label, name in (
        ("alias bomb (9 levels x 9 aliases)", "bomb.yml"),
        ("5 MB site file", "huge.yml"),
        ("3.8 MB site file of 1,1,1,... (1.9 million values)", "dense.yml"),
        ("token ${file:/dev/zero}", "zero.yml"),
        ("token ${file:FIFO} nobody writes", "fifo.yml"),
    ):
        start = time.perf_counter()
        try:
            load_site(folder / name, environ=ENV)
            message = "loaded (!)"
        except SiteInvalid as exc:
            message = str(exc.problems[0]).replace(str(folder) + "/", "")
        rows.append((label, time.perf_counter() - start, message))
    return rows


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
    parser.add_argument("--write-results", action="store_true", help="rewrite the siteload section")
    args = parser.parse_args()
    rows, profiles = [], []
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.devices:
            path = write_site(Path(tmp), count)
            wall, cpu, parse = in_process(path, args.repeat)
            cli_wall, cli_cpu = cli_validate(path, args.repeat)
            rows.append((count, path.stat().st_size, wall, cpu, parse, cli_wall, cli_cpu))
            if args.profile:
                profiles.append((count, profile_top(path, args.profile)))
        refused = hostile(Path(tmp))
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}; "
        f"1-minute load {load_before} before (other sessions share the 2 cores).",
        "",
        "| devices | file | `load_site` wall | `load_site` CPU | of it: YAML parse CPU "
        "| `fortiauto validate` wall | `validate` CPU (process) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {count} | {size / 1024:.0f} KB | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms "
        f"| {parse * 1000:.0f} ms | {cli_wall * 1000:.0f} ms | {cli_cpu * 1000:.0f} ms |"
        for count, size, wall, cpu, parse, cli_wall, cli_cpu in rows
    ]
    lines += ["", "| hostile input | refused after | first line |", "|---|---|---|"]
    lines += [f"| {label} | {seconds * 1000:.0f} ms | `{message}` |" for label, seconds, message in refused]
    for count, top in profiles:
        lines += ["", f"cProfile of `load_site`, {count} devices (tottime):", "", "```", top, "```"]
    body = "\n".join(lines)
    print(body)
    if args.write_results:
        write_section(ROOT / "bench" / "RESULTS.md", "siteload", body)


if __name__ == "__main__":
    main()
