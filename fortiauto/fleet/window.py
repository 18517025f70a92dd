"""The change window: may a run start now, may a device start with the time left, and waiting for it.

Plain arguments in, a decision out (no options object); ``run.py`` asks before the fleet
starts and before each device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from fortiauto.errors import WindowClosed
from fortiauto.site import ChangeWindow

__all__ = ["check_window", "fits_window", "wait_for_window", "window_text"]


def window_text(window: ChangeWindow | None) -> str | None:
    return None if window is None else f"{window.start.isoformat()} - {window.end.isoformat()}"


def check_window(
    window: ChangeWindow | None, now: datetime, *, wait: bool = False, ignore: bool = False
) -> str | None:
    """Raise ``WindowClosed`` outside the window (unless ignored); a note for the report when ignored."""
    if window is None or window.start <= now < window.end or (wait and now < window.start):
        return None
    if ignore:
        return f"outside the change window {window_text(window)} (--ignore-window)"
    raise WindowClosed(
        f"outside the change window {window_text(window)} (now {now.isoformat()}); "
        "--wait to wait for it, --ignore-window to override"
    )


def fits_window(window: ChangeWindow | None, now: datetime, seconds: float) -> bool:
    """Does a device estimated at ``seconds`` finish before the window closes?"""
    return window is None or window.end - now >= timedelta(seconds=seconds)


async def wait_for_window(
    window: ChangeWindow | None,
    now: Callable[[], datetime],
    *,
    on_wait: Callable[[float], None] | None = None,
) -> None:
    """Sleep until the window opens (``on_wait`` hears the seconds left first)."""
    if window is None:
        return
    delay = (window.start - now()).total_seconds()
    if delay > 0:
        if on_wait is not None:
            on_wait(delay)
        await asyncio.sleep(delay)
