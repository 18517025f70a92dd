"""``kill -9`` of ``fortiauto apply`` in the middle of write k, then ``fortiauto rollback --last``.

Nothing in the killed process gets to clean up: no rollback, no lock release, no journal close.
What it leaves (a journal whose last ``pre`` line has no ``done``, a stale lock, maybe a write
still in flight) is all ``rollback --last`` has. Both commands run as a user runs them: from the
site's directory with the default journal location. ~2 s per write point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.chaoskit import CLI_TIMEOUT, cli_command, cli_env, run_cli, variant
from tests.chaos.conftest import ChaosLab

pytestmark = pytest.mark.chaos

DEVICE = "fgt-002"
# Every API answer takes this long: wide enough to catch write k in flight by polling.
LATENCY_MS = 200


def _journal_lines(directory: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for path in directory.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the line being written when the process died
    return lines


def _pending_write(lines: list[dict[str, Any]]) -> int | None:
    """Seq of a journaled write with no ``done`` line yet: fortiauto is sending it right now."""
    done = {e["seq"] for e in lines if e.get("type") == "done"}
    pending = [e["seq"] for e in lines if e.get("type") == "pre" and e["seq"] not in done]
    return max(pending) if pending else None


def _kill_at_write(process: subprocess.Popen[bytes], journal: Path, write: int, *, deadline: float) -> None:
    """SIGKILL the apply once write ``write`` is journaled and not yet answered.

    The journal line is fsynced right before the request leaves, and the lab holds every answer
    for LATENCY_MS, so polling it every few ms lands inside that write.
    """
    end = time.monotonic() + deadline
    while time.monotonic() < end and process.poll() is None:
        if _pending_write(_journal_lines(journal)) == write:
            process.send_signal(signal.SIGKILL)
            return
        time.sleep(0.003)
    pytest.fail(f"write {write} never started (apply exited {process.poll()})")


@pytest.mark.parametrize("write", [1, 2, 3, 4, 5])
def test_kill9_during_write_then_rollback_last(chaos_lab: ChaosLab, write: int) -> None:
    pristine = chaos_lab.reset()[DEVICE]
    control = chaos_lab.controls[DEVICE]
    site = variant(chaos_lab.site, "kill9", devices=[DEVICE], fallback=[])
    where = chaos_lab.state_dir  # the site's directory: the default journal is ./.fortiauto/journal
    journal = where / ".fortiauto" / "journal"
    before = {p.name for p in journal.glob("*.jsonl")} if journal.is_dir() else set()
    env = cli_env()
    control.faults(f"api-latency={LATENCY_MS}")
    process = subprocess.Popen(
        cli_command("apply", site.name, "--yes"),
        cwd=where,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not journal.is_dir() and process.poll() is None:
            time.sleep(0.01)
        _kill_at_write(process, journal, write, deadline=CLI_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=CLI_TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    # Write k was sent (journaled) and its answer, delayed by the latency fault, never came: the
    # device may or may not have done it by now. Either way rollback --last must restore it.
    assert write - 1 <= control.requests()["writes"] <= write
    (run,) = [p for p in journal.glob("*.jsonl") if p.name not in before]
    note = journal / "fortiauto.lock.holder.json"
    assert note.exists()  # the dead process's holder note is left behind; the kernel freed its lock

    # Latency stays on: the rollback's requests queue behind a write that may still be in flight.
    undo = run_cli("rollback", "--yes", "--last", cwd=where, env=env)
    assert undo.code == 0, undo
    assert run.stem in undo.stdout + undo.stderr
    assert control.state() == pristine
    assert not note.exists()
    again = run_cli("rollback", "--yes", "--last", cwd=where, env=env)  # idempotent: nothing left to undo
    assert again.code == 0, again
    assert control.state() == pristine
    assert os.stat(run).st_mode & 0o777 == 0o600
