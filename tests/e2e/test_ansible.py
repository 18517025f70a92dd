"""Issues 7, 18 and 21 end to end: ``ansible-playbook`` drives the collection against a 4-device lab.

The lab runs in this process (``LabThread``); the playbooks run as subprocesses with the
repository's ``ansible.cfg`` (or a fresh copy of the checkout, as AWX makes per job) and the
inventory the lab wrote (``hosts.yml``), or a copy of it with changed variables. The lab's
control API is the ground truth: requests it received, and the canonical state dump compared
byte for byte; the summary callback's JSON report is what the job said. The static checks
(documentation, lint, ``ansible-doc``, the collection build) are in ``test_ansible_collection.py``.
Cost: about 50 s on 2 cores under load, most of it ~17 playbook runs (each starts Ansible: 1-3 s).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML

from fortiauto.api import resolve_device
from fortiauto.errors import InputError
from fortiauto.fleet import new_run_id
from fortiauto_lab.server import LabThread
from tests.e2e.ansible_kit import (
    BIN,
    FAST_PROBE,
    PlaybookRun,
    ansible_env,
    checkout,
    finish,
    inventory_variant,
    playbook_command,
    run_playbook,
)
from tests.integration.engine.labkit import Control

pytestmark = pytest.mark.e2e

DEVICES = 4
NAMES = {f"fgt-00{i}" for i in range(1, DEVICES + 1)}
FAULTED = "fgt-003"
# The derived id: the ansible-playbook process's start, then a hash (or AWX's job id).
RUN_ID = re.compile(r"\d{8}T\d{6}Z-(?:[0-9a-f]{6}|awx\d+)")


@dataclass
class AnsibleLab:
    state_dir: Path
    info: dict[str, Any]
    controls: dict[str, Control]

    @property
    def hosts(self) -> Path:
        return self.state_dir / "hosts.yml"

    @property
    def journal(self) -> Path:
        return self.state_dir / ".fortiauto" / "journal"

    @property
    def names(self) -> set[str]:
        return set(self.controls)

    def reset(self) -> None:
        for control in self.controls.values():
            control.reset()
            control.faults({})

    def states(self) -> dict[str, bytes]:
        return {name: control.state() for name, control in self.controls.items()}

    def writes(self) -> dict[str, int]:
        return {name: control.requests()["writes"] for name, control in self.controls.items()}

    def tokens(self) -> list[str]:
        return [device["token"] for device in self.info["devices"]]

    def token(self, name: str) -> str:
        return next(d["token"] for d in self.info["devices"] if d["name"] == name)


@pytest.fixture(scope="module")
def ansible_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnsibleLab]:
    state_dir = tmp_path_factory.mktemp("ansible-lab")
    with LabThread(state_dir, devices=DEVICES, version="7.0"):
        info = json.loads((state_dir / "lab.json").read_text())
        ca = str(state_dir / "ca.pem")
        lab = AnsibleLab(state_dir, info, {d["name"]: Control(d, ca) for d in info["devices"]})
        try:
            yield lab
        finally:
            for control in lab.controls.values():
                control.close()


@pytest.fixture
def lab(ansible_lab: AnsibleLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AnsibleLab:
    """The lab reset to its seed, an empty journal, and device locks private to this test."""
    ansible_lab.reset()
    shutil.rmtree(ansible_lab.journal, ignore_errors=True)
    monkeypatch.setenv("FORTIAUTO_LOCK_DIR", str(tmp_path / "locks"))
    return ansible_lab


def _no_secrets(text: str, lab: AnsibleLab) -> None:
    leaked = [token[:4] + "..." for token in lab.tokens() if token in text]
    assert not leaked, f"API tokens in ansible output: {leaked}"
    assert "PRIVATE KEY" not in text


def _statuses(run: PlaybookRun) -> dict[str, str]:
    return {host: device["status"] for host, device in run.report["devices"].items()}


def _locks(tmp_path: Path) -> dict[str, str]:
    return {"FORTIAUTO_LOCK_DIR": str(tmp_path / "locks")}


# -- the normal road ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_check_diff_reports_every_change_and_writes_nothing(lab, tmp_path):
    pristine = lab.states()

    run = run_playbook("site.yml", lab.hosts, "--check", "--diff", home=tmp_path, env=_locks(tmp_path))

    assert run.returncode == 0, run.output
    assert run.hosts_with("changed", 1) == lab.names
    for name in lab.names:
        result = run.result(name)
        assert result["status"] == "changed", result["msg"]
        assert [c["task"] for c in result["changes"]] == [
            "certificate",
            "protocol_options",
            "ssl_profile",
            "emailfilter",
            "policy",
        ]
        assert result["probes"] == []  # check mode: no probe either
        assert result["journal"] is None
    # --diff: before/after per object, e.g. the policy moving to proxy mode with the new profiles
    assert "+++ after: firewall/policy/1 (vdom root, update)" in run.stdout
    assert '-    "inspection-mode": "flow",' in run.stdout
    assert '+    "inspection-mode": "proxy",' in run.stdout
    assert "check mode: nothing written" in run.stdout
    assert set(run.report["drift"]) == lab.names
    assert run.report["undo"] is None
    assert lab.writes() == dict.fromkeys(lab.names, 0)
    assert lab.states() == pristine
    assert not lab.journal.exists() or not list(lab.journal.glob("*.jsonl"))
    _no_secrets(run.output, lab)


@pytest.mark.timeout(240)
def test_limit_serial_one_run_id_rerun_without_journal_compliance_and_rollback(lab, tmp_path):
    """--limit without localhost and serial 1: one derived run id, the summary, then undo by it."""
    pristine = lab.states()
    lab.controls[FAULTED].faults("banner-hold-on-utm")
    hosts = inventory_variant(
        lab.hosts, "fast", probe=FAST_PROBE, host_vars={FAULTED: {"fortiauto_fallback": []}}
    )
    limited = {"fgt-001", "fgt-002", FAULTED}
    env = _locks(tmp_path)

    apply = run_playbook(
        "site.yml",
        hosts,
        "--limit",
        ",".join(sorted(limited)),
        home=tmp_path,
        extra_vars={"fortiauto_serial": 1},
        env=env,
    )

    assert apply.returncode == 2, apply.output  # ansible-playbook: some host failed
    assert _statuses(apply) == {"fgt-001": "changed", "fgt-002": "changed", FAULTED: "rolled_back"}
    run_ids = {apply.result(name)["run_id"] for name in limited}
    assert len(run_ids) == 1, run_ids  # one id across three batches, no localhost in the limit
    (run_id,) = run_ids
    assert RUN_ID.fullmatch(run_id)
    assert apply.report["run_ids"] == [run_id]
    failed = apply.result(FAULTED)
    assert apply.hosts_with("failed", 1) == {FAULTED}
    assert (failed["rolled_back"], failed["changed"], failed["exit_code"]) == (True, False, 3)
    assert "probe failed after change (full: F4 banner-timeout" in failed["msg"]
    assert "mail flows again" in failed["msg"]
    assert f"undo: ansible-playbook {tmp_path}" not in apply.stdout  # the repository's rollback.yml
    assert f"-e fortiauto_run_id={run_id}" in apply.stdout
    assert f"rolled_back 1: {FAULTED}" in apply.stdout
    applied = lab.states()
    assert applied[FAULTED] == pristine[FAULTED]
    assert applied["fgt-004"] == pristine["fgt-004"]
    assert lab.writes()["fgt-004"] == 0
    assert [p.name for p in lab.journal.glob("*.jsonl")] == [f"{run_id}.jsonl"]

    # A re-run of the compliant hosts changes nothing: no journal, no undo hint.
    rerun = run_playbook("site.yml", hosts, "--limit", "fgt-001,fgt-002", home=tmp_path, env=env)

    assert rerun.returncode == 0, rerun.output
    assert _statuses(rerun) == {"fgt-001": "unchanged", "fgt-002": "unchanged"}
    assert rerun.report["undo"] is None
    assert "undo:" not in rerun.stdout
    assert [p.name for p in lab.journal.glob("*.jsonl")] == [f"{run_id}.jsonl"]
    assert {rerun.result(n)["journal"] for n in ("fgt-001", "fgt-002")} == {None}

    # The compliance report is read-only.
    writes = lab.writes()
    check = run_playbook("check.yml", hosts, home=tmp_path, env=env)

    assert check.returncode == 0, check.output
    assert set(check.report["compliant"]) == {"fgt-001", "fgt-002"}
    assert set(check.report["drift"]) == {FAULTED, "fgt-004"}
    assert check.report["unknown"] == []
    assert check.report["changes"] == {"fgt-001": 0, "fgt-002": 0, FAULTED: 5, "fgt-004": 5}
    assert "compliant 2 of 4" in check.stdout
    assert lab.writes() == writes

    # Rollback by run id on every device: all back to their state before the run, byte for byte.
    rollback = run_playbook(
        "rollback.yml", hosts, home=tmp_path, extra_vars={"fortiauto_run_id": run_id}, env=env
    )

    assert rollback.returncode == 0, rollback.output
    assert _statuses(rollback) == {
        "fgt-001": "rolled_back",
        "fgt-002": "rolled_back",
        FAULTED: "unchanged",  # its own rollback already undid it
        "fgt-004": "unchanged",
    }
    assert lab.states() == pristine
    for run in (apply, rerun, check, rollback):
        _no_secrets(run.output, lab)


# -- the same truth as the CLI --------------------------------------------------------------------


def _cli_site(lab: AnsibleLab, name: str) -> Path:
    """The lab's site file with every device in one batch (Ansible's play has no canary)."""
    yaml_rt = YAML()
    data = yaml_rt.load((lab.state_dir / "site.yml").read_text())
    data["rollout"] = {"canary": 0, "batch_size": DEVICES, "concurrency": DEVICES, "max_failures": DEVICES}
    for device in data["devices"]:
        device["mail_servers"][0]["probe"].update(FAST_PROBE)
    out = lab.state_dir / f"site-{name}.yml"
    with out.open("w") as handle:
        yaml_rt.dump(data, handle)
    return out


@pytest.mark.timeout(180)
def test_refusals_fail_their_task_as_the_cli_exits_5(lab, tmp_path):
    faults = {"fgt-001": "fortimanager-managed", "fgt-002": "ha-secondary", FAULTED: "read-only-token"}
    refused = set(faults)

    def fault() -> None:
        lab.reset()
        for name, spec in faults.items():
            lab.controls[name].faults(spec)

    fault()
    pristine = lab.states()
    run = run_playbook("site.yml", lab.hosts, home=tmp_path, env=_locks(tmp_path))

    assert run.returncode == 2, run.output  # AWX: the job fails
    assert run.hosts_with("failed", 1) == refused
    assert _statuses(run) == dict.fromkeys(refused, "refused") | {"fgt-004": "changed"}
    for name in refused:
        result = run.result(name)
        assert result["msg"].startswith(f"{name}: refused: "), result["msg"]
        assert result["exit_code"] == 5
    assert "FortiManager" in run.result("fgt-001")["msg"]
    assert {name: lab.states()[name] == pristine[name] for name in refused} == dict.fromkeys(refused, True)
    assert f"refused 3: fgt-001, fgt-002, {FAULTED}" in run.stdout

    fault()
    site = _cli_site(lab, "refusals")
    done = subprocess.run(
        [
            str(BIN / "fortiauto"),
            "apply",
            str(site),
            "--yes",
            "--output",
            "json",
            "--journal-dir",
            str(tmp_path / "cli"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=ansible_env(tmp_path) | _locks(tmp_path),
    )

    assert done.returncode == 5, done.stdout + done.stderr
    cli = {d["name"]: d["status"] for d in json.loads(done.stdout)["devices"]}
    assert cli == _statuses(run)  # the same truth on both paths


@pytest.mark.timeout(120)
def test_max_fail_percentage_abort_still_prints_the_summary_and_undo(lab, tmp_path):
    lab.controls["fgt-002"].faults("banner-hold-on-utm")
    hosts = inventory_variant(
        lab.hosts, "maxfail", probe=FAST_PROBE, host_vars={"fgt-002": {"fortiauto_fallback": []}}
    )

    run = run_playbook(
        "site.yml",
        hosts,
        home=tmp_path,
        env=_locks(tmp_path),
        extra_vars={"fortiauto_serial": 2, "fortiauto_max_fail_percentage": 0},
    )

    assert run.returncode == 2, run.output
    assert _statuses(run) == {"fgt-001": "changed", "fgt-002": "rolled_back"}
    assert run.report["no_result"] == [FAULTED, "fgt-004"]  # the second batch never started
    run_id = run.result("fgt-001")["run_id"]
    assert len(run.report["undo"]) == 1
    assert f"rollback.yml -e fortiauto_run_id={run_id}" in run.report["undo"][0]
    assert f"no result 2: {FAULTED}, fgt-004" in run.stdout
    assert lab.writes()[FAULTED] == lab.writes()["fgt-004"] == 0


@pytest.mark.timeout(120)
def test_summary_tolerates_argument_errors_missing_mail_servers_and_bad_tokens(lab, tmp_path):
    hosts = inventory_variant(
        lab.hosts,
        "broken",
        host_vars={
            "fgt-001": {"fortiauto_mail_servers": []},
            FAULTED: {"fortiauto_timeout": "{{ 1 // 0 }}"},  # fails before the module runs
        },
    )
    data = yaml.safe_load(hosts.read_text())
    group = data["all"]["children"]["fortigates"]
    group["hosts"]["fgt-002"]["fortiauto_mail_servers"] = [
        dict(
            group["vars"]["fortiauto_mail_servers"][0],
            certificate={"cert": "missing.pem", "key": "missing.key"},
        )
    ]
    bad_token = tmp_path / "bad.token"
    bad_token.write_text("not-the-token\n")
    group["hosts"]["fgt-004"]["fortiauto_token_file"] = str(bad_token)
    hosts.write_text(yaml.safe_dump(data))

    run = run_playbook("site.yml", hosts, home=tmp_path, env=_locks(tmp_path))

    assert run.returncode == 2, run.output
    assert run.hosts_with("failed", 1) == lab.names
    # The summary ran although every host failed and one result has no fortiauto status.
    assert _statuses(run) == dict.fromkeys(lab.names, "failed")
    reasons = {host: device["reason"] for host, device in run.report["devices"].items()}
    assert reasons["fgt-001"].startswith("no mail servers configured for device fgt-001")
    assert (
        "argument mail_servers[0].certificate.cert: certificate file 'missing.pem' not found"
        in reasons["fgt-002"]
    )
    assert "relative to the site file" not in run.output
    assert "devices[0]" not in run.output
    assert reasons[FAULTED].startswith("no fortiauto result: ")
    assert "401" in reasons["fgt-004"] or "token" in reasons["fgt-004"], reasons["fgt-004"]
    for name in lab.names:
        assert f"{name}: {name}:" not in run.output
    assert run.report["undo"] is None
    assert lab.writes() == dict.fromkeys(lab.names, 0)
    assert not list(lab.journal.glob("*.jsonl"))
    _no_secrets(run.output, lab)


# -- two jobs at once -----------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_two_concurrent_jobs_are_serialised_by_the_device_lock(lab, tmp_path):
    pristine = lab.states()
    for control in lab.controls.values():
        control.faults("api-latency=150")  # each transaction takes seconds: the two jobs overlap
    hosts = inventory_variant(lab.hosts, "concurrent", probe=FAST_PROBE)
    runs = {}
    started = {}
    for job in ("a", "b"):
        home = tmp_path / job
        command, env = playbook_command(
            "site.yml",
            hosts,
            home=home,
            extra_vars={"fortiauto_run_id": f"{new_run_id()}-{job}"},
            env=_locks(tmp_path),
        )
        started[job] = (
            home,
            subprocess.Popen(
                command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
        )
    for job, (home, process) in started.items():
        stdout, stderr = process.communicate(timeout=200)
        runs[job] = finish(home, process.returncode, stdout, stderr)
    a, b = _statuses(runs["a"]), _statuses(runs["b"])

    assert set(a) == set(b) == lab.names, (runs["a"].output, runs["b"].output)
    for name in lab.names:
        pair = sorted([a[name], b[name]])
        # Exactly one job changed the device; the other was refused by the lock or found it done.
        assert pair in (["changed", "refused"], ["changed", "unchanged"]), (name, pair)
        loser = runs["b"] if a[name] == "changed" else runs["a"]
        if "refused" in pair:
            assert "another run holds the lock on device" in loser.report["devices"][name]["reason"]
    for run in runs.values():
        assert not [s for s in _statuses(run).values() if s not in ("changed", "refused", "unchanged")]
    for control in lab.controls.values():
        control.faults({})

    # Each job's undo restores only what it wrote, and never touches the other's objects. A job
    # that changed nothing wrote no journal and prints no undo command.
    undone = [job for job in ("a", "b") if runs[job].report["undo"]]
    assert undone
    for job in undone:
        run_id = runs[job].report["run_ids"][0]
        undo = run_playbook(
            "rollback.yml",
            hosts,
            home=tmp_path / f"undo-{job}",
            extra_vars={"fortiauto_run_id": run_id},
            env=_locks(tmp_path),
        )
        assert undo.returncode == 0, undo.output
        assert set(_statuses(undo).values()) <= {"rolled_back", "unchanged"}
    assert lab.states() == pristine


def _journal_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _unended(path: Path) -> set[str]:
    """Devices that wrote (a pre line) but whose transaction has not ended (no end line)."""
    lines = _journal_lines(path)
    wrote = {e["device"] for e in lines if e["type"] == "pre"}
    return wrote - {e["device"] for e in lines if e["type"] == "end"}


@pytest.mark.timeout(240)
def test_ctrl_c_mid_apply_lets_every_started_device_finish_its_transaction(lab, tmp_path):
    """Ansible stops its workers with SIGTERM; the engine in the worker still ends each device."""
    pristine = lab.states()
    for control in lab.controls.values():
        control.faults("api-latency=300")  # a transaction takes seconds: the stop lands mid-write
    hosts = inventory_variant(lab.hosts, "interrupt", probe=FAST_PROBE)
    run_id = new_run_id()
    journal = lab.journal / f"{run_id}.jsonl"
    command, env = playbook_command(
        "site.yml", hosts, home=tmp_path, extra_vars={"fortiauto_run_id": run_id}, env=_locks(tmp_path)
    )
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(e["type"] == "pre" for e in _journal_lines(journal)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not any(e["type"] == "pre" for e in _journal_lines(journal)):
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"no write started: {out.decode()[-3000:]} {err.decode()[-2000:]}")
    process.send_signal(signal.SIGINT)  # Ctrl-C at the terminal
    process.communicate(timeout=120)
    deadline = time.monotonic() + 90
    while _unended(journal) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert _unended(journal) == set()  # no device left between two writes
    for control in lab.controls.values():
        control.faults({})
    undo = run_playbook(
        "rollback.yml",
        hosts,
        home=tmp_path / "undo",
        extra_vars={"fortiauto_run_id": run_id},
        env=_locks(tmp_path),
    )
    assert undo.returncode == 0, undo.output
    assert lab.states() == pristine


# -- AWX: fresh checkouts, a shared journal volume, credentials from the environment --------------


@pytest.mark.timeout(240)
def test_rollback_from_another_checkout_with_a_shared_journal(lab, tmp_path):
    pristine = lab.states()
    volume = tmp_path / "volume" / "journal"  # the journal volume both jobs mount
    first, second = checkout(tmp_path / "job-101" / "project"), checkout(tmp_path / "job-102" / "project")
    env = _locks(tmp_path)

    # Without a journal location given on purpose (or inside the checkout), an apply does not start.
    ephemeral = inventory_variant(
        lab.hosts, "ephemeral", drop_group_vars=("fortiauto_journal_dir",), out=first / "hosts.yml"
    )
    refused = run_playbook(
        "site.yml", ephemeral, "--limit", "fgt-001", home=tmp_path / "h0", project=first, env=env
    )
    inside = inventory_variant(
        lab.hosts,
        "inside",
        group_vars={"fortiauto_journal_dir": str(first / ".fortiauto" / "journal")},
        out=first / "hosts-inside.yml",
    )
    awx_inside = run_playbook(
        "site.yml",
        inside,
        "--limit",
        "fgt-001",
        home=tmp_path / "h1",
        project=first,
        env=env,
        extra_vars={"awx_job_id": 100},
    )

    assert refused.returncode == 2, refused.output
    assert "no persistent journal location" in refused.result("fgt-001")["msg"]
    assert awx_inside.returncode == 2, awx_inside.output
    assert "inside the project checkout" in awx_inside.result("fgt-001")["msg"]
    assert lab.writes() == dict.fromkeys(lab.names, 0)

    shared = {"fortiauto_journal_dir": str(volume)}
    apply = run_playbook(
        "site.yml",
        inventory_variant(
            lab.hosts, "job101", probe=FAST_PROBE, group_vars=shared, out=first / "hosts-101.yml"
        ),
        home=tmp_path / "h2",
        project=first,
        env=env,
        extra_vars={"awx_job_id": 101},
    )

    assert apply.returncode == 0, apply.output
    (run_id,) = apply.report["run_ids"]
    assert run_id.endswith("-awx101"), run_id
    shutil.rmtree(first)  # the job's container is gone

    rollback = run_playbook(
        "rollback.yml",
        inventory_variant(lab.hosts, "job102", group_vars=shared, out=second / "hosts.yml"),
        home=tmp_path / "h3",
        project=second,
        env=env,
        extra_vars={"awx_job_id": 102, "fortiauto_run_id": run_id},
    )

    assert rollback.returncode == 0, rollback.output
    assert _statuses(rollback) == dict.fromkeys(lab.names, "rolled_back")
    assert lab.states() == pristine


@pytest.mark.timeout(120)
def test_credentials_from_environment_variables(lab, tmp_path):
    hosts = inventory_variant(lab.hosts, "envcreds", drop_host_vars=("fortiauto_token_file",))
    env = _locks(tmp_path) | {
        "FORTIAUTO_TOKEN_FGT_001": lab.token("fgt-001"),
        "FORTIAUTO_TOKEN_FGT_002": lab.token("fgt-002"),
        "FORTIAUTO_TOKEN": lab.token(FAULTED),  # the shared one: right for fgt-003 only
    }

    run = run_playbook("check.yml", hosts, "-vvv", home=tmp_path, env=env)

    assert run.returncode == 2, run.output
    assert _statuses(run) == {
        "fgt-001": "changed",
        "fgt-002": "changed",
        FAULTED: "changed",
        "fgt-004": "failed",
    }
    assert "authentication failed" in run.report["devices"]["fgt-004"]["reason"]
    assert "fgt-004: fgt-004:" not in run.output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" not in run.output  # no token argument at all
    _no_secrets(run.output, lab)


@pytest.mark.timeout(120)
def test_inventory_plugin_turns_the_site_file_into_hosts(lab, tmp_path):
    config = lab.state_dir / "lab.fortiauto.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "plugin": "fortiauto.fortigate.site",
                "site": "site.yml",
                "journal_dir": str(lab.journal),
                "keyed_groups": [{"key": "fortiauto_site_device.vdom", "prefix": "vdom"}],
            }
        )
    )
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(config), "--list"],
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    inventory = json.loads(listed.stdout)
    assert set(inventory["fortigates"]["hosts"]) == lab.names
    assert set(inventory["vdom_root"]["hosts"]) == lab.names
    hostvars = inventory["_meta"]["hostvars"]["fgt-001"]
    assert hostvars["fortiauto_site"] == str((lab.state_dir / "site.yml").resolve())
    assert hostvars["fortiauto_site_device"]["mail_servers"] == ["mx1"]
    _no_secrets(listed.stdout, lab)

    run = run_playbook("check.yml", config, home=tmp_path, env=_locks(tmp_path))

    assert run.returncode == 0, run.output
    assert set(run.report["drift"]) == lab.names
    assert lab.writes() == dict.fromkeys(lab.names, 0)


@pytest.mark.timeout(120)
def test_token_arguments_are_masked_at_vvv_and_absent_from_results(lab, tmp_path):
    hosts = inventory_variant(
        lab.hosts,
        "token",
        drop_host_vars=("fortiauto_token_file",),
        host_vars={d["name"]: {"fortiauto_token": d["token"]} for d in lab.info["devices"]},
    )
    # -vvv prints every result with its invocation: the token must show masked, and nowhere else.
    run = run_playbook(
        "check.yml", hosts, "-vvv", "--limit", "fgt-001,fgt-002", home=tmp_path, env=_locks(tmp_path)
    )

    assert run.returncode == 0, run.output
    assert set(run.report["drift"]) == {"fgt-001", "fgt-002"}
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.stdout
    _no_secrets(run.output, lab)
    _no_secrets(json.dumps(run.report), lab)


def test_a_site_file_replaces_device_arguments(ansible_lab):
    site = str(ansible_lab.state_dir / "site.yml")
    with pytest.raises(InputError, match=r"drop the device arguments \(url\) or the site"):
        resolve_device({"site": site, "device": "fgt-001", "url": "https://127.0.0.1:1"})
    with pytest.raises(InputError, match="no device named 'fgt-999'"):
        resolve_device({"site": site, "device": "fgt-999"})
