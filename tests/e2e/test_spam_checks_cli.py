"""The probe must not trip the checks it turns on (issue 16): `fortiauto apply` meets the email filter.

The lab's email filter applies FortiOS's SMTP anti-spam checks to mail it can read
(fortiauto_lab/antispam.py). fortiauto creates its profile with spam filtering on (FortiGuard IP,
URL and checksum checks, tag only): its own probe, with the default identity, passes them and
the fix is proven. When the vantage's address is on FortiGuard's list (the ``fortiguard-listed``
state), the probe's message arrives tagged and the log line names the check: mail flows, the
change stays, and the run ends unproven (exit 6) with F18 and that check, not as a mail outage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clikit import Fleet, assert_no_traceback, lab_running, run_cli

pytestmark = pytest.mark.e2e

FORTIGUARD_IP = "FortiGuard-AntiSpam ip, path block/allow ip 127.0.0.1"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    state_dir = tmp_path_factory.mktemp("spam-checks") / "lab"
    with lab_running(state_dir, "--devices", "1") as fleet:
        yield fleet


def _apply(lab: Fleet, journal: Path) -> tuple[int, dict[str, Any], str]:
    done = run_cli("apply", lab.site, "--yes", "--output", "json", "--journal-dir", journal)
    assert_no_traceback(done.stderr)
    payload = json.loads(done.stdout)
    return done.returncode, payload["devices"][0], done.stderr


def _log(lab: Fleet, token: str) -> list[dict[str, str]]:
    response = lab.controls["fgt-001"].http.get("/__lab__/log")
    response.raise_for_status()
    return [entry for entry in response.json() if token in entry.get("subject", "")]


def _created_profile(lab: Fleet) -> dict[str, Any]:
    state = json.loads(lab.controls["fgt-001"].state())
    created = [p for p in state["vdoms"]["root"]["emailfilter/profile"] if p["name"] != "default"]
    assert len(created) == 1, created
    return created[0]


def test_the_default_probe_passes_the_checks_fortiauto_turns_on(lab: Fleet, tmp_path: Path) -> None:
    lab.reset()
    code, device, _ = _apply(lab, tmp_path / "journal")

    assert (code, device["status"], device["effect"]) == (0, "changed", "logged"), device["reason"]
    evidence = device["evidence"]
    assert evidence["action"] == "log-only"
    assert "verdict" not in evidence
    (entry,) = _log(lab, evidence["token"])
    assert (entry["action"], entry["msg"]) == ("log-only", "general email log")
    # The checks really were on: the profile fortiauto created filters spam (tag only).
    profile = _created_profile(lab)
    assert profile["spam-filtering"] == "enable"
    assert set(profile["options"].split()) == {"spamfsip", "spamfsurl", "spamfschksum"}
    assert profile["smtp"]["action"] == "tag"


def test_a_listed_vantage_is_tagged_and_ends_unproven_naming_the_check(lab: Fleet, tmp_path: Path) -> None:
    lab.reset()
    pristine = lab.states()
    lab.faults({"fgt-001": "fortiguard-listed"})  # 127.0.0.1, where the probe comes from
    code, device, stderr = _apply(lab, tmp_path / "journal")

    assert (code, device["status"]) == (6, "unproven"), device["reason"]
    assert "F18 spam-tagged" in device["reason"]
    assert FORTIGUARD_IP in device["reason"]
    assert device["probe"]["failure_class"] == "F18 spam-tagged"
    assert device["evidence"]["verdict"] == f"tagged: {FORTIGUARD_IP}"
    # The change stays (mail flows): nothing was rolled back.
    assert lab.states() != pristine
    assert _created_profile(lab)["spam-filtering"] == "enable"
    # The lab really tagged the probe's message and logged the check.
    token = device["evidence"]["token"]
    (entry,) = _log(lab, token)
    assert (entry["action"], entry["msg"], entry["level"]) == ("tagged", FORTIGUARD_IP, "notice")
    delivered = [m for m in lab.controls["fgt-001"].messages() if token in m["subject"]]
    assert delivered
    assert all(m["subject"].startswith("Spam ") for m in delivered)
    assert all(["X-FEAS-SPAMINFO", FORTIGUARD_IP] in m["headers"] for m in delivered)
    assert "F18" in stderr
