"""Normalise what FortiOS returns so a task compares only what it manages, in one canonical form.

FortiOS adds ``q_origin_key`` to list-of-names entries, returns multi-value options as one
space-separated string (ports sometimes as a JSON list, a scalar, or ``""``), may wrap strings
in quotes, and returns every field with its default (seen in real units' answers, e.g. the
policy dumps in bluecmd/fortigate_exporter's test data, and handled alike by Ansible's
fortinet.fortios comparison code). ``project`` cuts a GET body down to the keys a desired object names;
``canonical`` makes two values comparable; ``differing`` lists the managed keys that differ.
No I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MULTI_VALUE_KEYS", "canonical", "differing", "project", "strip_meta"]

# Fields FortiOS treats as space-separated multi-value options.
MULTI_VALUE_KEYS = frozenset({"options", "tag-type", "ports", "allowaccess", "inspect-all-ports"})

_META_PREFIX = "q_"


def strip_meta(value: Any) -> Any:
    """Drop ``q_origin_key`` and other ``q_*`` metadata, recursively."""
    if isinstance(value, dict):
        return {k: strip_meta(v) for k, v in value.items() if not k.startswith(_META_PREFIX)}
    if isinstance(value, list):
        return [strip_meta(v) for v in value]
    return value


def _tokens(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(_tokens(item))
        return out
    return [t.strip('"') for t in str(value).split()]


def canonical(value: Any, key: str = "") -> Any:
    """A form in which two FortiOS values are equal exactly when the device would treat them so."""
    if key in MULTI_VALUE_KEYS:
        return " ".join(sorted(set(_tokens(value))))
    if isinstance(value, dict):
        return {k: canonical(v, k) for k, v in sorted(value.items()) if not k.startswith(_META_PREFIX)}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        # Lists of {name: ...} are sets on FortiOS (order is not meaningful for references).
        if all(isinstance(i, dict) for i in items):
            return sorted(items, key=lambda d: repr(sorted(d.items())))
        return items
    if isinstance(value, str):
        return value.strip().strip('"')
    return value


def project(current: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """The part of ``current`` that ``desired`` manages, shaped like ``desired`` (missing -> None).

    Nested containers (``smtp: {log-all: ...}``) are projected recursively, so a task
    never looks at, or restores, a key it does not manage.
    """
    current = current or {}
    out: dict[str, Any] = {}
    for key, want in desired.items():
        have = current.get(key)
        if isinstance(want, dict):
            out[key] = project(have if isinstance(have, dict) else {}, want)
        else:
            out[key] = strip_meta(have)
    return out


def differing(
    current: dict[str, Any] | None, desired: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(before, after)`` holding only the managed keys whose canonical values differ.

    A nested container appears with only its differing sub-keys, which is also exactly
    what a FortiOS PUT needs (it merges a container's keys) and what an undo restores.
    """
    have = project(current, desired)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, want in desired.items():
        if isinstance(want, dict):
            sub_before, sub_after = differing(have.get(key) or {}, want)
            if sub_after:
                before[key] = sub_before
                after[key] = sub_after
        elif canonical(have.get(key), key) != canonical(want, key):
            before[key] = have.get(key)
            after[key] = want
    return before, after
