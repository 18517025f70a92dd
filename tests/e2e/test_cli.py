"""The ``fortiauto`` command as a user runs it: a subprocess against a 20-device ``fortiauto lab up``.

Covers the CLI contracts of docs/design.md (validate, plan --output cli, --limit globs, --output json,
--report-dir, fleet rollback --run) and the progress display of issue 6: a live view on a
terminal, plain lines on a pipe. The live reporter's logic is tested first, in-process, on a
rich Console that believes it is a terminal. One lab for the module; every test resets it.
"""

from __future__ import annotations

import io
import json
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from rich.console import Console

from fortiauto.events import Events
from fortiauto.report.console import ConsoleReporter
from fortiauto.report.live import LiveReporter, fleet_reporters
from fortiauto.results import Change, DeviceResult, Plan, ProbeResult
from fortiauto.transaction import DeviceTransaction as DeviceRun
from fortiauto.transaction import TransactionOptions as EngineOptions
from tests.e2e.clikit import (
    Fleet,
    assert_no_traceback,
    fleet_running,
    run_cli,
    run_in_pty,
    statuses,
)
from tests.unit.fakes import FakeFortiGate, FakeProber, factory, make_device

e2e = pytest.mark.e2e
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# -- the live reporter, in-process ---------------------------------------------------------------


def _terminal(height: int = 40) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, height=height, color_system=None), buffer


def _text(console: Console, renderable: object) -> str:
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def _change(mkey: str) -> Change:
    return Change("emailfilter", "emailfilter/profile", mkey, "create", None, {"spam-log": "enable"})


async def test_live_reporter_follows_a_real_device_run_to_the_end():
    """The engine's real event sequence (fake FortiGate) drives the rows and the progress bar."""
    console, buffer = _terminal()
    gate = FakeFortiGate()
    live = LiveReporter(console, ["fgt-1", "fgt-2"], show_diff=True, auto_refresh=False)
    with live:
        result = await DeviceRun(
            make_device(),
            options=EngineOptions(run_id="20261124T221503Z-1a2b3c"),
            client_factory=factory(gate),
            prober=FakeProber(gate),
            events=Events([live]),
        ).run()
        mid = _text(console, live)
    assert result.status == "changed"
    row = live.rows["fgt-1"]
    assert (row.phase, row.status, row.applied) == ("done", "changed", row.planned)
    assert row.planned >= 4
    assert live.rows["fgt-2"].phase == "pending"
    assert live.done == 1
    assert "1/2" in mid  # progress: devices done / total
    assert "1 changed" in mid
    assert re.search(r"fgt-1 .*done .*changed .*applied and probe passed", mid)
    assert re.search(r"fgt-2 .*pending", mid)
    printed = buffer.getvalue()
    assert "fgt-1: changed - applied and probe passed" in _ANSI.sub("", printed)
    assert "emailfilter/profile" in printed  # --diff: the plan is printed above the view
    assert "\x1b[" in printed  # drawn in place with cursor movements: a terminal display


def test_live_reporter_phase_per_event():
    console, _ = _terminal()
    live = LiveReporter(console, ["a", "b", "c"], auto_refresh=False)
    passed = ProbeResult(passed=True, mode="starttls")
    failed = ProbeResult(passed=False, mode="starttls", failure_class="F4 banner-timeout")
    plan = Plan("a", "7.0.15", (_change("p1"), _change("p2")))

    live.device_started("a")
    assert (live.rows["a"].phase, live.rows["a"].detail) == ("connect", "started")
    live.probe_finished("a", "baseline", passed)
    assert live.rows["a"].phase == "plan"
    live.change_planned("a", plan)
    assert (live.rows["a"].phase, live.rows["a"].detail) == ("apply", "0/2 change(s) planned")
    live.change_applied("a", plan.changes[0])
    assert live.rows["a"].phase == "apply"
    assert live.rows["a"].detail.startswith("1/2 applied: create emailfilter/profile/p1")
    live.change_applied("a", plan.changes[1])
    assert live.rows["a"].phase == "probe"  # every write done: the engine probes next
    live.probe_finished("a", "after", failed)
    assert live.rows["a"].phase == "rollback"
    assert "F4 banner-timeout" in live.rows["a"].detail
    live.probe_finished("a", "confirm", passed)
    assert live.rows["a"].phase == "rollback"
    live.change_planned("a", Plan("a", "7.0.15", (_change("p1"),), rung="certificate-inspection"))
    assert live.rows["a"].detail == "0/1 change(s) planned (fallback rung certificate-inspection)"

    live.device_started("b")
    live.probe_finished("b", "baseline", failed)
    assert live.rows["b"].phase == "baseline"
    live.device_finished(DeviceResult(name="b", status="skipped", reason="baseline probe failed"))
    live.device_finished(DeviceResult(name="a", status="rolled_back", reason="probe failed [F4]"))
    assert live.done == 2
    assert live.rows["c"].phase == "pending"
    drawn = _text(console, live)
    assert "2/3" in drawn
    assert "1 rolled_back · 1 skipped" in drawn
    assert "probe failed [F4]" in drawn  # reasons are text, never rich markup


def test_live_table_shows_in_flight_devices_first_and_counts_the_rest():
    console, _ = _terminal()
    names = [f"fgt-{i:03d}" for i in range(1, 11)]
    live = LiveReporter(console, names, max_rows=4, auto_refresh=False)
    live.device_started("fgt-001")
    live.device_finished(DeviceResult(name="fgt-001", status="changed", reason="ok"))
    live.device_started("fgt-002")
    live.device_started("fgt-003")
    shown, hidden = live.visible_rows(4)
    assert [r.name for r in shown] == ["fgt-002", "fgt-003", "fgt-001", "fgt-004"]
    assert hidden == 6
    drawn = _text(console, live)
    assert "... and 6 more device(s)" in drawn
    assert "fgt-010" not in drawn


def test_live_reporter_adds_a_device_it_was_not_told_about():
    console, _ = _terminal()
    live = LiveReporter(console, ["a"], auto_refresh=False)
    live.device_finished(DeviceResult(name="z", status="unchanged", reason="nothing left to undo"))
    assert list(live.rows) == ["a", "z"]
    assert "1/2" in _text(console, live)


def test_reporter_choice_terminal_pipe_quiet():
    terminal, _ = _terminal()
    with fleet_reporters(terminal, ["a"]) as reporters:
        assert [type(r) for r in reporters] == [LiveReporter]
    pipe = Console(file=io.StringIO())
    with fleet_reporters(pipe, ["a"]) as reporters:
        assert [type(r) for r in reporters] == [ConsoleReporter]
    with fleet_reporters(terminal, ["a"], quiet=True) as reporters:
        assert reporters == []


# -- the CLI against the lab ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("cli") / "lab", devices=20) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    return lab_process


@e2e
def test_validate_bad_site_one_line_per_problem_exit_2(tmp_path):
    site = tmp_path / "bad.yml"
    site.write_text(
        "version: 1\n"
        "defaults: {vdom: root, timeout: -3}\n"
        "rollout: {canary: 1, batch_size: 0}\n"
        "devices:\n"
        "  - name: fgt-x\n"
        "    url: ftp://nope\n"
        "    token: ${env:FORTIAUTO_E2E_UNSET_TOKEN}\n"
        "    colour: blue\n"
        "    mail_servers: []\n"
    )
    done = run_cli("validate", site, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    # One line per problem, each naming file:line and the key.
    expected = {
        "bad.yml:2: defaults.timeout",
        "bad.yml:3: rollout.batch_size",
        "bad.yml:6: devices[0].url",
        "bad.yml:7: devices[0].token",
        "bad.yml:8: devices[0].colour",
    }
    assert len(lines) == len(expected), done.stderr
    for prefix in expected:
        assert sum(prefix in line for line in lines) == 1, (prefix, done.stderr)


@e2e
def test_plan_output_cli_prints_change_and_rollback_and_writes_nothing(lab):
    done = run_cli("plan", lab.site, "--output", "cli", "--limit", "fgt-007")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("# fgt-007 (FortiOS 7.0.15): the change")
    for line in (
        "config firewall ssl-ssh-profile",
        "set server-cert-mode replace",
        "config emailfilter profile",
        "set inspection-mode proxy",
        "# fgt-007 (FortiOS 7.0.15): the rollback",
    ):
        assert line in text, line
    assert text.index("the change") < text.index("the rollback")
    assert "PRIVATE KEY" not in text
    requests = lab.requests()
    assert requests["fgt-007"]["total"] > 0
    assert requests["fgt-007"]["writes"] == 0
    assert all(r["total"] == 0 for name, r in requests.items() if name != "fgt-007")
    assert lab.states() == lab.pristine


@e2e
def test_limit_globs_select_exactly_the_matching_devices(lab, tmp_path):
    done = run_cli(
        "apply", lab.site, "--yes", "--output", "json", "--journal-dir", tmp_path / "j",
        "--limit", "fgt-01[0-2]", "--limit", "fgt-02?",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    chosen = ["fgt-010", "fgt-011", "fgt-012", "fgt-020"]
    assert statuses(payload) == dict.fromkeys(chosen, "changed")
    requests = lab.requests()
    assert all(requests[n]["writes"] > 0 for n in chosen)
    assert all(r["total"] == 0 for name, r in requests.items() if name not in chosen)

    refused = run_cli("apply", lab.site, "--yes", "--journal-dir", tmp_path / "j", "--limit", "edge-*")
    assert refused.returncode == 2
    assert "--limit 'edge-*' matches no device" in refused.stderr
    assert_no_traceback(refused.stderr)
    assert lab.requests() == requests  # nothing contacted


@e2e
@pytest.mark.timeout(90)
def test_fleet_apply_json_reports_then_rollback_by_run_id(lab, tmp_path):
    journal, reports = tmp_path / "journal", tmp_path / "reports"
    done = run_cli(
        "apply", lab.site, "--yes", "--output", "json", "--report-dir", reports, "--journal-dir", journal
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)  # stdout is the JSON object and nothing else

    # The JSON contract of docs/design.md.
    assert {"run_id", "started", "finished", "exit_code", "devices"} <= set(payload)
    assert payload["exit_code"] == 0
    assert [d["name"] for d in payload["devices"]] == lab.names
    requests = lab.requests()
    for device in payload["devices"]:
        assert device["status"] == "changed", device
        assert {"name", "status", "reason", "changes", "requests", "probe", "effect"} <= set(device)
        assert {"fallback_used", "mttr_ms"} <= set(device)
        assert device["effect"] == "logged"
        assert device["probe"]["passed"] is True
        assert {"passed", "mode", "failure_class", "steps"} <= set(device["probe"])
        assert all({"step", "ms", "ok", "detail"} <= set(s) for s in device["probe"]["steps"])
        assert len(device["changes"]) == 5
        assert all({"task", "path", "mkey", "action", "diff"} <= set(c) for c in device["changes"])
        # fortiauto's own count of its requests is what the lab saw; the lab does not count the
        # configuration revision saved before the first write as a configuration write, fortiauto
        # counts every request that is not a read.
        seen = requests[device["name"]]
        saves = sum(1 for e in seen["log"] if e["method"] == "POST" and "config-revision" in e["path"])
        assert device["requests"]["total"] == seen["total"]
        assert device["requests"]["writes"] == seen["writes"] + saves

    # --report-dir: JSON (same object), JUnit (one testcase per device), Markdown; all 0600.
    run_id = payload["run_id"]
    files = {p.name: p for p in reports.iterdir()}
    assert set(files) == {f"{run_id}.json", f"{run_id}.junit.xml", f"{run_id}.md", f"{run_id}.html"}
    assert stat.S_IMODE(reports.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files.values())
    assert json.loads(files[f"{run_id}.json"].read_text()) == payload
    cases = ET.parse(files[f"{run_id}.junit.xml"]).getroot().iter("testcase")
    assert sorted(c.get("name", "") for c in cases) == lab.names
    markdown = files[f"{run_id}.md"].read_text()
    assert run_id in markdown
    assert f"fortiauto rollback --run {run_id}" in markdown
    outputs = [done.stdout, done.stderr, *(p.read_text() for p in files.values())]
    for secret in lab.secrets():
        assert all(secret not in text for text in outputs)

    # Fleet rollback by run id: every device back to its byte-identical seed state, concurrently.
    undone = run_cli("rollback", "--yes", "--run", run_id, "--journal-dir", journal, "--output", "json")
    assert undone.returncode == 0, undone.stderr
    assert statuses(json.loads(undone.stdout)) == dict.fromkeys(lab.names, "rolled_back")
    assert lab.states() == lab.pristine
    mark = lab.requests()
    again = run_cli("rollback", "--yes", "--run", run_id, "--journal-dir", journal, "--output", "json")
    assert again.returncode == 0, again.stderr
    assert statuses(json.loads(again.stdout)) == dict.fromkeys(lab.names, "unchanged")
    assert all(r["writes"] == mark[n]["writes"] for n, r in lab.requests().items())


@e2e
def test_progress_live_on_a_terminal_plain_lines_on_a_pipe(lab, tmp_path):
    code, out, screen = run_in_pty(
        "apply", lab.site, "--yes", "--journal-dir", tmp_path / "tty", "--limit", "fgt-00[1-3]"
    )
    assert code == 0, screen
    assert "3/3" in _ANSI.sub("", screen)  # the progress bar reached devices done / total
    assert re.search(r"device\s.*phase\s.*status\s.*detail", _ANSI.sub("", screen))  # the live table
    assert "\x1b[2K" in screen  # redrawn in place (erase line), not appended
    assert "fgt-003: changed - applied and probe passed" in _ANSI.sub("", screen)
    assert "run " in out  # the summary table still goes to stdout

    piped = run_cli("apply", lab.site, "--yes", "--journal-dir", tmp_path / "pipe", "--limit", "fgt-00[4-5]")
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stderr
    lines = piped.stderr.splitlines()
    assert "fgt-004: started" in lines
    assert "fgt-005: changed - applied and probe passed" in lines
