"""Driving ``ansible-playbook`` against a running lab, and reading what it reported.

``run_playbook`` runs the repository's playbooks as a subprocess (the way a user or AWX does),
with ``-v`` so that every module result is printed as one JSON line, and parses the play recap,
those results and the summary callback's JSON report (``FORTIAUTO_REPORT_FILE``).
``inventory_variant`` copies the lab's ``hosts.yml`` with changed group or host variables (short
probe budgets, a fallback-less host), like ``site_variant`` does for site files; ``checkout``
copies what a project checkout holds (``ansible.cfg``, ``playbooks/``, ``collections/``) into a
fresh folder, as AWX does for every job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
BIN = Path(sys.executable).parent
COLLECTION = REPO / "collections" / "ansible_collections" / "fortiauto" / "fortigate"
MODULE = "fortiauto.fortigate.smtp_inspection"

# Short probe budgets keep failing probes quick; the lab's own inventory uses 5 s and 2 retries.
FAST_PROBE = {"timeout": 1.5, "retries": 2, "retry_delay": 0.1}

_RECAP = re.compile(
    r"^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.MULTILINE,
)
# With -v the default callback prints each task result as one line of JSON after the host.
_RESULT = re.compile(
    r"^(?P<state>ok|changed|skipping|fatal): \[(?P<host>[^\]]+)\](?:: FAILED!)? => (?P<json>\{.*\})$",
    re.MULTILINE,
)


@dataclass
class PlaybookRun:
    """One ``ansible-playbook`` run: exit code, output, recap per host, module results per host."""

    returncode: int
    stdout: str
    stderr: str
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)  # the summary callback's JSON

    def hosts_with(self, key: str, value: int) -> set[str]:
        return {host for host, counts in self.recap.items() if counts[key] == value and host != "localhost"}

    def result(self, host: str) -> dict[str, Any]:
        return self.results[host]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _parse(run: PlaybookRun) -> PlaybookRun:
    recap_at = run.stdout.rfind("PLAY RECAP")
    for match in _RECAP.finditer(run.stdout, max(recap_at, 0)):
        counts = {k: int(v) for k, v in match.groupdict().items() if k != "host"}
        run.recap[match["host"]] = counts
    for match in _RESULT.finditer(run.stdout):
        data = json.loads(match["json"])
        # Keep the fortiauto module's results only: they are the ones carrying a device status.
        if isinstance(data, dict) and "status" in data and "name" in data:
            run.results[match["host"]] = data
    return run


def ansible_env(home: Path, config: Path = REPO / "ansible.cfg") -> dict[str, str]:
    """A clean Ansible environment: no colour, the repository's ansible.cfg, temp files under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),  # connection local: also this machine
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            # The repository's own configuration, whatever the working directory.
            "ANSIBLE_CONFIG": str(config),
        }
    )
    for name in [k for k in env if k.startswith(("FORTIAUTO_", "AWX_", "TOWER_"))]:
        env.pop(name)  # the inventory names the journal directory; credentials come from files
    return env


def playbook_command(
    playbook: str,
    inventory: Path,
    *args: str,
    home: Path,
    extra_vars: dict[str, Any] | None = None,
    forks: int = 10,
    project: Path = REPO,
    env: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one ``ansible-playbook`` run (see ``run_playbook``)."""
    home.mkdir(parents=True, exist_ok=True)
    command = [
        str(BIN / "ansible-playbook"),
        "-v",
        "-i",
        str(inventory),
        str(project / "playbooks" / playbook),
        "--forks",
        str(forks),
        *args,
    ]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    environment = ansible_env(home, project / "ansible.cfg") | (env or {})
    environment["FORTIAUTO_REPORT_FILE"] = str(home / "fortiauto-report.json")
    return command, environment


def finish(home: Path, returncode: int, stdout: str, stderr: str) -> PlaybookRun:
    """A finished run, parsed, with the summary callback's report (read once, then removed)."""
    run = _parse(PlaybookRun(returncode, stdout, stderr))
    report = home / "fortiauto-report.json"
    if report.is_file():
        run.report = json.loads(report.read_text())
        report.unlink()
    return run


def run_playbook(
    playbook: str,
    inventory: Path,
    *args: str,
    home: Path,
    extra_vars: dict[str, Any] | None = None,
    forks: int = 10,
    timeout: float = 240,
    project: Path = REPO,
    env: dict[str, str] | None = None,
) -> PlaybookRun:
    """``ansible-playbook -v -i INVENTORY PROJECT/playbooks/PLAYBOOK --forks N [args]``, parsed."""
    command, environment = playbook_command(
        playbook, inventory, *args, home=home, extra_vars=extra_vars, forks=forks, project=project, env=env
    )
    done = subprocess.run(
        command, cwd=home, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
    return finish(home, done.returncode, done.stdout, done.stderr)


def checkout(target: Path) -> Path:
    """A fresh copy of what a project checkout holds for Ansible (as AWX makes for every job)."""
    target.mkdir(parents=True)
    (target / ".git").mkdir()  # marks the checkout's root, as a real clone has it
    shutil.copy2(REPO / "ansible.cfg", target / "ansible.cfg")
    shutil.copytree(PLAYBOOKS, target / "playbooks")
    shutil.copytree(
        REPO / "collections", target / "collections", ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


def inventory_variant(
    hosts_yml: Path,
    name: str,
    *,
    group_vars: dict[str, Any] | None = None,
    probe: dict[str, Any] | None = None,
    host_vars: dict[str, dict[str, Any]] | None = None,
    drop_host_vars: tuple[str, ...] = (),
    drop_group_vars: tuple[str, ...] = (),
    out: Path | None = None,
) -> Path:
    """A copy of the lab's ``hosts.yml`` beside it with group vars, probe settings or host vars changed."""
    yaml = YAML()
    data = yaml.load(hosts_yml.read_text())
    group = data["all"]["children"]["fortigates"]
    for key in drop_group_vars:
        group["vars"].pop(key, None)
    group["vars"].update(group_vars or {})
    for server in group["vars"].get("fortiauto_mail_servers", []):
        server["probe"].update(probe or {})
    for host, values in group["hosts"].items():
        for key in drop_host_vars:
            values.pop(key, None)
        values.update((host_vars or {}).get(host, {}))
    out = out or hosts_yml.with_name(f"hosts-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out
