# Copyright: fortiauto developers
# Apache License 2.0 (see the fortiauto repository's LICENSE)
"""One run id per ``ansible-playbook`` run, derived on the controller the same way by every worker.

Ansible runs each host's task in a worker forked from the ``ansible-playbook`` process, so that
process is the job: its start time (from ``/proc``) is the id's time stamp, and the suffix is
AWX's job id when the job runs in AWX or Automation Controller (``awx_job_id``/``tower_job_id``),
else a hash of host, pid and start. Every host, ``serial`` batch and ``--limit`` of one job
therefore journals under one id, with no play on localhost to share it. Ids keep fortiauto's
shape, ``YYYYmmddTHHMMSSZ-<suffix>``, so that they sort by start time. Without ``/proc`` (not
Linux) the id is made once when the controller's main process loads this module.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import time
import uuid
from typing import Any

_FALLBACK_ENV = "FORTIAUTO_ANSIBLE_RUN_ID"


def controller_run_id(task_vars: dict[str, Any]) -> str:
    """The run id of this ``ansible-playbook`` run (see the module docstring)."""
    job = task_vars.get("awx_job_id") or task_vars.get("tower_job_id")
    started = _process_start(_main_pid())
    if started is None:
        return os.environ.get(_FALLBACK_ENV) or _new_id(time.time())
    pid, seconds, ticks = started
    suffix = (
        f"awx{int(job)}" if str(job or "").isdigit() else _digest(f"{socket.gethostname()}:{pid}:{ticks}")
    )
    return f"{_stamp(seconds)}-{suffix}"


def _main_pid() -> int:
    # A task runs in a WorkerProcess forked from ansible-playbook: its parent is the job.
    return os.getppid() if multiprocessing.parent_process() is not None else os.getpid()


def _process_start(pid: int) -> tuple[int, float, int] | None:
    """``(pid, start as epoch seconds, start in clock ticks since boot)`` from ``/proc``, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces, so count after its ")".
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return pid, boot + ticks / os.sysconf("SC_CLK_TCK"), ticks


def _stamp(seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _new_id(seconds: float) -> str:
    return f"{_stamp(seconds)}-{uuid.uuid4().hex[:6]}"


if multiprocessing.parent_process() is None:
    # Loaded in the controller's main process (the strategy loads the action plugin there before
    # forking workers): the fallback id is inherited by every worker of this run.
    os.environ.setdefault(_FALLBACK_ENV, _new_id(time.time()))
