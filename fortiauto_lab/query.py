"""GET query semantics shared by the lab's CMDB, monitor and log endpoints: filter, format, paging.

``filter=<key><op><value>`` with the FortiOS operators (``==`` ``!=`` ``=@`` ``!@`` ``<``
``<=`` ``>`` ``>=``; string comparisons case-insensitive), a comma inside one filter is
OR and repeated ``filter=`` parameters are AND. A key may be dotted (``issuer.CN``) for
monitor results. A list of ``{name}`` references matches when any member matches.
``format=a|b`` keeps only those keys; ``start``/``count`` page. No I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Clause", "FilterError", "apply_format", "matches", "page", "parse_filters"]

_TWO_CHAR = ("==", "!=", "=@", "!@", "<=", ">=")
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class FilterError(ValueError):
    """A ``filter`` parameter without a known operator."""


@dataclass(frozen=True)
class Clause:
    key: str
    op: str
    value: str


def _clause(text: str) -> Clause:
    for i in range(1, len(text)):
        if text[i : i + 2] in _TWO_CHAR:
            return Clause(text[:i], text[i : i + 2], text[i + 2 :])
        if text[i] in "<>":
            return Clause(text[:i], text[i], text[i + 1 :])
    raise FilterError(f"invalid filter {text!r}")


def parse_filters(values: Sequence[str]) -> list[list[Clause]]:
    """Each ``filter=`` value is a list of OR-ed clauses; the lists are AND-ed."""
    return [[_clause(part) for part in value.split(",") if part] for value in values if value]


def _lookup(obj: Any, key: str) -> Any:
    value = obj
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(_scalars(next(iter(item.values()), None) if isinstance(item, dict) else item))
        return out
    return [value]


def _compare(have: Any, op: str, want: str) -> bool:
    if op in _ORDER:
        try:
            return _ORDER[op](float(have), float(want))
        except (TypeError, ValueError):
            return _ORDER[op](str(have).lower(), want.lower())
    text, pattern = ("" if have is None else str(have)).lower(), want.lower()
    if op == "==":
        return text == pattern
    if op == "=@":
        return pattern in text
    raise AssertionError(op)  # negative operators are handled by the caller


def _clause_matches(obj: Any, clause: Clause) -> bool:
    values = _scalars(_lookup(obj, clause.key))
    if clause.op in ("!=", "!@"):
        positive = "==" if clause.op == "!=" else "=@"
        return not any(_compare(v, positive, clause.value) for v in values)
    return any(_compare(v, clause.op, clause.value) for v in values)


def matches(obj: Any, filters: list[list[Clause]]) -> bool:
    return all(any(_clause_matches(obj, c) for c in group) for group in filters)


def apply_format(obj: dict[str, Any], fmt: str | None) -> dict[str, Any]:
    if not fmt:
        return obj
    keep = {k for k in fmt.split("|") if k} | {"q_origin_key"}
    return {k: v for k, v in obj.items() if k in keep}


def page(items: list[Any], start: str | None, count: str | None) -> list[Any]:
    """``start``/``count`` paging; unparseable numbers are ignored as FortiOS ignores them."""
    first = int(start) if start and start.isdigit() else 0
    if count and count.isdigit():
        return items[first : first + int(count)]
    return items[first:]
