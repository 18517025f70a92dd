"""Issue 6's "done when", end to end: the ``fortiauto`` process against a 20-device ``fortiauto lab up``.

Canary, batches, concurrency, the halt rule, the change window, Ctrl-C (once and twice) and the
site lock, each judged from outside fortiauto: the lab's request logs (with the lab process's
clock, so device timelines compare), its byte-stable state dumps, and fortiauto's JSON output.
One lab for the module; every test resets all devices first. Failing probes are made to fail
fast (short timeouts on the faulty devices only) and fallback rungs are removed where a failure must stay one.
"""

from __future__ import annotations

import itertools
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clikit import (
    FAST_FAILING_PROBE,
    Fleet,
    activity,
    assert_no_traceback,
    finish,
    fleet_running,
    max_overlap,
    run_cli,
    site_variant,
    spawn_cli,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.e2e

# Slows every API request of every device, so a run lasts long enough to be interrupted.
SLOW_API = "api-latency=100"


@pytest.fixture(scope="module")
def lab_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_running(tmp_path_factory.mktemp("rollout") / "lab", devices=20) as fleet:
        yield fleet


@pytest.fixture
def lab(lab_process: Fleet) -> Fleet:
    lab_process.reset()
    assert lab_process.states() == lab_process.pristine  # the reset really is the seed
    return lab_process


def _apply_json(lab: Fleet, site: Path, journal: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", journal, *extra)
    assert_no_traceback(done.stderr)
    payload = json.loads(done.stdout)
    assert payload["exit_code"] == done.returncode
    return done.returncode, payload, done.stderr


def test_failing_canary_halts_with_every_other_device_untouched(lab, tmp_path):
    site = site_variant(
        lab,
        "canary",
        rollout={"canary": 1, "batch_size": 5, "concurrency": 5, "max_failures": 3},
        probe=FAST_FAILING_PROBE,
        probe_devices={"fgt-001"},
        fallback=None,
    )
    lab.faults({"fgt-001": "banner-hold-on-utm"})  # the field report: mail stops after the change

    code, payload, _ = _apply_json(lab, site, tmp_path / "j")

    assert code == 3
    result = statuses(payload)
    assert result.pop("fgt-001") == "rolled_back"
    assert set(result.values()) == {"skipped"}
    assert all(d["reason"] == "halted: the canary failed" for d in payload["devices"][1:])
    assert "halted: the canary failed" in payload["notes"]
    requests = lab.requests()
    assert requests["fgt-001"]["writes"] > 0
    assert {n: r["total"] for n, r in requests.items() if n != "fgt-001"} == dict.fromkeys(lab.names[1:], 0)
    assert lab.states() == lab.pristine  # the canary is back to its byte-identical seed


def test_batches_run_in_order_with_bounded_concurrency(lab, tmp_path):
    concurrency, batch_size = 2, 5
    site = site_variant(
        lab,
        "batches",
        rollout={"canary": 1, "batch_size": batch_size, "concurrency": concurrency, "max_failures": 1},
    )

    code, payload, _ = _apply_json(lab, site, tmp_path / "j")

    assert code == 0
    assert set(statuses(payload).values()) == {"changed"}
    spans: dict[str, tuple[float, float]] = {}
    for name, log in lab.requests().items():
        span = activity(log)
        assert span is not None, f"{name} received no request"
        spans[name] = span
    # Canary alone, then batches of 5 in site order: fgt-001 | 002-006 | 007-011 | 012-016 | 017-020.
    rest = lab.names[1:]
    groups = [lab.names[:1]] + [rest[i : i + batch_size] for i in range(0, len(rest), batch_size)]
    for earlier, later in itertools.pairwise(groups):
        last_of_earlier = max(spans[n][1] for n in earlier)
        first_of_later = min(spans[n][0] for n in later)
        assert last_of_earlier < first_of_later, (earlier, later)
    # Never more than `concurrency` devices between their first and last request at once, and
    # the bound was reached (the rollout does run devices side by side).
    assert max_overlap(spans.values()) == concurrency


def test_max_failures_halts_the_remaining_batches(lab, tmp_path):
    site = site_variant(
        lab,
        "maxfail",
        rollout={"canary": 1, "batch_size": 5, "concurrency": 5, "max_failures": 2},
        probe=FAST_FAILING_PROBE,
        probe_devices={"fgt-002", "fgt-004"},
        fallback=None,
    )
    lab.faults({"fgt-002": "banner-hold-on-utm", "fgt-004": "banner-hold-on-utm"})

    code, payload, _ = _apply_json(lab, site, tmp_path / "j")

    assert code == 3
    result = statuses(payload)
    first_batch = {"fgt-001", "fgt-002", "fgt-003", "fgt-004", "fgt-005", "fgt-006"}
    assert {n: s for n, s in result.items() if n in first_batch} == {
        "fgt-001": "changed",
        "fgt-002": "rolled_back",
        "fgt-003": "changed",
        "fgt-004": "rolled_back",
        "fgt-005": "changed",
        "fgt-006": "changed",
    }
    halted = [d for d in payload["devices"] if d["name"] not in first_batch]
    assert len(halted) == 14
    assert all(
        d["status"] == "skipped" and d["reason"].startswith("halted: 2 device(s) failed") for d in halted
    )
    requests = lab.requests()
    assert all(requests[d["name"]]["total"] == 0 for d in halted)
    states = lab.states(["fgt-002", "fgt-004"])
    assert states == {n: lab.pristine[n] for n in states}


def test_an_ended_change_window_refuses_with_exit_5_and_no_request(lab, tmp_path):
    site = site_variant(
        lab, "ended", change_window={"start": "2020-01-06T22:00:00+01:00", "end": "2020-01-07T02:00:00+01:00"}
    )
    done = run_cli("apply", site, "--yes", "--journal-dir", tmp_path / "j")
    assert done.returncode == 5
    assert "outside the change window" in done.stderr
    assert_no_traceback(done.stderr)
    assert {n: r["total"] for n, r in lab.requests().items()} == dict.fromkeys(lab.names, 0)


def _interruptible_run(lab: Fleet, tmp_path: Path, name: str) -> tuple[Path, subprocess.Popen[str]]:
    """A slow fleet run (3 of a 10-device batch in flight at a time); returns it once batch 2 writes."""
    site = site_variant(
        lab, name, rollout={"canary": 1, "batch_size": 10, "concurrency": 3, "max_failures": 1}
    )
    lab.faults(dict.fromkeys(lab.names[1:], SLOW_API))  # the canary runs at full speed
    proc = spawn_cli("apply", site, "--yes", "--output", "json", "--journal-dir", tmp_path / "j")
    second_batch = lab.names[1:11]
    wait_until(
        lambda: any(r["writes"] for r in lab.requests(second_batch).values()),
        timeout=60,
        what="a device of the second batch to start writing",
    )
    return site, proc


def _assert_each_device_untouched_or_applied_and_green(
    lab: Fleet, site: Path, payload: dict[str, Any]
) -> None:
    """Every device: byte-identical to its seed, or fully applied (an empty plan) with mail flowing."""
    lab.faults(dict.fromkeys(lab.names, "{}"))  # drop the latency; keep the config as the run left it
    states = lab.states()
    applied = [n for n in lab.names if states[n] != lab.pristine[n]]
    if applied:
        args = [arg for n in applied for arg in ("--limit", n)]
        plan = run_cli("plan", site, "--output", "json", *args)
        assert plan.returncode == 0, plan.stderr
        assert statuses(json.loads(plan.stdout)) == dict.fromkeys(applied, "unchanged"), "half-applied device"
    probe = run_cli("probe", site, "--output", "json")
    assert probe.returncode == 0, probe.stderr
    assert all(entry["probe"]["passed"] for entry in json.loads(probe.stdout))
    for device in payload["devices"]:
        if device["status"] == "changed":
            assert device["name"] in applied
        else:
            assert device["name"] not in applied, device


@pytest.mark.timeout(90)
def test_sigint_mid_rollout_lets_in_flight_devices_finish(lab, tmp_path):
    site, proc = _interruptible_run(lab, tmp_path, "sigint")
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)

    assert_no_traceback(err)
    assert "interrupt: no new device starts" in err
    payload = json.loads(out)
    assert code == payload["exit_code"]
    assert code not in (1, 4)
    result = statuses(payload)
    assert result["fgt-001"] == "changed"
    assert set(result.values()) <= {"changed", "rolled_back", "skipped"}
    not_started = [d["name"] for d in payload["devices"] if d["reason"] == "interrupted: not started"]
    assert "fgt-020" in not_started  # the rollout stopped starting devices
    requests = lab.requests()
    assert all(requests[n]["total"] == 0 for n in not_started)
    _assert_each_device_untouched_or_applied_and_green(lab, site, payload)


@pytest.mark.timeout(90)
def test_second_sigint_still_rolls_back_in_flight_devices(lab, tmp_path):
    site, proc = _interruptible_run(lab, tmp_path, "sigint2")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)  # the first notice is out; in-flight devices are still writing (100 ms a request)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)

    assert "interrupt again: rolling back in-flight devices" in err
    assert_no_traceback(err)
    payload = json.loads(out)
    assert code == payload["exit_code"] == 3
    result = statuses(payload)
    interrupted = [d for d in payload["devices"] if d["status"] == "rolled_back"]
    assert interrupted
    assert all("interrupted" in d["reason"] for d in interrupted)
    assert set(result.values()) <= {"changed", "rolled_back", "skipped"}
    _assert_each_device_untouched_or_applied_and_green(lab, site, payload)


def test_a_second_concurrent_run_exits_5_naming_the_lock_holder(lab):
    lab.faults({"fgt-001": SLOW_API})
    lock = lab.site.parent / ".fortiauto" / "journal" / "fortiauto.lock"  # default: beside the site
    first = spawn_cli("apply", lab.site, "--yes", "--limit", "fgt-001")
    try:
        wait_until(lock.exists, timeout=30, what="the first run to take the site lock")
        # Freeze the holder so that it still holds the lock (alive, not stale) however slowly the
        # second run starts on a loaded machine.
        first.send_signal(signal.SIGSTOP)
        second = run_cli("apply", lab.site, "--yes")
    finally:
        first.send_signal(signal.SIGCONT)
        code, _, err = finish(first)
    assert second.returncode == 5, second.stderr
    assert_no_traceback(second.stderr)
    assert "another run holds the lock" in second.stderr
    assert f"pid {first.pid} on {socket.gethostname()}" in second.stderr
    assert code == 0, err
    assert not lock.with_name(lock.name + ".holder.json").exists()  # released when the first run ended
    requests = lab.requests()
    assert {n: r["total"] for n, r in requests.items() if n != "fgt-001"} == dict.fromkeys(lab.names[1:], 0)
