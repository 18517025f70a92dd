"""The mock FortiManager's tasks: each install or preview is a task that reports progress as it is polled.

FortiManager answers an install with ``{"task": N}`` and reports ``/task/task/N`` as it runs
(``state``, ``percent``, ``num_err``, one ``line`` per device: FortiManager JSON API docs,
"Policy Package Management"). The lab does the work when the task is created and shows it in
two frames: "running" at 50 % on the first poll, then the outcome; a stuck task stays at 10 %.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LabTask", "TaskBoard"]


@dataclass
class LabTask:
    id: int
    title: str
    user: str
    device: str
    ok: bool = True
    detail: str = ""
    stuck: bool = False
    started: int = field(default_factory=lambda: int(time.time()))
    polls: int = 0

    def frame(self) -> dict[str, Any]:
        """The task as the next ``get /task/task/<id>`` shows it."""
        self.polls += 1
        if self.stuck:
            state, percent, errors = "running", 10, 0
        elif self.polls == 1:
            state, percent, errors = "running", 50, 0
        else:
            state, percent, errors = ("done", 100, 0) if self.ok else ("error", 100, 1)
        line = {
            "name": self.device,
            "detail": self.detail if percent == 100 else "installing",
            "err": errors,
            "percent": percent,
            "state": state,
            "start_tm": self.started,
        }
        return {
            "id": self.id,
            "title": self.title,
            "user": self.user,
            "src": "device manager",
            "state": state,
            "percent": percent,
            "tot_percent": percent,
            "num_done": int(percent == 100 and self.ok),
            "num_err": errors,
            "num_lines": 1,
            "num_warn": 0,
            "start_tm": self.started,
            "end_tm": int(time.time()) if percent == 100 else 0,
            "line": [line],
        }


@dataclass
class TaskBoard:
    tasks: dict[int, LabTask] = field(default_factory=dict)
    next_id: int = 100

    def add(self, **kwargs: Any) -> LabTask:
        task = LabTask(id=self.next_id, **kwargs)
        self.tasks[task.id] = task
        self.next_id += 1
        return task
