"""The fleet: which devices run when (``schedule``), inside which window (``window``), under which
locks (``lock``), and the run itself with its undo (``run``)."""

from fortiauto.fleet.lock import Lock, device_lock, site_lock
from fortiauto.fleet.run import FleetOptions, new_run_id, rollback_device, rollback_run, run_fleet
from fortiauto.fleet.schedule import estimate_seconds, select_devices
from fortiauto.fleet.window import check_window

__all__ = [
    "FleetOptions",
    "Lock",
    "check_window",
    "device_lock",
    "estimate_seconds",
    "new_run_id",
    "rollback_device",
    "rollback_run",
    "run_fleet",
    "select_devices",
    "site_lock",
]
