"""The proof of the fix: the probe's message in the email filter log, where the device really logs.

Part of the verify step (after the probe passed): the change is for logging inbound mail, so
its effect is proven only by the device's own log line for the probe's message. A FortiGate
logs to memory, to its disk (units with a disk keep memory logging off), to a FortiAnalyzer
or to FortiCloud, each switched by ``status`` in its settings object; the FortiOS log API
serves each under its own device name. ``log_sources`` decides from those settings which to
ask (pure); ``find_evidence`` reads the settings, asks each source for the probe's subject
token and returns the matching entry as ``Evidence`` (time, subject, policy id, action, and the
email filter's verdict when a spam check judged the message: ``classify.log_verdict``).

Sources (FortiOS REST API; the names as the fortigate-api package and Ansible's
fortinet.fortios collection address them):
- settings: ``GET /api/v2/cmdb/log.memory/setting``, ``log.disk/setting``,
  ``log.fortianalyzer/setting``, ``log.fortiguard/setting`` (FortiCloud), each with
  ``status: enable|disable`` (CLI ``config log <device> setting``);
- log: ``GET /api/v2/log/<memory|disk|fortianalyzer|forticloud>/emailfilter/raw`` with
  ``filter=subject=@TOKEN`` and ``rows`` (``fortios_log_fact`` selectors
  ``memory_emailfilter_raw``, ``disk_emailfilter_raw``, ``fortianalyzer_emailfilter_raw``,
  ``forticloud_emailfilter_raw``); ``raw`` answers one ``key=value`` line per entry, with
  string values quoted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fortiauto.errors import FortiOSError
from fortiauto.probe.classify import log_verdict

__all__ = ["LOG_SETTINGS", "Evidence", "LogReader", "find_evidence", "log_sources", "parse_raw_log"]

# Log API device name -> the CMDB object whose ``status`` switches logging there.
LOG_SETTINGS: dict[str, str] = {
    "disk": "log.disk/setting",
    "memory": "log.memory/setting",
    "fortianalyzer": "log.fortianalyzer/setting",
    "forticloud": "log.fortiguard/setting",
}
# Local stores first: they answer at once, a FortiAnalyzer or FortiCloud only after an upload.
_ORDER = tuple(LOG_SETTINGS)
# When no settings object can be read at all (a token without log read access), the local ones.
_UNKNOWN_SETTINGS = ("memory", "disk")
_ROWS = "50"
_FIELD = re.compile(r'([\w-]+)=("(?:[^"\\]|\\.)*"|\S*)')


@dataclass(frozen=True)
class Evidence:
    """The log entry that proves the probe's message was seen and logged by the device."""

    source: str  # the log device it was found on: memory, disk, fortianalyzer, forticloud
    time: str  # "2026-12-01 09:50:01" as the device wrote it (date and time fields)
    subject: str
    token: str
    policy_id: int | None
    action: str
    logid: str = ""
    verdict: str | None = None  # "tagged: helo-dns": a spam check judged the message (None: clean)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "time": self.time,
            "subject": self.subject,
            "token": self.token,
            "policy_id": self.policy_id,
            "action": self.action,
            "logid": self.logid,
            **({"verdict": self.verdict} if self.verdict else {}),
        }


class LogReader(Protocol):
    """The two reads this module makes (``FortiOSClient`` has them)."""

    async def get(
        self, path: str, mkey: str | int | None = None, *, vdom: Any = ..., params: Any = None
    ) -> list[dict[str, Any]]: ...

    async def log_get(self, path: str, *, vdom: Any = ..., params: Any = None) -> Any: ...


def log_sources(settings: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """The log devices to ask, in order, from their settings objects (None: could not be read).

    Enabled ones only; none enabled means the device logs nowhere the API can read (empty
    list: the effect cannot be proven). Only when no settings object could be read at all
    are the local stores asked, as the best guess.
    """
    known = {name: value for name, value in settings.items() if value is not None}
    if not known:
        return list(_UNKNOWN_SETTINGS)
    return [name for name in _ORDER if (known.get(name) or {}).get("status") == "enable"]


def parse_raw_log(text: str) -> list[dict[str, str]]:
    """``key=value key="quoted value"`` lines (the ``raw`` format) into dicts."""
    entries = []
    for line in text.splitlines():
        fields = {key: _unquote(value) for key, value in _FIELD.findall(line)}
        if fields:
            entries.append(fields)
    return entries


async def read_log_settings(api: LogReader, vdom: str) -> dict[str, dict[str, Any] | None]:
    """Each log device's settings object, or None where the device has none or it cannot be read.

    The four reads go out at once: the effect check costs one round trip, not four.
    """
    answers = await asyncio.gather(
        *(api.get(path, vdom=vdom) for path in LOG_SETTINGS.values()), return_exceptions=True
    )
    found: dict[str, dict[str, Any] | None] = {}
    for name, objects in zip(LOG_SETTINGS, answers, strict=True):
        if isinstance(objects, FortiOSError):
            # 404 (no such log device on this model or version) and 403 (no log read access) alike.
            found[name] = None
        elif isinstance(objects, BaseException):
            raise objects
        else:
            found[name] = objects[0] if objects and isinstance(objects[0], dict) else None
    return found


async def find_evidence(
    api: LogReader,
    vdom: str,
    token: str,
    *,
    polls: int = 1,
    delay: float = 2.0,
    sources: list[str] | None = None,
) -> Evidence | None:
    """The email filter log entry whose subject holds ``token``, from where the device logs.

    Asks every enabled source (``sources``, else read from the settings) per poll, ``polls``
    times ``delay`` seconds apart (a log line can take a moment to show up); None when no
    source has it.
    """
    if sources is None:
        sources = log_sources(await read_log_settings(api, vdom))
    for attempt in range(polls):
        for source in sources:
            evidence = await _ask(api, vdom, source, token)
            if evidence is not None:
                return evidence
        if attempt + 1 < polls:
            await asyncio.sleep(delay)
    return None


async def _ask(api: LogReader, vdom: str, source: str, token: str) -> Evidence | None:
    params = {"filter": f"subject=@{token}", "rows": _ROWS}
    try:
        body = await api.log_get(f"{source}/emailfilter/raw", vdom=vdom, params=params)
    except FortiOSError:
        return None  # this source cannot be read now (FortiAnalyzer unreachable ...): try the next
    for entry in _entries(body):
        subject = str(entry.get("subject", ""))
        if token in subject:
            return _evidence(source, entry, subject, token)
    return None


def _entries(body: Any) -> list[Mapping[str, Any]]:
    if isinstance(body, str):
        return list(parse_raw_log(body))
    if isinstance(body, list):
        return [entry for entry in body if isinstance(entry, Mapping)]
    return []


def _evidence(source: str, entry: Mapping[str, Any], subject: str, token: str) -> Evidence:
    policy = str(entry.get("policyid", ""))
    when = " ".join(str(entry[key]) for key in ("date", "time") if entry.get(key))
    return Evidence(
        source=source,
        time=when or str(entry.get("eventtime", "")),
        subject=subject,
        token=token,
        policy_id=int(policy) if policy.isdigit() else None,
        action=str(entry.get("action", "")),
        logid=str(entry.get("logid", "")),
        verdict=log_verdict(entry),
    )


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
