"""``apply --wait``: when the run will start, counted down until the change window opens.

On a terminal one line redrawn each second (rich's status line); elsewhere (a pipe, a CI log)
a plain line at once and one per minute, so a log shows the run is alive without filling up.
A stop request (Ctrl-C, SIGTERM, SIGHUP) ends the wait at once: nothing has been contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console
from rich.text import Text

from fortiauto.report.confirm import duration_text

__all__ = ["count_down", "waiting_line"]

_PLAIN_EVERY = 60.0  # seconds between plain lines without a terminal


def waiting_line(start: datetime, now: datetime) -> str:
    left = duration_text((start - now).total_seconds())
    return (
        f"waiting for the change window: starts at {start.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, in {left}"
    )


async def count_down(
    console: Console,
    start: datetime,
    stop: asyncio.Event,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bool:
    """Wait until ``start``; True when it came, False when ``stop`` was set first."""
    console.print(Text(f"{waiting_line(start, now())} (Ctrl-C stops; nothing is changed before it)"))
    tick = 1.0 if console.is_terminal else _PLAIN_EVERY
    status = console.status(Text(waiting_line(start, now()))) if console.is_terminal else None
    with status or contextlib.nullcontext():
        while (left := (start - now()).total_seconds()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(tick, left))
            if stop.is_set():
                return False
            if status is not None:
                status.update(Text(waiting_line(start, now())))
            elif (start - now()).total_seconds() > 0:
                console.print(Text(waiting_line(start, now())))
    console.print(Text("the change window is open: starting"))
    return True
