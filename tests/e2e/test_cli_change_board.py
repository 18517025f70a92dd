"""Issue 19 through the CLI, as a FortiGate admin uses it: saved plans, the prompt, --wait, validate.

A real ``fortiauto`` process against a ``fortiauto lab up`` process. Another admin's edit is made
through the lab device's own REST API (as it would be on a real unit); what fortiauto wrote is
judged by the lab's request log and canonical state dumps, never by fortiauto's own objects.
Prompts are answered on a pseudo-terminal (stdin and stderr are the terminal, stdout a pipe).
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.e2e.clikit import (
    FORTIAUTO,
    Fleet,
    assert_no_traceback,
    cli_env,
    finish,
    fleet_running,
    run_cli,
    site_variant,
    spawn_cli,
    statuses,
)

pytestmark = pytest.mark.e2e
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("board") / "lab", devices=4) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    return lab_process


def _writes(lab: Fleet) -> dict[str, int]:
    return {name: r["writes"] for name, r in lab.requests().items()}


def _other_admin_sets(lab: Fleet, device: str, path: str, body: dict[str, Any]) -> None:
    """Another admin's edit, through the device's own REST API."""
    info = next(d for d in lab.info["devices"] if d["name"] == device)
    headers = {"Authorization": f"Bearer {info['token']}"}
    trust = ssl.create_default_context(cafile=lab.ca)
    with httpx.Client(base_url=info["url"], verify=trust, headers=headers) as client:
        answer = client.put(f"/api/v2/cmdb/{path}", params={"vdom": "root"}, json=body)
    assert answer.status_code == 200, answer.text


class Terminal:
    """``fortiauto ARGS`` with stdin and stderr on a pseudo-terminal: what a human at a prompt sees."""

    def __init__(self, *args: str | Path) -> None:
        self.master, slave = pty.openpty()
        env = cli_env()
        env.pop("NO_COLOR")
        self.proc = subprocess.Popen(
            [FORTIAUTO, *map(str, args)],
            env=env,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        self.screen = b""

    def read_until(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self._read(0.1)):
                self.proc.kill()
                self.proc.communicate()
                os.close(self.master)
                raise AssertionError(f"{text!r} never appeared; screen:\n{self.text()}")
            self._read(0.2)
        return self.text()

    def _read(self, wait: float) -> bool:
        if not select.select([self.master], [], [], wait)[0]:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:
            return False
        self.screen += chunk
        return bool(chunk)

    def text(self) -> str:
        return _ANSI.sub("", self.screen.decode("utf-8", "replace")).replace("\r", "")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self) -> tuple[int, str, str]:
        deadline = time.monotonic() + 90
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        while self._read(0.05):
            pass
        try:
            code, out, _ = finish(self.proc, timeout=5)
        except AssertionError as exc:  # say what the terminal showed, not only that it hung
            raise AssertionError(f"{exc}\nscreen:\n{self.text()}") from None
        finally:
            os.close(self.master)
        return code, out, self.text()


# -- 1. plan totals, plan --out, apply --plan ----------------------------------------------------


def test_plan_ends_with_totals_and_saves_a_plan_that_apply_applies_exactly(lab, tmp_path):
    saved = tmp_path / "plan.json"
    done = run_cli("plan", lab.site, "--out", saved)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    # Four devices, each: certificate import + 3 profile creates + the policy update.
    assert last == (
        "Plan: 4 device(s) to change, 0 already compliant, 0 refused; "
        "objects: 16 to create, 4 to update, 0 to delete"
    )
    assert f"plan saved: {saved}" in done.stderr
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    assert all(w == 0 for w in _writes(lab).values())
    record = json.loads(saved.read_text())
    assert record["format"] == "fortiauto-plan/1"
    assert list(record["devices"]) == lab.names
    for secret in lab.secrets():
        assert secret not in saved.read_text()

    as_json = run_cli("plan", lab.site, "--output", "json", "--limit", "fgt-001")
    assert json.loads(as_json.stdout)["totals"]["objects_to_create"] == 4

    # Another admin moves fgt-002's policy to another SSL profile after the plan was saved.
    _other_admin_sets(lab, "fgt-002", "firewall/policy/1", {"ssl-ssh-profile": "deep-inspection"})
    before = lab.states(["fgt-002"])
    writes = _writes(lab)
    applied = run_cli(
        "apply", lab.site, "--plan", saved, "--yes", "--output", "json", "--journal-dir", tmp_path / "j"
    )
    assert_no_traceback(applied.stderr)
    assert applied.returncode == 5, applied.stderr  # a refused device; the others changed
    payload = json.loads(applied.stdout)
    assert statuses(payload) == {
        "fgt-001": "changed",
        "fgt-002": "refused",
        "fgt-003": "changed",
        "fgt-004": "changed",
    }
    reason = next(d["reason"] for d in payload["devices"] if d["name"] == "fgt-002")
    assert "changed since the saved plan" in reason
    moved = 'ssl-ssh-profile on the device was "certificate-inspection", now "deep-inspection"'
    assert f"update firewall/policy/1 (vdom root): {moved}" in reason
    assert "nothing was written" in reason
    after = _writes(lab)
    assert after["fgt-002"] == writes["fgt-002"]  # not one write to the drifted device
    assert lab.states(["fgt-002"]) == before
    assert all(after[n] > writes[n] for n in ("fgt-001", "fgt-003", "fgt-004"))
    # What was applied is exactly what was saved: the changes of a device match the plan file's.
    fgt1 = next(d for d in payload["devices"] if d["name"] == "fgt-001")
    planned = [(c["action"], c["path"], str(c["mkey"])) for c in record["devices"]["fgt-001"]["changes"]]
    assert [(c["action"], c["path"], str(c["mkey"])) for c in fgt1["changes"]] == planned


def test_a_saved_plan_of_an_edited_site_file_is_refused_before_contacting_anything(lab, tmp_path):
    site = site_variant(lab, "edited")
    saved = tmp_path / "plan.json"
    assert run_cli("plan", site, "--out", saved).returncode == 0
    mark = lab.requests()
    site.write_text(site.read_text() + "\n# edited after the plan\n")
    done = run_cli("apply", site, "--plan", saved, "--yes", "--journal-dir", tmp_path / "j")
    assert done.returncode == 2
    assert f"{site} changed since the plan was saved" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    other = run_cli("apply", lab.site, "--plan", saved, "--yes", "--journal-dir", tmp_path / "j")
    assert other.returncode == 2
    assert "saved for" in other.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert "not a saved plan" in run_cli("apply", lab.site, "--plan", garbage, "--yes").stderr
    assert lab.requests() == mark


# -- 2. the confirmation prompt, rollback's prompt, Ctrl-C at a prompt ----------------------------


def test_the_prompt_summarises_order_window_probes_and_outage_then_no_changes_nothing(lab, tmp_path):
    start = datetime.now(UTC) - timedelta(minutes=5)
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    site = site_variant(
        lab, "board", rollout={"canary": 1, "batch_size": 2, "concurrency": 2}, change_window=window
    )
    term = Terminal("apply", site, "--journal-dir", tmp_path / "j")
    screen = term.read_until("Apply these changes?")
    assert "Plan: 4 device(s) to change, 0 already compliant, 0 refused" in screen
    assert "canary: fgt-001 (alone; the run halts if it fails)" in screen
    assert "batch 1: fgt-002, fgt-003" in screen
    assert "batch 2: fgt-004" in screen
    assert "up to 2 device(s) at once" in screen
    assert re.search(r"Change window: \S+ - \S+, closes in 1 h 5\d min", screen), screen
    probes = r"starttls from this machine; delivery confirmed in the mailbox: "
    probes += r"fgt-001/mx1 -> 127\.0\.0\.1:\d+ and 3 more"
    assert re.search(probes, screen), screen
    assert re.search(r"mail through that VIP may be broken for up to \d+ (s|min)", screen), screen
    term.type("n")
    code, _, screen = term.finish()
    assert code == 2
    assert "not confirmed; nothing was changed" in screen
    assert all(w == 0 for w in _writes(lab).values())


def test_ctrl_c_at_the_apply_prompt_exits_130_and_changes_nothing(lab, tmp_path):
    term = Terminal("apply", lab.site, "--journal-dir", tmp_path / "j")
    term.read_until("Apply these changes?")
    term.proc.send_signal(signal.SIGINT)
    code, _, screen = term.finish()
    assert code == 130, screen
    assert "nothing was changed" in screen
    assert_no_traceback(screen)
    assert all(w == 0 for w in _writes(lab).values())


def test_rollback_confirms_on_a_terminal_and_refuses_without_one(lab, tmp_path):
    journal = tmp_path / "j"
    done = run_cli(
        "apply", lab.site, "--yes", "--limit", "fgt-001", "--output", "json", "--journal-dir", journal
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    changed = lab.states(["fgt-001"])
    writes = _writes(lab)

    refused = run_cli("rollback", "--last", "--journal-dir", journal)
    assert refused.returncode == 2
    assert "rollback needs --yes when not run from a terminal; nothing was changed" in refused.stderr
    assert f"About to undo run {run_id}" in refused.stderr
    assert "fgt-001: 5 write(s) to undo" in refused.stderr
    assert _writes(lab) == writes
    assert lab.states(["fgt-001"]) == changed

    term = Terminal("rollback", "--last", "--journal-dir", journal)
    term.read_until("Undo these writes?")
    term.proc.send_signal(signal.SIGINT)
    code, _, screen = term.finish()
    assert code == 130
    assert "nothing was changed" in screen
    assert _writes(lab) == writes

    term = Terminal("rollback", "--last", "--journal-dir", journal)
    term.read_until("Undo these writes?")
    term.type("y")
    code, _, screen = term.finish()
    assert code == 0, screen
    assert lab.states(["fgt-001"]) == {"fgt-001": lab.pristine["fgt-001"]}
    # Nothing left to undo: no question, even without a terminal.
    again = run_cli("rollback", "--last", "--journal-dir", journal)
    assert again.returncode == 0, again.stderr
    assert "nothing left to undo" in again.stdout


# -- 3. --wait ------------------------------------------------------------------------------------


def _window_in(seconds: float) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(seconds=seconds)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}


def test_wait_says_when_it_starts_then_starts(lab, tmp_path):
    site = site_variant(lab, "wait-soon", change_window=_window_in(4))
    done = run_cli("apply", site, "--yes", "--wait", "--limit", "fgt-001", "--journal-dir", tmp_path / "j")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    waiting = next(line for line in lines if line.startswith("waiting for the change window: starts at "))
    assert re.search(r"UTC, in [1-4] s", waiting), waiting
    assert lines.index("the change window is open: starting") < lines.index("fgt-001: started")


def test_ctrl_c_while_waiting_stops_at_once_and_nothing_is_contacted(lab, tmp_path):
    site = site_variant(lab, "wait-long", change_window=_window_in(600))
    proc = spawn_cli("apply", site, "--yes", "--wait", "--journal-dir", tmp_path / "j")
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("waiting for the change window: starts at "), first
    assert "in 9 min" in first or "in 10 min" in first
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130
    assert "interrupt: stopped waiting for the change window; nothing was changed" in err
    assert all(r["total"] == 0 for r in lab.requests().values())


def test_wait_counts_down_on_a_terminal(lab, tmp_path):
    site = site_variant(lab, "wait-tty", change_window=_window_in(4))
    term = Terminal("apply", site, "--yes", "--wait", "--limit", "fgt-001", "--journal-dir", tmp_path / "j")
    code, _, screen = term.finish()
    assert code == 0, screen
    # The status line is redrawn in place as the seconds go by.
    assert len(set(re.findall(r"UTC, in (\d) s", screen))) >= 2, screen
    assert "the change window is open: starting" in screen


# -- 4. validate says what it checked --------------------------------------------------------------


def test_validate_names_what_it_checked_for_each_mail_server(lab):
    done = run_cli("validate", lab.site)
    assert done.returncode == 0, done.stderr
    pem = (lab.state_dir / "certs" / "mx1.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    text = done.stdout
    assert text.count("fgt-00") >= 4
    assert f"subject: {cert.subject.rfc4514_string()}" in text
    assert "SANs: mx1.example.test" in text
    assert f"to {cert.not_valid_after_utc:%Y-%m-%d}" in text
    assert ":".join(digest[i : i + 2] for i in range(0, 64, 2)) in text
    assert "key: RSA 2048, belongs to the certificate" in text
    assert "PRIVATE KEY" not in text
    assert text.strip().splitlines()[-1].endswith("valid (4 device(s), 4 mail server(s))")
