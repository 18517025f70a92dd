"""fortiauto against the fortinet.fortios Ansible collection: the same change on the same 20-device lab.

Issue 18's goal: fortiauto (with its probes) at least 60x faster than the fortinet.fortios
collection making the same change. Both run against a fresh ``fortiauto lab up --devices 20``
(the same seed state every time), one after the other:

* **fortinet.fortios**, first run and re-run: a playbook with the collection's modules over its
  httpapi connection plugin (``ansible_connection: ansible.netcommon.httpapi``,
  ``ansible_network_os: fortinet.fortios.fortios``, the API token as the modules'
  ``access_token``, TLS verified against the lab's CA through ``ansible_httpapi_ca_path``),
  ``--forks`` = the number of devices. Tasks per host: look the certificate up
  (``fortios_configuration_fact``, selector ``vpn.certificate_local`` with a name filter),
  import it when missing (``fortios_monitor``, selector ``import.vpn-certificate.local``: the
  collection's way to send ``monitor/vpn-certificate/local/import``, see that module's
  DOCUMENTATION / ansible-doc, or docs.ansible.com/ansible/latest/collections/fortinet/fortios/
  fortios_monitor_module.html), then ``fortios_firewall_profile_protocol_options``,
  ``fortios_firewall_ssl_ssh_profile``, ``fortios_emailfilter_profile`` and
  ``fortios_firewall_policy`` with ``state: present``. **No probe, no read-back, no journal,
  no rollback**: that playbook only writes. The values are fortiauto's own: the objects and
  fields of ``fortiauto plan SITE --output json`` for one lab device (plus ``utm-status enable``,
  part of fortiauto's desired policy that the seed already has), so both paths send the same
  configuration. After the first run every device is read back through the REST API and each
  planned field asserted, and ``fortiauto plan`` must find nothing left to change; otherwise
  the timing would mean nothing.
* **fortiauto**, first apply and no-op: ``fortiauto apply SITE --yes --output json`` with the
  lab's site and a rollout of canary 1, ``batch_size`` and ``concurrency`` = the devices (the
  same in flight as Ansible's forks): baseline probe, plan, journaled writes, read-back, probe,
  delivery and email filter log check; every device must end ``changed``, then ``unchanged``.

Wall time is the command's own; CPU is the user + sys time of its **whole process tree**: each
command runs under a tiny wrapper that is the tree's child subreaper (``PR_SET_CHILD_SUBREAPER``),
so Ansible's daemonised ``ansible-connection`` processes (one persistent connection per host)
are reaped by it too, and ``os.wait4`` on the wrapper returns the tree's rusage (the wrapper's
own start-up is subtracted). The lab's CPU is not in either figure (it is shown separately).

The collection comes from PyPI, not Galaxy (which this machine cannot reach): the community
``ansible`` bundle ``ansible==11.13.0`` (the newest 11.x; it needs ansible-core 2.18 and Python
>= 3.11, while ``ansible`` 12 needs Python 3.12) carries fortinet.fortios 2.4.2 with
ansible.netcommon 7.2.0 (the httpapi connection) and ansible.utils 5.1.2. The script downloads
that wheel with ``pip download --no-deps`` into a cache outside the repository
(``$FORTIAUTO_BENCH_CACHE``, default ``~/.cache/fortiauto-bench``) and extracts only those three
collections (the wheel is a zip); nothing is installed and ``ansible`` is not a dependency of
the project. A second run reuses the cache. When the download fails the script says so and
exits 0 without measuring (``make bench`` goes on). The playbooks run with the project's
ansible-core (``.venv/bin/ansible-playbook``) unless ``--ansible-core 2.18`` asks for a
separate venv with that ansible-core in the same cache.

    .venv/bin/python bench/fortios_collection.py                      # 20 devices, 3 rounds, print
    .venv/bin/python bench/fortios_collection.py --write-results      # and update bench/RESULTS.md
    .venv/bin/python bench/fortios_collection.py --repeat 1 --ansible-core 2.18
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from benchkit import (
    BENCH_DIR,
    FORTIAUTO,
    LabProcess,
    lab_process,
    machine,
    markdown_table,
    median,
    site_variant,
    wait_quiet,
    write_section,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from ruamel.yaml import YAML

BUNDLE = "ansible==11.13.0"  # PyPI; the newest release that installs on Python 3.11
COLLECTIONS = ("fortinet/fortios", "ansible/netcommon", "ansible/utils")
RUN_TIMEOUT_S = 900
GOAL_RATIO = 60.0
SECTION = "bench/fortios_collection.py"

# Fields FortiOS writes as one space-separated string that the collection takes as a list
# (its module schemas: ``multiple_values: True``), with the element type the module expects.
MULTI_VALUE: dict[tuple[str, str], type] = {
    ("emailfilter/profile", "options"): str,
    ("firewall/profile-protocol-options", "smtp.ports"): int,
}
# fortiauto's desired policy (fortiauto/desired.py) also wants utm-status enable; the seed
# already has it, so the plan does not list it. The playbook states it, as its author would.
POLICY_EXTRA = {"utm-status": "enable"}


# -- getting the collection ----------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("FORTIAUTO_BENCH_CACHE", Path.home() / ".cache" / "fortiauto-bench"))


def collections_path(cache: Path) -> Path | None:
    """``cache/collections`` with the three collections, downloaded once; None when unavailable."""
    target = cache / "collections"
    marker = target / ".from"
    if marker.exists() and marker.read_text() == BUNDLE:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheel = _download(cache)
    if wheel is None:
        return None
    partial = Path(tempfile.mkdtemp(prefix="collections-", dir=cache))
    with zipfile.ZipFile(wheel) as archive:
        prefixes = tuple(f"ansible_collections/{name}/" for name in COLLECTIONS)
        members = [name for name in archive.namelist() if name.startswith(prefixes)]
        if not members:
            print(f"fortios_collection: {wheel.name} holds no fortinet.fortios collection; skipped")
            return None
        archive.extractall(partial, members)
    (partial / ".from").write_text(BUNDLE)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # complete or absent: an interrupted extraction is redone
    return target


def _download(cache: Path) -> Path | None:
    version = BUNDLE.partition("==")[2]
    found = sorted(cache.glob(f"ansible-{version}-*.whl"))
    if found:
        return found[0]
    argv = [sys.executable, "-m", "pip", "download", BUNDLE, "--no-deps", "--only-binary", ":all:"]
    done = subprocess.run([*argv, "-d", str(cache)], capture_output=True, text=True, timeout=600, check=False)
    found = sorted(cache.glob(f"ansible-{version}-*.whl"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"fortios_collection: `pip download {BUNDLE}` failed ({last}); comparison skipped")
        return None
    return found[0]


def ansible_playbook(cache: Path, core: str | None) -> Path | None:
    """The ansible-playbook to run: the project's, or one from a cached venv with ``core``."""
    if core is None:
        return Path(sys.executable).parent / "ansible-playbook"
    venv = cache / f"venv-core-{core}"
    binary = venv / "bin" / "ansible-playbook"
    if binary.exists():
        return binary
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    spec = f"ansible-core=={core}.*"
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", spec],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        print(f"fortios_collection: `pip install {spec}` failed: {done.stderr.strip()[-300:]}")
        return None
    return binary


# -- measuring a process tree ----------------------------------------------------------------

# Runs argv as its child and stays the subreaper of everything below it, so daemonised
# grandchildren (ansible-connection) are re-parented to it and their CPU lands in its rusage.
_WRAPPER = r"""
import ctypes, json, os, resource, subprocess, sys, time
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
code = subprocess.call(argv)
wall = time.perf_counter() - start
orphans = 0
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
    orphans += 1
own = resource.getrusage(resource.RUSAGE_SELF)
with open(report, "w") as out:
    json.dump({"code": code, "wall": wall, "drain": time.perf_counter() - start - wall,
               "orphans": orphans, "own": own.ru_utime + own.ru_stime}, out)
"""


@dataclass(frozen=True)
class Tree:
    """One command: its wall time, its process tree's CPU, and what it printed."""

    returncode: int
    wall_s: float
    cpu_s: float
    orphans: int  # descendants that outlived their parent (reaped by the wrapper)
    drain_s: float  # how long they ran on after the command itself exited
    stdout: str
    stderr: str


def run_tree(argv: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float = RUN_TIMEOUT_S) -> Tree:
    with tempfile.TemporaryDirectory(prefix="tree-") as tmp:
        report = Path(tmp) / "report.json"
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-c", _WRAPPER, str(report), *argv],
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
            timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, 9))
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if not report.exists():
            raise RuntimeError(f"{argv[0]} killed or wrapper failed: {err.read_text()[-2000:]}")
        data = json.loads(report.read_text())
        return Tree(
            returncode=int(data["code"]),
            wall_s=float(data["wall"]),
            cpu_s=usage.ru_utime + usage.ru_stime - float(data["own"]),
            orphans=int(data["orphans"]),
            drain_s=float(data["drain"]),
            stdout=out.read_text(errors="replace"),
            stderr=err.read_text(errors="replace"),
        )


def loadavg() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (``/proc/stat``: all but idle, iowait, guest)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def runnable_now(samples: int = 10, interval: float = 0.1) -> float:
    """Tasks running or waiting for a core right now (``procs_running``), this sampler excluded.

    The 1-minute load average lags by minutes: after a 20-fork Ansible run it still reads 15-20
    while the cores are idle again, so the instantaneous count says what a run started into.
    """
    counts = []
    for _ in range(samples):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running "):
                counts.append(int(line.split()[1]) - 1)
        time.sleep(interval)
    return sum(counts) / len(counts)


@dataclass(frozen=True)
class Sample:
    """One measured run of one path on one fresh lab."""

    path: str  # "fortios-first", "fortios-rerun", "fortiauto-apply", "fortiauto-noop"
    tree: Tree
    load_before: str
    load_after: str
    runnable: float  # runnable tasks at the start (mean of 1 s of samples)
    others_cpu_s: float  # CPU the rest of the machine used during the run (not this tree, not the lab)
    lab_cpu_s: float
    requests: float  # mean requests per device the lab logged during the run
    writes: float
    outcome: str


# -- the desired values, from fortiauto's plan ------------------------------------------------


@dataclass(frozen=True)
class Change:
    path: str  # FortiOS CMDB path, e.g. "firewall/ssl-ssh-profile"
    mkey: str
    action: str  # import / create / update
    vdom: str
    after: dict[str, Any]  # FortiOS field names and values, as fortiauto writes them


def planned_changes(site: Path, device: str) -> list[Change]:
    """``fortiauto plan`` for one device: what both paths must write."""
    argv = [FORTIAUTO, "plan", str(site), "--output", "json", "--limit", device]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode not in (0, 1):  # 1: something to change
        raise RuntimeError(f"fortiauto plan exited {done.returncode}: {done.stderr[-2000:]}")
    plan = json.loads(done.stdout)["devices"][0]
    changes = [
        Change(
            c["path"], str(c["mkey"]), c["action"], c["vdom"], {k: v["after"] for k, v in c["diff"].items()}
        )
        for c in plan["changes"]
    ]
    if not changes:
        raise RuntimeError(f"fortiauto plan finds nothing to change on {device}: not a fresh lab")
    return changes


def _module_value(path: str, dotted: str, value: Any) -> Any:
    kind = MULTI_VALUE.get((path, dotted))
    if kind is not None and isinstance(value, str):
        return [kind(item) for item in value.split()]
    if isinstance(value, dict):
        return {
            key.replace("-", "_"): _module_value(path, f"{dotted}.{key}", item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_module_value(path, dotted, item) for item in value]
    return value


def module_args(change: Change) -> dict[str, Any]:
    """The collection's module arguments for one CMDB object (underscores, lists for multi-values)."""
    fields = dict(change.after)
    if change.path == "firewall/policy":
        fields = {"policyid": int(change.mkey), **fields, **POLICY_EXTRA}
    return {key.replace("-", "_"): _module_value(change.path, key, value) for key, value in fields.items()}


def module_name(path: str) -> str:
    return "fortios_" + re.sub(r"[/.-]", "_", path)


def playbook(changes: Sequence[Change], cert: Path, key: Path) -> list[dict[str, Any]]:
    """The fortinet.fortios playbook making ``changes`` (the certificate first, the policy last)."""
    tasks: list[dict[str, Any]] = []
    for change in changes:
        if change.path == "vpn.certificate/local":
            tasks += _certificate_tasks(change, cert, key)
            continue
        module = module_name(change.path)
        tasks.append(
            {
                "name": f"{change.path} {change.mkey}",
                f"fortinet.fortios.{module}": {
                    "vdom": change.vdom,
                    "state": "present",
                    module.removeprefix("fortios_"): module_args(change),
                },
            }
        )
    return [
        {
            "name": "fortinet.fortios: the change fortiauto makes (no probe, no read-back, no rollback)",
            "hosts": "fortigates",
            "gather_facts": False,
            "module_defaults": {
                "group/fortinet.fortios.fortios": {"access_token": "{{ fortios_access_token }}"}
            },
            "tasks": tasks,
        }
    ]


def _certificate_tasks(change: Change, cert: Path, key: Path) -> list[dict[str, Any]]:
    # fortios_monitor's import is not idempotent (a second import of the name fails), so the
    # playbook looks the certificate up first, as a re-runnable playbook has to.
    return [
        {
            "name": f"certificate {change.mkey} already there?",
            "fortinet.fortios.fortios_configuration_fact": {
                "vdom": change.vdom,
                "selector": "vpn.certificate_local",
                "filters": [f"name=={change.mkey}"],
            },
            "register": "existing_certificate",
        },
        {
            "name": f"import certificate {change.mkey}",
            "when": "existing_certificate.meta.results | length == 0",
            "no_log": True,
            "fortinet.fortios.fortios_monitor": {
                "vdom": change.vdom,
                "selector": "import.vpn-certificate.local",
                "params": {
                    "type": "regular",
                    "certname": change.mkey,
                    "scope": "vdom",
                    "file_content": f"{{{{ lookup('file', '{cert}') | b64encode }}}}",
                    "key_file_content": f"{{{{ lookup('file', '{key}') | b64encode }}}}",
                },
            },
            "register": "imported_certificate",
            "changed_when": "imported_certificate.meta.status | default('') == 'success'",
        },
    ]


def inventory(lab: LabProcess) -> dict[str, Any]:
    hosts = {}
    for device in lab.info["devices"]:
        url = urllib.parse.urlsplit(device["url"])
        hosts[device["name"]] = {
            "ansible_host": url.hostname,
            # ansible_port keys the persistent connection (hosts share 127.0.0.1);
            # ansible_httpapi_port is the one the httpapi plugin connects to.
            "ansible_port": url.port,
            "ansible_httpapi_port": url.port,
            "fortios_access_token": device["token"],
        }
    common = {
        "ansible_connection": "ansible.netcommon.httpapi",
        "ansible_network_os": "fortinet.fortios.fortios",
        "ansible_httpapi_use_ssl": True,
        "ansible_httpapi_validate_certs": True,
        "ansible_httpapi_ca_path": lab.info["ca"],
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }
    return {"all": {"children": {"fortigates": {"hosts": hosts, "vars": common}}}}


# -- verifying that the collection really changed the lab -----------------------------------


def _same(path: str, dotted: str, want: Any, have: Any) -> bool:
    if (path, dotted) in MULTI_VALUE:
        return _items(want) == _items(have)
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            _same(path, f"{dotted}.{k}", v, have.get(k)) for k, v in want.items()
        )
    if isinstance(want, list):
        names = {item["name"] for item in want}
        return isinstance(have, list) and names == {item.get("name") for item in have}
    return str(want) == str(have)


def _items(value: Any) -> set[str]:
    # FortiOS answers a multi-value field as one space-separated string or as a list.
    return {str(item) for item in value} if isinstance(value, list) else set(str(value).split())


def _fingerprint(pem: str) -> str:
    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


def verify_lab(lab: LabProcess, changes: Sequence[Change]) -> list[str]:
    """Read every planned object back from every device; the list of mismatches (empty: all landed)."""
    problems = []
    with httpx.Client(verify=lab.ssl_context(), timeout=30) as client:
        for device in lab.info["devices"]:
            headers = {"Authorization": f"Bearer {device['token']}"}
            for change in changes:
                url = f"{device['url']}/api/v2/cmdb/{change.path}/{urllib.parse.quote(change.mkey, safe='')}"
                response = client.get(url, params={"vdom": change.vdom}, headers=headers)
                if response.status_code != 200:
                    problems.append(
                        f"{device['name']} {change.path}/{change.mkey}: HTTP {response.status_code}"
                    )
                    continue
                have = response.json()["results"][0]
                if change.path == "vpn.certificate/local":
                    wanted = {"sha256": change.after["sha256"]}
                    got = {"sha256": _fingerprint(have.get("certificate") or "")}
                else:
                    wanted = {**change.after, **(POLICY_EXTRA if change.path == "firewall/policy" else {})}
                    got = have
                for name, value in wanted.items():
                    if not _same(change.path, name, value, got.get(name)):
                        problems.append(
                            f"{device['name']} {change.path}/{change.mkey}: {name} is "
                            f"{got.get(name)!r}, wanted {value!r}"
                        )
    return problems


def fortiauto_finds_compliant(site: Path) -> list[str]:
    """``fortiauto plan`` after the collection's run: devices it would still change."""
    done = subprocess.run(
        [FORTIAUTO, "plan", str(site), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result = json.loads(done.stdout)
    return [
        f"{d['name']}: {', '.join(c['path'] + ' ' + c['action'] for c in d['changes'])}"
        for d in result["devices"]
        if d["changes"]
    ]


# -- the runs -------------------------------------------------------------------------------

_RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)"
)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    hosts = {}
    for line in stdout.splitlines():
        match = _RECAP.match(line)
        if match:
            hosts[match["host"]] = {k: int(v) for k, v in match.groupdict().items() if k != "host"}
    return hosts


def _measured(
    lab: LabProcess, path: str, argv: Sequence[str], env: dict[str, str], cwd: Path, quiet: float
) -> tuple[Sample, Tree]:
    before_requests = lab.request_counts()
    wait_quiet(quiet, timeout=60)
    runnable = runnable_now()
    load_before, lab_cpu, busy = loadavg(), lab.cpu_s(), machine_busy_s()
    tree = run_tree(argv, env=env, cwd=cwd)
    lab_cpu, busy, load_after = lab.cpu_s() - lab_cpu, machine_busy_s() - busy, loadavg()
    others = max(0.0, busy - tree.cpu_s - lab_cpu)
    after_requests = lab.request_counts()
    count = len(after_requests)
    requests = sum(after_requests[n][0] - before_requests[n][0] for n in after_requests) / count
    writes = sum(after_requests[n][1] - before_requests[n][1] for n in after_requests) / count
    sample = Sample(path, tree, load_before, load_after, runnable, others, lab_cpu, requests, writes, "")
    return sample, tree


def _with_outcome(sample: Sample, outcome: str) -> Sample:
    return Sample(**{**sample.__dict__, "outcome": outcome})


def ansible_round(
    devices: int, work: Path, collections: Path, binary: Path, quiet: float
) -> tuple[list[Sample], list[Change]]:
    """fortinet.fortios first run and re-run on a fresh lab, verified by reading the lab back."""
    work.mkdir(parents=True, exist_ok=True)
    with lab_process(devices, work / "lab") as lab:
        changes = planned_changes(lab.site_path, lab.info["devices"][0]["name"])
        certs = lab.state_dir / "certs"
        yaml = YAML()
        with (work / "playbook.yml").open("w") as handle:
            yaml.dump(playbook(changes, certs / "mx1.pem", certs / "mx1.key"), handle)
        (work / "hosts.json").write_text(json.dumps(inventory(lab), indent=1))
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_HOME": str(work / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_CONFIG": str(work / "ansible.cfg"),  # not the repository's
        }
        (work / "ansible.cfg").write_text("[defaults]\n")
        argv = [str(binary), "-i", "hosts.json", "playbook.yml", "--forks", str(devices)]
        samples = []
        for path in ("fortios-first", "fortios-rerun"):
            sample, tree = _measured(lab, path, argv, env, work, quiet)
            hosts = recap(tree.stdout)
            failed = sum(h["failed"] + h["unreachable"] for h in hosts.values())
            if tree.returncode != 0 or len(hosts) != devices or failed:
                raise RuntimeError(f"{path}: ansible-playbook rc {tree.returncode}: {tree.stdout[-3000:]}")
            problems = verify_lab(lab, changes)
            if problems:
                raise RuntimeError(f"{path}: the lab does not hold the change: {problems[:5]}")
            changed = sum(1 for h in hosts.values() if h["changed"])
            outcome = f"rc 0, {changed}/{devices} hosts changed, read-back ok"
            samples.append(_with_outcome(sample, outcome))
        left = fortiauto_finds_compliant(lab.site_path)
        if left:
            raise RuntimeError(f"fortiauto plan still finds changes after fortinet.fortios: {left[:3]}")
    return samples, changes


def fortiauto_round(devices: int, work: Path, quiet: float) -> list[Sample]:
    """fortiauto's first apply and no-op re-run on a fresh lab."""
    work.mkdir(parents=True, exist_ok=True)
    with lab_process(devices, work / "lab") as lab:
        rollout = {"canary": 1, "batch_size": devices, "concurrency": devices, "max_failures": 1}
        site = site_variant(lab.site_path, "bench", rollout=rollout)
        argv = [FORTIAUTO, "apply", str(site), "--yes", "--output", "json", "--journal-dir", str(work / "j")]
        samples = []
        for path, wanted in (("fortiauto-apply", "changed"), ("fortiauto-noop", "unchanged")):
            sample, tree = _measured(lab, path, argv, dict(os.environ), work, quiet)
            statuses = [d["status"] for d in json.loads(tree.stdout)["devices"]]
            if tree.returncode != 0 or statuses != [wanted] * devices:
                raise RuntimeError(f"{path}: exit {tree.returncode}, {sorted(set(statuses))}")
            samples.append(_with_outcome(sample, f"exit 0, {devices}/{devices} {wanted}"))
    return samples


# -- report --------------------------------------------------------------------------------

LABELS = {
    "fortios-first": "fortinet.fortios, first run",
    "fortios-rerun": "fortinet.fortios, re-run",
    "fortiauto-apply": "fortiauto apply, first (with probes)",
    "fortiauto-noop": "fortiauto apply, no-op",
}


@dataclass
class Report:
    devices: int
    ansible_version: str
    samples: list[Sample] = field(default_factory=list)

    def of(self, path: str) -> list[Sample]:
        return [s for s in self.samples if s.path == path]

    def wall(self, path: str) -> float:
        return median([s.tree.wall_s for s in self.of(path)])

    def cpu(self, path: str) -> float:
        return median([s.tree.cpu_s for s in self.of(path)])


def render(report: Report, changes: Sequence[Change], command: str) -> str:
    rows = []
    for path, label in LABELS.items():
        runs = report.of(path)
        walls = [s.tree.wall_s for s in runs]
        rows.append(
            [
                label,
                f"{report.wall(path):.2f} s",
                f"{min(walls):.2f}-{max(walls):.2f} s",
                f"{report.cpu(path):.2f} s",
                f"{report.cpu(path) * 1000 / report.devices:.0f} ms",
                f"{median([s.lab_cpu_s for s in runs]):.2f} s",
                " / ".join(f"{s.others_cpu_s:.1f}" for s in runs) + " s",
                f"{runs[-1].requests:.0f} / {runs[-1].writes:.0f}",
                "; ".join(f"{s.load_before} ({s.runnable:.1f})" for s in runs),
                "; ".join(sorted({s.outcome for s in runs})),
            ]
        )
    ratio_rows = []
    for label, slow, fast in (
        ("first run / first apply", "fortios-first", "fortiauto-apply"),
        ("re-run / no-op", "fortios-rerun", "fortiauto-noop"),
    ):
        wall_ratio = report.wall(slow) / report.wall(fast)
        cpu_ratio = report.cpu(slow) / report.cpu(fast)
        verdict = "met" if wall_ratio >= GOAL_RATIO else "**missed**"
        ratio_rows.append([label, f"{wall_ratio:.1f}x ({verdict}: >= {GOAL_RATIO:g}x)", f"{cpu_ratio:.1f}x"])
    orphans = max(s.tree.orphans for s in report.of("fortios-first"))
    drain = max(s.tree.drain_s for s in report.of("fortios-first"))
    objects = ", ".join(f"{c.path} {c.mkey} ({c.action})" for c in changes)
    rounds = len(report.of("fortios-first"))
    return "\n\n".join(
        [
            f"#### fortinet.fortios against fortiauto, {report.devices} devices (`{SECTION}`)",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; {report.ansible_version}; "
            f"collections from `{BUNDLE}` (PyPI). Command: `{command}`. Median of {rounds} round(s); "
            "each round starts a fresh lab (same seed) for the collection's first run and re-run "
            "and another for fortiauto's first apply and no-op, one after the other (the order "
            "alternates between rounds). Objects, from `fortiauto plan`: "
            f"{objects}.",
            markdown_table(
                [
                    "run",
                    "wall (median)",
                    "wall (range)",
                    "CPU, process tree",
                    "CPU per device",
                    "lab CPU",
                    "other work's CPU during each run",
                    "requests / writes per device (lab log)",
                    "load at start, each round: 1/5/15 min (runnable now)",
                    "result",
                ],
                rows,
            ),
            markdown_table(["fortinet.fortios / fortiauto", "wall", "CPU"], ratio_rows),
            f"Each collection run left up to {orphans} processes that outlived their parents "
            "(`ansible-connection`'s daemonised persistent connections), reaped by the wrapper up "
            f"to {drain:.1f} s after `ansible-playbook` exited: their CPU is in the tree's figure. "
            "*Runnable now*: the mean of `procs_running` over 1 s before the run (the 1-minute "
            "load lags: after a collection run it reads 15-20 from its own 40 processes). *Other "
            "work's CPU*: the machine's busy CPU time (`/proc/stat`) during the run minus the "
            "tree's and the lab's, i.e. what other sessions took from the 2 cores meanwhile.",
        ]
    )


def _ansible_version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    return (done.stdout.splitlines() or ["ansible-playbook ?"])[0].strip()


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="bench-fortios-") as tmp:
        yield Path(tmp)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3); medians are reported")
    parser.add_argument(
        "--ansible-core", metavar="X.Y", help="run the playbooks with this ansible-core (a venv)"
    )
    parser.add_argument("--quiet-load", type=float, default=1.5, help="wait up to 60 s for the load to drop")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="work in DIR and leave it (playbook, inventory)"
    )
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    cache = cache_dir()
    collections = collections_path(cache)
    binary = ansible_playbook(cache, args.ansible_core) if collections is not None else None
    if collections is None or binary is None:
        return 0  # said why above; nothing to compare without the collection
    report = Report(args.devices, _ansible_version(binary))
    changes: list[Change] = []
    with _workdir(args.keep) as work:
        for index in range(args.repeat):
            round_dir = work / f"round-{index}"
            shutil.rmtree(round_dir, ignore_errors=True)
            # Alternate which path goes first, so neither always starts into the other's tail.
            if index % 2:
                fortiauto_samples = fortiauto_round(args.devices, round_dir / "fortiauto", args.quiet_load)
            ansible_samples, changes = ansible_round(
                args.devices, round_dir / "ansible", collections, binary, args.quiet_load
            )
            if not index % 2:
                fortiauto_samples = fortiauto_round(args.devices, round_dir / "fortiauto", args.quiet_load)
            ran = (
                [*fortiauto_samples, *ansible_samples]
                if index % 2
                else [*ansible_samples, *fortiauto_samples]
            )
            for sample in ran:
                print(
                    f"round {index + 1}: {LABELS[sample.path]:<38} {sample.tree.wall_s:7.2f} s wall "
                    f"{sample.tree.cpu_s:7.2f} s CPU  load {sample.load_before} "
                    f"({sample.runnable:.1f} runnable) -> {sample.load_after}, others "
                    f"{sample.others_cpu_s:.1f} s CPU  {sample.outcome}",
                    flush=True,
                )
            report.samples += ran
    command = f".venv/bin/python bench/fortios_collection.py --devices {args.devices} --repeat {args.repeat}"
    if args.ansible_core:
        command += f" --ansible-core {args.ansible_core}"
    text = render(report, changes, command)
    print(text)
    if args.write_results:
        write_section(BENCH_DIR / "RESULTS.md", SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
