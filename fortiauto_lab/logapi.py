"""``/api/v2/log/<memory|disk|fortianalyzer|forticloud>/emailfilter[/raw]``: the email filter log.

The data plane appends a record when a relayed message was visible to the device and
the policy asked for logging (``LabDevice.log_emailfilter``). Only the log device the unit
logs to has them: a path whose device is disabled in its settings (``log.<device>/setting``,
``logsettings.py``; read when asked) answers with no records, as a unit that logs to disk
shows nothing in memory. Paths as FortiOS's log API names them (e.g. Ansible's
``fortios_log_fact`` selectors ``memory_emailfilter_raw``, ``disk_emailfilter_raw``,
``fortianalyzer_emailfilter_raw``, ``forticloud_emailfilter_raw``). This module serves them as
FortiOS does: ``.../raw`` is plain text, one ``key=value`` line per record (strings
quoted, numbers bare), newest first; without ``raw`` a JSON envelope whose ``results``
are the records. ``rows``/``start`` page and ``filter`` (e.g. ``subject=@TOKEN``) selects,
with the operators of ``query.py``; ``vdom`` limits to one vdom's records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from fortiauto_lab.cmdb import VdomError, resolve_vdoms
from fortiauto_lab.envelope import Target, envelope, error_envelope, json_response
from fortiauto_lab.logsettings import enabled
from fortiauto_lab.query import FilterError, matches, parse_filters

if TYPE_CHECKING:
    from fortiauto_lab.device import LabDevice

__all__ = ["handle_log", "raw_line"]

_DEVICES = ("memory", "disk", "fortianalyzer", "forticloud")
_BARE = frozenset(
    {
        "date",
        "time",
        "eventtime",
        "policyid",
        "sessionid",
        "srcip",
        "srcport",
        "dstip",
        "dstport",
        "proto",
        "size",
    }
)
_DEFAULT_ROWS = 400


def raw_line(record: dict[str, str]) -> str:
    """One FortiOS log line: ``date=2024-05-01 time=... logid="0508020503" ... subject="..."``."""
    parts = []
    for key, value in record.items():
        text = str(value)
        if key in _BARE and text and " " not in text:
            parts.append(f"{key}={text}")
        else:
            parts.append(f'{key}="{text.replace(chr(34), chr(39))}"')
    return " ".join(parts)


def _typed(record: dict[str, str]) -> dict[str, Any]:
    return {
        k: int(v) if k in _BARE and v.isdigit() and k not in ("date", "time") else v
        for k, v in record.items()
    }


async def handle_log(request: web.Request, device: LabDevice, segments: list[str]) -> web.Response:  # noqa: PLR0911 - each early answer is one of the log API's refusals, in FortiOS's order
    """Serve ``log/<device>/emailfilter[/raw]``."""
    segments = [s for s in segments if s]
    target = Target(request.method, device.store.vdoms[0], "log", "/".join(segments[1:2]) or "", "")
    if request.method != "GET":
        return json_response(error_envelope(device, target, 405), 405)
    if len(segments) not in (2, 3) or segments[0] not in _DEVICES or segments[1] != "emailfilter":
        return json_response(error_envelope(device, target, 404, error=-3), 404)
    raw = len(segments) == 3
    if raw and segments[2] != "raw":
        return json_response(error_envelope(device, target, 404, error=-3), 404)
    try:
        vdoms, _ = resolve_vdoms(device, request.query)
        filters = parse_filters(request.query.getall("filter", []))
    except VdomError as exc:
        return json_response(error_envelope(device, replace_vdom(target, exc.vdom), 403), 403)
    except FilterError as exc:
        return json_response(error_envelope(device, target, 400, cli_error=str(exc)), 400)
    kept = device.emailfilter_log if enabled(device.store, segments[0]) else ()
    records = [r for r in reversed(kept) if r.get("vd", vdoms[0]) in vdoms and matches(r, filters)]
    start = _number(request.query.get("start"), 0)
    rows = _number(request.query.get("rows"), _DEFAULT_ROWS)
    chosen = records[start : start + rows]
    if raw:
        return web.Response(text="".join(raw_line(r) + "\n" for r in chosen), content_type="text/plain")
    body = envelope(
        device,
        Target("GET", vdoms[0], "log", "emailfilter", ""),
        http_status=None,
        results=[_typed(r) for r in chosen],
        rows=rows,
        session_id=0,
        completed=100,
        total_lines=len(records),
        start=start,
        subcategory="emailfilter",
    )
    return json_response(body)


def replace_vdom(target: Target, vdom: str) -> Target:
    return Target(target.method, vdom, target.path, target.name, target.action)


def _number(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() else default
