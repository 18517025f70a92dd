"""Parse the JSON envelope FortiOS wraps every REST answer in, and the system status it reports.

The client hands each response body here after the HTTP exchange and before error mapping
(``errormap.py`` reads ``status``, ``http_status``, ``error`` and ``cli_error`` from the result);
tasks and the engine see ``Envelope.results`` and the write metadata (``mkey``, ``revision``,
``old_revision``, ``revision_changed``, and the client's ``concurrent_edit`` verdict). Shapes follow
FortiOS's REST envelope (docs/fortios-client.md): monitor success envelopes omit ``http_status``,
401 answers are HTML, 7.6.5 sends ``cli_error`` as a list. ``decode_body`` says what a body is
when it is not a JSON object, so ``errormap`` can refuse it. No I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fortiauto.fortios.version import FortiOSVersion

__all__ = ["Envelope", "SystemStatus", "decode_body", "parse_envelope"]


@dataclass(frozen=True)
class Envelope:
    """One parsed FortiOS answer; ``raw`` is the JSON object as sent (FortiOS never echoes secrets)."""

    http_method: str
    status: str
    http_status: int
    results: Any
    vdom: str | None
    path: str | None
    name: str | None
    mkey: Any
    revision: str | None
    old_revision: str | None
    revision_changed: bool | None
    version: str | None
    build: int | None
    serial: str | None
    error: int | None
    cli_error: str | None
    raw: dict[str, Any]
    # Set by the client on write answers: the device revision it last saw for the object (advanced
    # through its own writes since), and whether ``old_revision`` proves someone else wrote since:
    # True = another change landed between that read and this write, False = none did,
    # None = cannot tell (no revision in the answer, object never read, an unrevisioned write between).
    revision_seen: str | None = None
    concurrent_edit: bool | None = None

    @property
    def ok(self) -> bool:
        """True when FortiOS reports success (HTTP 2xx and no ``status: error``)."""
        return self.status != "error" and 200 <= self.http_status < 300


@dataclass(frozen=True)
class SystemStatus:
    """What ``GET monitor/system/status`` says about the device."""

    version: FortiOSVersion
    serial: str
    hostname: str
    build: int | None
    model: str

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> SystemStatus:
        """Build from a status envelope; the version must be present (every FortiOS build sends it)."""
        if not envelope.version:
            raise ValueError("system status answer has no version field")
        results = envelope.results if isinstance(envelope.results, dict) else {}
        model = _text(results.get("model"))
        if not model:
            # Older builds only split the model into a name and a number.
            model = f"{_text(results.get('model_name'))} {_text(results.get('model_number'))}".strip()
        return cls(
            version=FortiOSVersion.parse(envelope.version),
            serial=envelope.serial or _text(results.get("serial")),
            hostname=_text(results.get("hostname")),
            build=envelope.build,
            model=model,
        )


def decode_body(content: bytes, content_type: str) -> tuple[Any, str | None]:
    """The JSON value of a body and, when it is not a JSON object, what it is instead, in words.

    ``(value, None)`` for a JSON object; ``(value_or_None, "an HTML page")``,
    ``"an empty body"``, ``"a body that is not JSON"`` or ``"JSON that is not an object (list)"``
    otherwise. FortiOS answers every API request with a JSON object (its 401 page excepted).
    """
    text = content.decode("utf-8", "replace").strip()
    if not text:
        return None, "an empty body"
    try:
        value = json.loads(text)
    except ValueError:
        looks_html = "html" in content_type.lower() or text[:1] == "<"
        return None, "an HTML page" if looks_html else "a body that is not JSON"
    if not isinstance(value, dict):
        return value, f"JSON that is not an object ({type(value).__name__})"
    return value, None


def parse_envelope(body: Any, *, http_status: int, http_method: str) -> Envelope:
    """Parse a decoded JSON body (or ``None`` for a non-JSON answer) into an ``Envelope``.

    ``http_status`` is the HTTP status code of the response: it stands in for the body's
    ``http_status`` when that is missing (monitor success, HTML error pages).
    """
    if isinstance(body, list):
        # Multi-vdom queries answer with one envelope per vdom; the client asks one vdom at a time.
        body = next((item for item in body if isinstance(item, dict)), None)
    raw: dict[str, Any] = body if isinstance(body, dict) else {}
    status = _optional_text(raw.get("status")) or ("success" if 200 <= http_status < 300 else "error")
    body_status = _optional_int(raw.get("http_status"))
    if body_status is not None and 200 <= http_status < 300:
        # Only a successful HTTP answer defers to the body; an HTTP error code is never overruled.
        http_status = body_status
    return Envelope(
        http_method=_optional_text(raw.get("http_method")) or http_method,
        status=status,
        http_status=http_status,
        results=raw.get("results"),
        vdom=_optional_text(raw.get("vdom")),
        path=_optional_text(raw.get("path")),
        name=_optional_text(raw.get("name")),
        mkey=raw.get("mkey"),
        revision=_optional_text(raw.get("revision")),
        old_revision=_optional_text(raw.get("old_revision")),
        revision_changed=_optional_bool(raw.get("revision_changed")),
        version=_optional_text(raw.get("version")),
        build=_optional_int(raw.get("build")),
        serial=_optional_text(raw.get("serial")),
        error=_optional_int(raw.get("error")),
        cli_error=_cli_error(raw.get("cli_error")),
        raw=raw,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _cli_error(value: Any) -> str | None:
    """One readable line: 7.6 sends a list of CLI lines, older builds one string with newlines."""
    if value is None or value == "":
        return None
    items = value if isinstance(value, list) else [value]
    lines = [line.strip() for item in items for line in str(item).splitlines()]
    return "; ".join(line for line in lines if line) or None
