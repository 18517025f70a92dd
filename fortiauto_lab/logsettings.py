"""Where a mock FortiGate logs: its log device settings, as FortiOS keeps them in the CMDB.

FortiOS has one ``status enable|disable`` setting object per log device (CLI ``config log
memory setting``, ``config log disk setting``, ``config log fortianalyzer setting``, and
``config log fortiguard setting`` for FortiCloud), served under ``/api/v2/cmdb/log.memory/setting``
and so on (paths as the fortigate-api package and Ansible's ``fortios_log_*_setting`` modules
address them). ``lab up --log-device`` makes one of them the device's only log device (a unit
with a disk logs to disk and keeps memory logging off); the log API (``logapi.py``) answers
``/api/v2/log/<device>/...`` with records only for an enabled device. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from fortiauto_lab.fields import Field, ObjectSpec

if TYPE_CHECKING:
    from fortiauto_lab.store import ConfigStore

__all__ = ["LOG_DEVICES", "SETTING_PATHS", "LogDevice", "enabled", "log_setting_specs", "use_log_device"]

LogDevice = Literal["memory", "disk", "fortianalyzer"]
LOG_DEVICES: tuple[str, ...] = get_args(LogDevice)

# Log API device name -> its settings object. FortiCloud is "fortiguard" in the CMDB.
SETTING_PATHS = {
    "memory": "log.memory/setting",
    "disk": "log.disk/setting",
    "fortianalyzer": "log.fortianalyzer/setting",
    "forticloud": "log.fortiguard/setting",
}
# A FortiAnalyzer the lab's units say they log to (documentation range, never contacted).
_FAZ = {"server": "192.0.2.50", "serial": "FAZ-VM0000000001"}


def _status(default: str) -> Field:
    return Field("option", default, options=("enable", "disable"))


def _upload_option() -> Field:
    return Field("option", "5-minute", options=("store-and-upload", "realtime", "1-minute", "5-minute"))


def log_setting_specs() -> tuple[ObjectSpec, ...]:
    """The four settings objects (global scope, singletons); memory logging is on by default."""
    objects = {
        "log.memory/setting": {
            "status": _status("enable"),
            "diskfull": Field("option", "overwrite", options=("overwrite",)),
        },
        "log.disk/setting": {
            "status": _status("disable"),
            "diskfull": Field("option", "overwrite", options=("overwrite", "nolog")),
            "max-log-file-size": Field("integer", 20, minimum=1, maximum=100),
        },
        "log.fortianalyzer/setting": {
            "status": _status("disable"),
            "server": Field("string", "", size=127),
            "serial": Field("string", "", size=255),
            "upload-option": _upload_option(),
            "reliable": _status("disable"),
        },
        "log.fortiguard/setting": {"status": _status("disable"), "upload-option": _upload_option()},
    }
    return tuple(
        ObjectSpec(
            path, fields, category="complex", mkey=None, scope="global", access_group="loggrp", q_type=0
        )
        for path, fields in objects.items()
    )


def use_log_device(store: ConfigStore, device: LogDevice) -> None:
    """Make ``device`` the store's only enabled log device (seed level: no revision)."""
    vdom = store.vdoms[0]
    for name, path in SETTING_PATHS.items():
        wanted = store.schema.spec(path).fresh() | {"status": "enable" if name == device else "disable"}
        if name == "fortianalyzer" and name == device:
            wanted |= _FAZ
        store.seed(vdom, path, wanted)


def enabled(store: ConfigStore, device: str) -> bool:
    """Does the unit log to ``device`` (a log API device name) right now?"""
    path = SETTING_PATHS.get(device)
    if path is None or path not in store.schema.objects:
        return False
    return store.singleton(store.vdoms[0], path).get("status") == "enable"
