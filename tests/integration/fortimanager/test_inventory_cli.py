"""``fortiauto inventory --fortimanager SITE`` through the CLI against the lab's mock FortiManager.

As a user runs it: a subprocess of the installed interpreter, the lab's own site file (whose
``fortimanager:`` block reads the API key from a file), each output format, the statuses that
move as the fleet changes, and the failures a user meets (bad key, no block).
"""

from __future__ import annotations

import json
import os
import select
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fortiauto.site.loader import load_site
from tests.integration.fortimanager.conftest import FmgLab

FORTIAUTO = [sys.executable, "-m", "fortiauto"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FGT_", "FORTIAUTO_"))}
    return subprocess.run(
        [*FORTIAUTO, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env, check=False
    )


def inventory(env: FmgLab, output: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "inventory", "--fortimanager", str(site or env.lab.state_dir / "site.yml"), "--output", output
    )


def rows(env: FmgLab) -> dict[str, dict]:
    result = inventory(env, "json")
    assert result.returncode == 0, result.stderr
    return {d["name"]: d for d in json.loads(result.stdout)}


def test_text_table(env: FmgLab) -> None:
    result = inventory(env, "text")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "model", "version", "ha", "conn", "sync", "db", "vdom/package"]
    assert lines[1].split() == [
        "fgt-001",
        "FortiGate-VM64",
        "7.0.15",
        "standalone",
        "up",
        "insync",
        "nomod",
        "root:mail-edge-fgt-001",  # the lab gives each unit its own package
    ]
    assert lines[-1] == "2 device(s), 2 in sync"
    assert env.fmg.mock.requests.writes == 0  # the inventory only reads


def test_statuses_follow_the_fleet(env: FmgLab) -> None:
    device = env.lab.device("fgt-002")
    # A change made on the unit behind FortiManager's back: FortiManager calls it out of sync.
    with httpx.Client(
        base_url=device.url, verify=ssl.create_default_context(cafile=str(env.ca_path)), timeout=10
    ) as http:
        answer = http.put(
            "/api/v2/cmdb/firewall/policy/1",
            headers={"Authorization": f"Bearer {device.token}"},
            json={"comments": "edited on the box"},
        )
    assert answer.status_code == 200, answer.text
    found = rows(env)
    assert (found["fgt-002"]["conf_status"], found["fgt-001"]["conf_status"]) == ("outofsync", "insync")


def test_ha_cluster_shows_its_members(env: FmgLab) -> None:
    device = env.lab.device("fgt-001")
    with httpx.Client(
        base_url=device.url, verify=ssl.create_default_context(cafile=str(env.ca_path)), timeout=10
    ) as http:
        answer = http.post(
            "/__lab__/faults", headers={"Authorization": f"Bearer {device.token}"}, content="ha-primary"
        )
    assert answer.status_code == 200
    ha = rows(env)["fgt-001"]["ha"]
    assert ha["mode"] == "a-p"
    assert [(m["role"], m["priority"]) for m in ha["members"]] == [("primary", 200), ("secondary", 100)]


def test_site_skeleton_validates_and_holds_no_secret(env: FmgLab) -> None:
    result = inventory(env, "site")
    assert result.returncode == 0, result.stderr
    assert env.fmg.mock.token not in result.stdout
    assert "${file:tokens/fortimanager.token}" in result.stdout
    # FortiManager knows each unit's management IP, not its REST port: every lab unit is on
    # 127.0.0.1, so the addresses are filled in as a user would before validating.
    assert result.stdout.count("url: https://127.0.0.1\n") == 2
    text = result.stdout
    for device in env.lab.devices:
        entry = f"- name: {device.name}"
        head, tail = text.split(entry, 1)
        text = head + entry + tail.replace("url: https://127.0.0.1\n", f"url: {device.url}\n", 1)
    skeleton = env.lab.state_dir / "fleet.yml"
    skeleton.write_text(text)
    site = load_site(skeleton)
    assert site.fortimanager is not None
    assert site.fortimanager.token is not None
    assert site.fortimanager.token.get_secret_value() == env.fmg.mock.token
    assert [(d.name, d.fortimanager.package if d.fortimanager else None) for d in site.devices] == [
        ("fgt-001", "mail-edge-fgt-001"),
        ("fgt-002", "mail-edge-fgt-002"),
    ]
    checked = run_cli("validate", str(skeleton))
    assert checked.returncode == 0, checked.stderr


def test_wrong_api_key_exits_4_without_echoing_it(env: FmgLab, tmp_path: Path) -> None:
    (tmp_path / "fmg.token").write_text("0123456789abcdefghijklmnopqrstuv\n")
    (tmp_path / "ca.pem").write_text(env.ca_path.read_text())
    site = tmp_path / "fmg.yml"
    site.write_text(
        f"version: 1\nfortimanager:\n  url: {env.url}\n  token: ${{file:fmg.token}}\n  verify_tls: ca.pem\n"
    )
    result = inventory(env, "text", site)
    assert result.returncode == 4
    assert "API key or session was refused" in result.stderr
    assert "0123456789abcdefghijklmnopqrstuv" not in result.stdout + result.stderr


def test_missing_block_is_bad_input(env: FmgLab, tmp_path: Path) -> None:
    site = tmp_path / "nofmg.yml"
    site.write_text("version: 1\ndevices: []\n")
    result = inventory(env, "text", site)
    assert result.returncode == 2
    assert f"{site}:1: fortimanager: no fortimanager: block" in result.stderr


def test_lab_up_fortimanager_end_to_end(tmp_path: Path) -> None:
    """The real command: ``fortiauto lab up --fortimanager`` in the background, then the inventory."""
    state = tmp_path / "lab"
    proc = subprocess.Popen(
        [*FORTIAUTO, "lab", "up", "--fortimanager", "--devices", "2", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        line = ""
        while not line.startswith("lab ready:"):
            assert time.monotonic() < deadline, "lab up --fortimanager never got ready"
            assert proc.poll() is None, "lab up --fortimanager exited early"
            if select.select([proc.stdout], [], [], 0.5)[0]:
                line = proc.stdout.readline()
        info = json.loads((state / "lab.json").read_text())
        assert set(info["fortimanager"]) >= {"url", "username", "password", "token", "adom"}
        assert (state / "tokens" / "fortimanager.token").stat().st_mode & 0o077 == 0
        result = run_cli("inventory", "--fortimanager", str(state / "site.yml"), "--output", "json")
        assert result.returncode == 0, result.stderr
        assert [d["name"] for d in json.loads(result.stdout)] == ["fgt-001", "fgt-002"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
