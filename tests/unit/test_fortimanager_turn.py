"""The machine-wide turn of devices changed through one FortiManager ADOM (``fleet.lock.fortimanager_lock``).

Another process holds the turn (a real ``python`` child, as an Ansible fork or a second CLI run
is): ``wait_acquire`` waits without blocking the event loop and takes the turn once the child lets
go; a wait that is cancelled (Ctrl-C, an AWX cancel) holds nothing; another ADOM is another turn.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fortiauto.fleet.lock import fortimanager_lock

FMG = "https://FMG.example.net"

_HOLDER = """
import sys
from pathlib import Path
from fortiauto.fleet.lock import fortimanager_lock
lock = fortimanager_lock(sys.argv[1], sys.argv[2], lock_dir=Path(sys.argv[3]))
lock.acquire("child-run", device="fgt-child")
print("held", flush=True)
sys.stdin.readline()  # until the test says so
lock.release()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the turn of ADOM root until a line arrives on its stdin."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, f"{FMG}:443/", "root", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    assert child.stdout.readline().strip() == "held"
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        child.stdin.close()
        child.stdout.close()


def _let_go(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()


async def test_the_turn_is_waited_for_while_another_process_holds_it(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = fortimanager_lock("https://fmg.example.net", "root", lock_dir=tmp_path)
    assert (lock.holder() or {}).get("device") == "fgt-child"  # URL spelled otherwise: the same turn
    waiting = asyncio.create_task(lock.wait_acquire("run-b", device="fgt-b"))
    ticks = 0
    for _ in range(20):  # the loop keeps running while the turn is taken elsewhere
        await asyncio.sleep(0.02)
        ticks += 1
    assert (ticks, waiting.done(), lock.held) == (20, False, False)
    _let_go(holder)
    await asyncio.wait_for(waiting, 10)
    assert lock.held
    assert fortimanager_lock(FMG, "root", lock_dir=tmp_path).holder() == lock.holder()
    assert (lock.holder() or {}).get("device") == "fgt-b"
    lock.release()
    assert lock.holder() is None


async def test_a_cancelled_wait_holds_nothing(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    lock = fortimanager_lock(FMG, "root", lock_dir=tmp_path)
    waiting = asyncio.create_task(lock.wait_acquire("run-b"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not lock.held
    _let_go(holder)
    holder.wait(10)
    assert lock.holder() is None  # the child's turn ended, and the cancelled wait never took one


async def test_another_adom_is_another_turn(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    other = fortimanager_lock(FMG, "branch", lock_dir=tmp_path)
    await asyncio.wait_for(other.wait_acquire("run-c", device="fgt-c"), 2)
    assert other.held
    other.release()
