"""The lab's CMDB field model: how a request body becomes a stored object, and back.

``schema.py`` declares which objects and fields each FortiOS version has using the
``Field`` and ``ObjectSpec`` types here; ``store.py`` calls ``ObjectSpec.apply`` on every
write (defaults on create, top-level merge on update, containers merged by key, lists
replaced, every value checked, unknown attributes rejected with -651 as FortiOS does) and
``iter_refs`` to check and count references. Failures are ``CmdbError``: the HTTP status,
FortiOS error code and CLI text the REST side answers with. No I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ANY_IP",
    "NULL_UUID",
    "CmdbError",
    "Field",
    "Kind",
    "ObjectSpec",
    "coerce",
    "defaults",
    "iter_refs",
    "mask_secret",
    "merge_fields",
    "table_row",
]

Kind = Literal[
    "string",  # bounded string
    "text",  # unbounded text (PEM, comments)
    "secret",  # stored as given, shown masked
    "option",  # one of ``options``
    "integer",
    "multi",  # space-separated options
    "ports",  # multi-value port numbers
    "names",  # list of {"name": ...} references
    "ref",  # one name referring to another table
    "container",  # nested object, merged by key
    "table",  # child table with its own mkey
    "ipmask",  # "a.b.c.d m.m.m.m"
    "ip",
    "iprange",
    "uuid",
]

NULL_UUID = "00000000-0000-0000-0000-000000000000"
ANY_IP = "0.0.0.0"  # noqa: S104 - a FortiOS default value, not a bind address


class CmdbError(Exception):
    """A FortiOS CLI-style failure: HTTP status, negative error code, and the CLI text."""

    def __init__(self, http_status: int, error: int | None, cli_error: str | None = None) -> None:
        self.http_status = http_status
        self.error = error
        self.cli_error = cli_error
        super().__init__(cli_error or f"http {http_status} error {error}")

    @classmethod
    def not_found(cls) -> CmdbError:
        return cls(404, -3)

    @classmethod
    def duplicate(cls) -> CmdbError:
        return cls(500, -5, "A duplicate entry already exists.\nCommand fail. Return code -5")

    @classmethod
    def invalid(cls, text: str) -> CmdbError:
        return cls(500, -651, f"{text}\nCommand fail. Return code -651")

    @classmethod
    def in_use(cls, count: int) -> CmdbError:
        return cls(500, -23, f"The entry is used by other {count} entries\nCommand fail. Return code -23")

    @classmethod
    def read_only(cls, what: str) -> CmdbError:
        return cls(500, -37, f"{what} is read-only and cannot be changed\nCommand fail. Return code -37")


def _bad_value(attr: str, value: Any) -> CmdbError:
    shown = str(value)[:64]
    return CmdbError.invalid(
        f"node_check_object fail! for {attr} {shown}\n\nvalue parse error before '{shown}'"
    )


@dataclass(frozen=True)
class Field:
    """One attribute of a CMDB object (or of a container or child table inside one)."""

    kind: Kind
    default: Any = ""
    options: tuple[str, ...] = ()
    size: int = 0  # maximum string length; 0 = unbounded
    minimum: int | None = None
    maximum: int | None = None
    refs: tuple[str, ...] = ()  # datasource tables a name must exist in
    specials: tuple[str, ...] = ()  # names valid without a datasource entry ("any")
    fields: Mapping[str, Field] = field(default_factory=dict)  # container / child-table attributes
    mkey: str = "name"  # child-table key
    mkey_int: bool = False
    required: bool = False


def mask_secret(value: str) -> str:
    """How FortiOS shows a stored secret: ``ENC`` and an opaque blob (here a digest, never the value)."""
    if not value:
        return ""
    return "ENC " + hashlib.sha256(value.encode()).hexdigest()[:40]


def _as_text(attr: str, value: Any, size: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad_value(attr, value)
    text = str(value)
    if size and len(text) > size:
        raise CmdbError.invalid(f"The string is too long (max {size}): {attr}")
    return text


def _as_int(attr: str, value: Any, lo: int | None, hi: int | None) -> int:
    if isinstance(value, bool):
        raise _bad_value(attr, value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _bad_value(attr, value) from None
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise CmdbError(500, -650, f"value out of range for {attr}: {number}\nCommand fail. Return code -650")
    return number


def _tokens(attr: str, value: Any) -> list[str]:
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, dict):
                raise _bad_value(attr, item)
            out.extend(_tokens(attr, item))
        return out
    if isinstance(value, bool) or value is None:
        raise _bad_value(attr, value)
    return [t.strip('"') for t in str(value).split()]


def _unique(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _name_list(attr: str, value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        items: list[Any] = _tokens(attr, value)
    elif isinstance(value, list):
        items = value
    else:
        raise _bad_value(attr, value)
    out: list[dict[str, str]] = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name or len(name) > 79:
            raise _bad_value(attr, item)
        if isinstance(item, dict) and any(k != "name" and not k.startswith("q_") for k in item):
            raise CmdbError.invalid(f"command parse error before '{attr}'")
        out.append({"name": name})
    return _unique(out)


def _ipmask(attr: str, value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        value = " ".join(str(v) for v in value)
    if not isinstance(value, str):
        raise _bad_value(attr, value)
    text = value.strip().replace(" ", "/")
    try:
        net = ipaddress.IPv4Interface(text)
    except ValueError:
        raise _bad_value(attr, value) from None
    return f"{net.ip} {net.netmask}"


def _ip(attr: str, value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value).strip()))
    except ValueError:
        raise _bad_value(attr, value) from None


def _iprange(attr: str, value: Any) -> str:
    parts = str(value).strip().split("-")
    if not 1 <= len(parts) <= 2:
        raise _bad_value(attr, value)
    return "-".join(_ip(attr, p) for p in parts)


def _uuid(attr: str, value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise _bad_value(attr, value) from None


def defaults(fields: Mapping[str, Field]) -> dict[str, Any]:
    """A fresh object holding every field's default (containers filled, tables empty)."""
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if spec.kind == "container":
            out[name] = defaults(spec.fields)
        elif isinstance(spec.default, list):
            out[name] = [dict(d) if isinstance(d, dict) else d for d in spec.default]
        else:
            out[name] = spec.default
    return out


def merge_fields(
    fields: Mapping[str, Field], current: dict[str, Any], body: Mapping[str, Any]
) -> dict[str, Any]:
    """``current`` with ``body`` merged in: each value checked, unknown attributes rejected."""
    merged = dict(current)
    for attr, value in body.items():
        if attr.startswith("q_"):  # clients echo GET metadata back; FortiOS ignores it
            continue
        spec = fields.get(attr)
        if spec is None:
            raise CmdbError.invalid(f"command parse error before '{attr}'\nUnknown attribute '{attr}'")
        merged[attr] = coerce(spec, attr, value, current.get(attr))
    return merged


def _text(spec: Field, attr: str, value: Any, _: Any) -> str:
    return _as_text(attr, value, spec.size)


def _reference(spec: Field, attr: str, value: Any, _: Any) -> str:
    # Some clients send a one-element {name} list where FortiOS keeps a single name.
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0].get("name", "")
    return _as_text(attr, value, spec.size).strip('"')


def _secret(spec: Field, attr: str, value: Any, current: Any) -> str:
    text = _as_text(attr, value, spec.size)
    # A client that PUTs back what it read sends the mask: keep the stored secret.
    return current if isinstance(current, str) and text == mask_secret(current) else text


def _option(spec: Field, attr: str, value: Any, _: Any) -> str:
    if not isinstance(value, str) or value.strip('"') not in spec.options:
        raise _bad_value(attr, value)
    return value.strip('"')


def _integer(spec: Field, attr: str, value: Any, _: Any) -> int:
    return _as_int(attr, value, spec.minimum, spec.maximum)


def _multi_option(spec: Field, attr: str, value: Any, _: Any) -> str:
    tokens = _unique(_tokens(attr, value))
    if spec.options and any(t not in spec.options for t in tokens):
        raise _bad_value(attr, value)
    return " ".join(tokens)


def _port_list(_: Field, attr: str, value: Any, __: Any) -> list[int]:
    return _unique([_as_int(attr, t, 0, 65535) for t in _tokens(attr, value)])


def _container(spec: Field, attr: str, value: Any, current: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad_value(attr, value)
    base = current if isinstance(current, dict) else defaults(spec.fields)
    return merge_fields(spec.fields, base, value)


def _plain(parse: Callable[[str, Any], Any]) -> Callable[[Field, str, Any, Any], Any]:
    def coerce_plain(_: Field, attr: str, value: Any, __: Any) -> Any:
        return parse(attr, value)

    return coerce_plain


def coerce(spec: Field, attr: str, value: Any, current: Any) -> Any:
    """One attribute's value in stored form, or ``CmdbError`` -651 (FortiOS's value parse error)."""
    if value is None:
        raise _bad_value(attr, "null")
    return _COERCERS[spec.kind](spec, attr, value, current)


def _table(spec: Field, attr: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _bad_value(attr, value)
    rows: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise _bad_value(attr, item)
        rows.append(table_row(spec, attr, item, rows))
    return rows


def table_row(spec: Field, attr: str, item: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One child-table entry built from defaults; integer keys of 0/absent get the next free id."""
    row = merge_fields(spec.fields, defaults(spec.fields), item)
    key = row.get(spec.mkey)
    if spec.mkey_int and not key:
        row[spec.mkey] = max((int(r[spec.mkey]) for r in rows), default=0) + 1
    elif key in ("", None):
        raise CmdbError.invalid(f"attribute '{spec.mkey}' MUST be set in {attr}")
    if any(r[spec.mkey] == row[spec.mkey] for r in rows):
        raise CmdbError.duplicate()
    return row


_COERCERS: dict[str, Callable[[Field, str, Any, Any], Any]] = {
    "string": _text,
    "text": _text,
    "ref": _reference,
    "secret": _secret,
    "option": _option,
    "integer": _integer,
    "multi": _multi_option,
    "ports": _port_list,
    "names": _plain(_name_list),
    "container": _container,
    "table": lambda spec, attr, value, _: _table(spec, attr, value),
    "ipmask": _plain(_ipmask),
    "ip": _plain(_ip),
    "iprange": _plain(_iprange),
    "uuid": _plain(_uuid),
}


def iter_refs(fields: Mapping[str, Field], obj: Mapping[str, Any]) -> Iterator[tuple[Field, str]]:
    """Every (field, referenced name) in an object, containers and child tables included."""
    for attr, spec in fields.items():
        value = obj.get(attr)
        if spec.kind == "ref" and spec.refs and value:
            yield spec, str(value)
        elif spec.kind == "names" and spec.refs and isinstance(value, list):
            for item in value:
                yield spec, str(item.get("name", ""))
        elif spec.kind == "container" and isinstance(value, dict):
            yield from iter_refs(spec.fields, value)
        elif spec.kind == "table" and isinstance(value, list):
            for row in value:
                yield from iter_refs(spec.fields, row)


def missing_required(fields: Mapping[str, Field], obj: Mapping[str, Any]) -> str | None:
    """The first required attribute left empty, if any."""
    for attr, spec in fields.items():
        if spec.required and obj.get(attr) in ("", [], None):
            return attr
    return None


@dataclass(frozen=True)
class ObjectSpec:
    """One CMDB path: a table (keyed by ``mkey``) or a complex (singleton) object."""

    path: str  # "firewall/policy", "vpn.certificate/local"
    fields: Mapping[str, Field]
    category: Literal["table", "complex"] = "table"
    mkey: str | None = "name"
    mkey_int: bool = False
    scope: Literal["vdom", "global"] = "vdom"
    read_only: frozenset[str] = frozenset()  # built-in entries that cannot be changed or deleted
    undeletable: frozenset[str] = frozenset()
    writable: bool = True  # False: the whole path is read-only over the API
    access_group: str = "sysgrp"
    q_type: int = 1

    @property
    def prefix(self) -> str:
        return self.path.split("/")[0]

    @property
    def name(self) -> str:
        return self.path.split("/")[1]

    def parse_mkey(self, text: str) -> str | int:
        """A URL mkey in stored form; a non-number for an integer key cannot exist (404)."""
        if self.mkey_int:
            try:
                return int(text)
            except ValueError:
                raise CmdbError.not_found() from None
        return text

    def fresh(self) -> dict[str, Any]:
        return defaults(self.fields)

    def apply(self, current: dict[str, Any] | None, body: Mapping[str, Any]) -> dict[str, Any]:
        """The object after a create (``current`` None: defaults first) or an update (merge)."""
        base = self.fresh() if current is None else current
        obj = merge_fields(self.fields, base, body)
        missing = missing_required(self.fields, obj)
        if missing:
            raise CmdbError.invalid(f"attribute '{missing}' MUST be set")
        return obj
