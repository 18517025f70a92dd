"""The policy the site names must be the inbound mail policy: checked before any write, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.e2e.clikit import Fleet, assert_no_traceback, fleet_running, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("policy") / "lab", devices=1) as fleet:
        yield fleet


def _site(lab: Fleet, name: str, **mail_server: object) -> Path:
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    for server in data["devices"][0]["mail_servers"]:
        server.update(mail_server)
        server["probe"].update({"timeout": 2, "retries": 1, "retry_delay": 0.1})
        server.pop("fallback", None)
    out = lab.site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def test_the_outbound_internet_policy_is_refused_before_any_write(lab, tmp_path):
    lab.reset()
    site = _site(lab, "outbound", policy={"id": 2})  # the lab's outbound policy: dstaddr all, service ALL
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", tmp_path / "j")
    assert_no_traceback(done.stderr)
    device = json.loads(done.stdout)["devices"][0]
    assert (done.returncode, device["status"]) == (2, "failed"), device["reason"]
    assert "policy 2 (outbound-internet) sends traffic to all, not to a VIP" in device["reason"]
    assert "allow_any_policy" in device["reason"]
    assert lab.requests()["fgt-001"]["writes"] == 0
    assert lab.states() == lab.pristine


def test_allow_any_policy_changes_it_and_says_the_effect_is_unproven(lab, tmp_path):
    lab.reset()
    site = _site(lab, "anypolicy", policy={"id": 2}, allow_any_policy=True)
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", tmp_path / "j")
    assert_no_traceback(done.stderr)
    device = json.loads(done.stdout)["devices"][0]
    # Mail still flows through the VIP's own policy, which was not changed: nothing is logged.
    assert (done.returncode, device["status"], device["effect"]) == (6, "unproven", "not_logged"), device
    undo = run_cli("rollback", "--yes", "--last", "--journal-dir", tmp_path / "j")
    assert undo.returncode == 0, undo.stderr
    assert lab.states() == lab.pristine
