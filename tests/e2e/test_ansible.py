"""Issue 7 end to end: ``ansible-playbook`` drives the fortiauto module against a 10-device lab, forks 10.

The lab runs in this process (``LabThread``); the playbooks run as subprocesses with the
repository's ``ansible.cfg`` and the inventory the lab wrote (``hosts.yml``), or a copy of it
with shorter probe budgets. The lab's control API is the ground truth: requests it received,
and the canonical state dump compared byte for byte. Cost: about 60 s on 2 cores (80 s on a
loaded machine), most of it eight playbook runs (ansible starts one Python per host and task)
and one ansible-lint run.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fortiauto.api import resolve_device
from fortiauto.errors import InputError
from fortiauto.fleet import new_run_id
from fortiauto.site import CertificateSpec, Device, MailServer, PolicyRef, ProbeSpec, ProbeTransaction
from fortiauto_lab.server import LabThread
from tests.e2e.ansible_kit import (
    BIN,
    FAST_PROBE,
    MODULE,
    PLAYBOOKS,
    REPO,
    ansible_env,
    inventory_variant,
    run_playbook,
)
from tests.integration.engine.labkit import Control, site_variant

pytestmark = pytest.mark.e2e

DEVICES = 10
FAULTED = "fgt-003"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


@dataclass
class AnsibleLab:
    state_dir: Path
    info: dict[str, Any]
    controls: dict[str, Control]

    @property
    def hosts(self) -> Path:
        return self.state_dir / "hosts.yml"

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


def _no_secrets(text: str, lab: AnsibleLab) -> None:
    leaked = [token[:4] + "..." for token in lab.tokens() if token in text]
    assert not leaked, f"API tokens in ansible output: {leaked}"
    assert "PRIVATE KEY" not in text


@pytest.mark.timeout(300)
def test_check_diff_reports_every_change_and_writes_nothing(ansible_lab, tmp_path):
    ansible_lab.reset()
    pristine = ansible_lab.states()

    run = run_playbook("site.yml", ansible_lab.hosts, "--check", "--diff", home=tmp_path)

    assert run.returncode == 0, run.output
    assert run.hosts_with("changed", 1) == ansible_lab.names
    for name in ansible_lab.names:
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
    # --diff: before/after per object, e.g. the policy moving to proxy mode with the new profiles
    assert "+++ after: firewall/policy/1 (vdom root, update)" in run.stdout
    assert '-    "inspection-mode": "flow",' in run.stdout
    assert '+    "inspection-mode": "proxy",' in run.stdout
    assert "(check mode: nothing written)" in run.stdout
    assert ansible_lab.writes() == dict.fromkeys(ansible_lab.names, 0)
    assert ansible_lab.states() == pristine
    _no_secrets(run.output, ansible_lab)


@pytest.mark.timeout(300)
def test_apply_rerun_compliance_and_rollback_by_run_id(ansible_lab, tmp_path):
    ansible_lab.reset()
    pristine = ansible_lab.states()
    ansible_lab.controls[FAULTED].faults("banner-hold-on-utm")
    hosts = inventory_variant(
        ansible_lab.hosts, "fast", probe=FAST_PROBE, host_vars={FAULTED: {"fortiauto_fallback": []}}
    )
    healthy = ansible_lab.names - {FAULTED}
    run_id = new_run_id()

    # A real run: every healthy host changes; the faulted one fails, after its rollback.
    apply = run_playbook("site.yml", hosts, home=tmp_path, extra_vars={"fortiauto_run_id": run_id})

    assert apply.returncode == 2, apply.output  # ansible-playbook: some host failed
    assert apply.hosts_with("changed", 1) == healthy
    assert apply.hosts_with("failed", 1) == {FAULTED}
    for name in healthy:
        result = apply.result(name)
        assert (result["status"], result["effect"], result["fallback_used"]) == ("changed", "logged", None)
        assert (result["run_id"], result["rolled_back"]) == (run_id, False)
        assert result["requests"]["writes"] == 5
    failed = apply.result(FAULTED)
    assert (failed["status"], failed["rolled_back"], failed["changed"]) == ("rolled_back", True, False)
    assert "probe failed after change (full: F4 banner-timeout)" in failed["msg"]
    assert "rolled back, pre-change state verified" in failed["msg"]
    assert "mail flows again" in failed["msg"]
    assert [(p["stage"], p["passed"]) for p in failed["probes"]] == [
        ("baseline", True),
        ("after", False),
        ("confirm", True),
    ]
    applied = ansible_lab.states()
    assert applied[FAULTED] == pristine[FAULTED]
    assert all(applied[name] != pristine[name] for name in healthy)
    assert f"rolled back 1 ['{FAULTED}']" in apply.stdout

    # A re-run changes nothing: the healthy hosts are compliant, the faulted one rolls back again.
    rerun = run_playbook("site.yml", hosts, home=tmp_path)

    assert rerun.hosts_with("changed", 0) == ansible_lab.names, rerun.output
    assert {rerun.result(name)["status"] for name in healthy} == {"unchanged"}
    assert rerun.result(FAULTED)["status"] == "rolled_back"
    rerun_id = rerun.result("fgt-001")["run_id"]
    assert RUN_ID.fullmatch(rerun_id)
    assert rerun_id != run_id
    assert ansible_lab.states() == applied

    # The compliance report is read-only; the rolled-back host is the only drift.
    writes = ansible_lab.writes()
    report = tmp_path / "compliance.json"
    check = run_playbook("check.yml", hosts, home=tmp_path, extra_vars={"fortiauto_report_file": str(report)})

    assert check.returncode == 0, check.output
    compliance = json.loads(report.read_text())
    assert set(compliance["compliant"]) == healthy
    assert (compliance["drift"], compliance["unknown"]) == ([FAULTED], [])
    assert compliance["changes"] == {name: 0 if name in healthy else 5 for name in ansible_lab.names}
    assert "compliant 9 of 10; drift: fgt-003; unknown: none" in check.stdout
    assert ansible_lab.writes() == writes

    # Rollback by run id: every device back to its state before the run, byte for byte.
    rollback = run_playbook("rollback.yml", hosts, home=tmp_path, extra_vars={"fortiauto_run_id": run_id})

    assert rollback.returncode == 0, rollback.output
    assert rollback.hosts_with("changed", 1) == healthy
    assert rollback.result(FAULTED)["status"] == "unchanged"  # its own rollback already undid it
    assert ansible_lab.states() == pristine
    for run in (apply, rerun, check, rollback):
        _no_secrets(run.output, ansible_lab)


@pytest.mark.timeout(120)
def test_secret_arguments_are_masked_and_a_site_file_works(ansible_lab, tmp_path):
    ansible_lab.reset()
    token_hosts = inventory_variant(
        ansible_lab.hosts,
        "token",
        drop_host_vars=("fortiauto_token_file",),
        host_vars={d["name"]: {"fortiauto_token": d["token"]} for d in ansible_lab.info["devices"]},
    )
    # -vvvv prints every module invocation with its arguments: the token must show masked.
    verbose = run_playbook("check.yml", token_hosts, "-vvv", "--limit", "fgt-001,fgt-002", home=tmp_path)

    assert verbose.returncode == 0, verbose.output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in verbose.stdout
    _no_secrets(verbose.output, ansible_lab)

    site = site_variant(ansible_lab.state_dir / "site.yml", "ansible", probe=FAST_PROBE)
    site_hosts = tmp_path / "site-hosts.yml"
    site_hosts.write_text(
        yaml.safe_dump(
            {
                "fortigates": {
                    "hosts": {"fgt-001": {}, "fgt-002": {}},
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "fortiauto_site": str(site),
                    },
                }
            }
        )
    )
    planned = run_playbook("site.yml", site_hosts, "--check", home=tmp_path)

    assert planned.returncode == 0, planned.output
    assert {planned.result(n)["status"] for n in ("fgt-001", "fgt-002")} == {"changed"}
    assert ansible_lab.writes() == dict.fromkeys(ansible_lab.names, 0)


def test_a_site_file_replaces_device_arguments(ansible_lab):
    site = str(ansible_lab.state_dir / "site.yml")
    with pytest.raises(InputError, match=r"drop the device arguments \(url\) or the site"):
        resolve_device({"site": site, "device": "fgt-001", "url": "https://127.0.0.1:1"})
    with pytest.raises(InputError, match="no device named 'fgt-999'"):
        resolve_device({"site": site, "device": "fgt-999"})


# -- the module's documentation and the playbooks' lint ------------------------------------------


def _load_module() -> Any:
    spec = importlib.util.spec_from_file_location(MODULE, PLAYBOOKS / "library" / f"{MODULE}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spec_from_docs(options: dict[str, Any]) -> dict[str, Any]:
    """DOCUMENTATION's options in argument_spec shape (the keys both can state)."""
    out: dict[str, Any] = {}
    for name, doc in options.items():
        entry = {k: doc[k] for k in ("type", "choices", "default", "elements") if k in doc}
        if doc.get("required"):
            entry["required"] = True
        if "suboptions" in doc:
            entry["options"] = _spec_from_docs(doc["suboptions"])
        out[name] = entry
    return out


def _comparable(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, entry in spec.items():
        kept = {k: v for k, v in entry.items() if k not in ("no_log", "options")}
        if "options" in entry:
            kept["options"] = _comparable(entry["options"])
        out[name] = kept
    return out


def test_documented_options_match_the_argument_spec():
    module = _load_module()
    docs = yaml.safe_load(module.DOCUMENTATION)
    assert _spec_from_docs(docs["options"]) == _comparable(module.ARGUMENT_SPEC)
    returned = yaml.safe_load(module.RETURN)
    assert {"msg", "status", "changes", "tasks", "probe", "rolled_back", "fallback_used"} <= set(returned)
    assert yaml.safe_load(module.EXAMPLES)


def _keys(model: Any) -> set[str]:
    return set(model.model_fields) - set(getattr(model, "LOADER_FIELDS", ()))


def test_module_options_cover_every_site_file_key():
    """A key added to the site file must reach the module too (or this names it)."""
    spec = _load_module().ARGUMENT_SPEC
    assert _keys(Device) - {"name"} <= set(spec)
    servers = spec["mail_servers"]["options"]
    assert set(servers) == _keys(MailServer)
    assert set(servers["policy"]["options"]) == _keys(PolicyRef)
    assert set(servers["certificate"]["options"]) == _keys(CertificateSpec)
    assert set(servers["probe"]["options"]) == _keys(ProbeSpec)
    assert set(servers["probe"]["options"]["transaction"]["options"]) == _keys(ProbeTransaction)
    no_log = {"token", "password"}
    assert {name for name, option in spec.items() if option.get("no_log")} == no_log
    assert servers["certificate"]["options"]["passphrase"]["no_log"] is True
    assert servers["probe"]["options"]["password"]["no_log"] is True


def test_ansible_doc_renders_the_module(tmp_path):
    done = subprocess.run(
        [str(BIN / "ansible-doc"), "-M", str(PLAYBOOKS / "library"), MODULE],
        env=ansible_env(tmp_path) | {"COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr
    for heading in ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES"):
        assert heading in done.stdout


@pytest.mark.timeout(180)
def test_ansible_lint_production_profile_passes(tmp_path):
    done = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor", "playbooks/"],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


_ADHOC = re.compile(r"^(?P<host>\S+) \| SUCCESS => (?P<json>\{.*?^\})", re.MULTILINE | re.DOTALL)


def test_example_inventory_renders_valid_module_arguments(tmp_path):
    """inventory/ansible/: group and host vars render to arguments the loader accepts (certificates too)."""
    args = (
        '{{ {"url": fortiauto_url, "vdom": fortiauto_vdom | default(None), "timeout": fortiauto_timeout,'
        ' "verify_tls": fortiauto_verify_tls, "mail_servers": fortiauto_mail_servers} }}'
    )
    command = [str(BIN / "ansible"), "-i", "inventory/ansible", "fortigates", "-m", "ansible.builtin.debug"]
    done = subprocess.run(
        [*command, "-a", f"msg={args}"],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = {m["host"]: json.loads(m["json"])["msg"] for m in _ADHOC.finditer(done.stdout)}
    assert set(rendered) == {"fgt-branch-1", "fgt-branch-2", "fgt-edge-1"}
    # The token files are per site and not in the repository: stand in a token.
    devices = {
        host: resolve_device(params | {"device": host, "token": "example"}, cwd=tmp_path).device
        for host, params in rendered.items()
    }
    assert all(d.mail_servers[0].certificate.fingerprint_sha256 for d in devices.values())
    # ansible prints hosts in completion order: compare per host, not by position
    assert {host: d.mail_servers[0].fallback for host, d in devices.items()} == {
        "fgt-branch-1": ("certificate-inspection",),
        "fgt-branch-2": ("certificate-inspection",),
        "fgt-edge-1": (),
    }
    assert (devices["fgt-branch-2"].vdom, devices["fgt-edge-1"].vdom) == ("mail", "root")
