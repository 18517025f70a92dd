"""FortiOS REST object shapes <-> FortiManager JSON-RPC object shapes, so one desired state serves both.

fortiauto builds desired objects as the FortiOS REST API spells them (``tasks/``); FortiManager
spells references as lists of names (``"dstaddr": ["vip-mx1"]``, a single reference as a
one-item list ``"ssl-ssh-profile": ["protect-mx1"]``) where FortiOS uses ``[{"name": ...}]``
or a plain string (FortiManager JSON API docs, "Policy Package Management": the install
preview shows ``"ssl-ssh-profile": ["no-inspection"]``, ``"dstaddr": ["host_101"]``).
``to_fmg`` converts a FortiOS body for writing through FortiManager; ``like_fortios`` reads a
FortiManager object back in the shape of a desired FortiOS object, so ``fortios.normalise``
compares the two unchanged. Both are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["like_fortios", "to_fmg"]


def _is_name_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, Mapping) and set(item) <= {"name", "q_origin_key"} for item in value)
    )


def to_fmg(value: Any) -> Any:
    """A FortiOS REST value as FortiManager takes it: ``[{"name": x}]`` becomes ``[x]``, recursively."""
    if _is_name_list(value):
        return [item["name"] for item in value]
    if isinstance(value, Mapping):
        return {key: to_fmg(item) for key, item in value.items() if not str(key).startswith("q_")}
    if isinstance(value, list):
        return [to_fmg(item) for item in value]
    return value


def like_fortios(fmg: Any, desired: Any) -> Any:
    """``fmg`` reshaped like ``desired`` wherever the two spell the same thing differently.

    A desired string read back as a one-item list becomes that string; a desired list of
    ``{"name"}`` read back as a list of names becomes a list of ``{"name"}``. Keys ``desired``
    does not name are kept as FortiManager sent them.
    """
    if isinstance(desired, Mapping) and isinstance(fmg, Mapping):
        return {key: like_fortios(value, desired.get(key)) for key, value in fmg.items()}
    if isinstance(desired, str) and isinstance(fmg, list):
        return str(fmg[0]) if len(fmg) == 1 else " ".join(str(v) for v in fmg)
    if isinstance(desired, list):
        return _list_like_fortios(fmg, desired)
    return fmg


def _list_like_fortios(fmg: Any, desired: list[Any]) -> Any:
    """The list cases of ``like_fortios``: names to ``{"name"}`` items, a lone name to a list."""
    if isinstance(fmg, str):
        return [{"name": fmg}] if fmg else []
    if not isinstance(fmg, list):
        return fmg
    if (desired and _is_name_list(desired)) or (not desired and all(isinstance(v, str) for v in fmg)):
        return [{"name": v} if isinstance(v, str) else v for v in fmg]
    template = desired[0] if desired else None
    return [like_fortios(item, template) for item in fmg]
