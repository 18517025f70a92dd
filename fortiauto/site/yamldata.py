"""YAML text into plain data with the line of every key, fast and bounded.

First stage of the pipeline (site -> plan -> apply -> verify -> commit | rollback -> report).
libyaml (PyYAML's C parser, pure Python where it is missing) composes the node tree with
marks; this module walks it once into dicts, lists and scalars and records where each key and
list item is written, so the loader can name file:line for every problem it finds later.

The walk is where hostile input is stopped: values reached through aliases are counted
(``ALIAS_VALUES``, so a "billion laughs" file is refused after a few milliseconds), nesting
is bounded, an alias inside its own anchor is refused, duplicate keys and tags are errors.
Plain scalars follow the YAML 1.2 core schema (``yes``, ``on``, ``010`` and ``1:30`` stay
what they look like), plus timestamps for the change window; ``<<`` merge keys work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from fortiauto.errors import Problem

__all__ = ["ALIAS_VALUES", "MAX_DEPTH", "MAX_VALUES", "Loc", "Parsed", "key_path", "parse_yaml"]

Loc = tuple[str | int, ...]

# Values an alias may bring in, over the whole file: a 1,000-device fleet that merges one
# mail-server anchor into every device uses ~30,000; the classic alias bomb needs 10^9.
ALIAS_VALUES = 100_000
# A site file nests about eight levels deep; libyaml itself stops at 1,000.
MAX_DEPTH = 32
# Values in the file, counted before libyaml builds a node for each: every node but the first
# follows a line break, ", ", ": ", "- ", "? ", "[" or "{". A 1,000-device fleet has ~41,000;
# 4 MB of "1," would be two million (20 s and 900 MB to compose).
MAX_VALUES = 250_000
_SEPARATORS = ("\n", ",", ": ", "- ", "? ", "[", "{")

# yaml.cyaml's CSafeLoader is CParser + SafeConstructor + Resolver; only the parser is wanted here.
_CParser: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None)
_YAML = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (f"{_YAML}{t}" for t in ("str", "null", "bool", "int", "float"))
_TIMESTAMP, _MERGE, _MAP, _SEQ = (f"{_YAML}{t}" for t in ("timestamp", "merge", "map", "seq"))


class _CoreResolver(BaseResolver):
    """Implicit tags of the YAML 1.2 core schema (yaml.org/spec/1.2.2, 10.3.2), and timestamps.

    ``resolve`` is called by the parser for every node; this one skips BaseResolver's path
    resolvers, which a site file does not use (a fifth of the parse time of a large fleet).
    """

    def __init__(self) -> None:
        super().__init__()
        self._tags: dict[str, str] = {}  # plain scalar -> its tag: the same few words recur in a fleet

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0]:
            return _STR  # quoted
        tag = self._tags.get(value)
        if tag is None:
            tag = next(
                (
                    str(t)
                    for t, regexp in self.yaml_implicit_resolvers.get(value[:1], ())
                    if regexp.match(value)
                ),
                _STR,
            )
            self._tags[value] = tag
        return tag


for _tag, _pattern, _first in (
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
    (
        _TIMESTAMP,
        r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}"
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$",
        list("0123456789"),
    ),
    (_MERGE, r"^(?:<<)$", ["<"]),
):
    _CoreResolver.add_implicit_resolver(_tag, re.compile(_pattern), _first)

if _CParser is not None:

    class _CComposer(_CParser, _CoreResolver):  # type: ignore[misc]
        """libyaml's parser and composer with the core-schema resolver: nodes with marks, no objects."""

        def __init__(self, text: str) -> None:
            _CParser.__init__(self, text)
            _CoreResolver.__init__(self)


class _PyComposer(Reader, Scanner, Parser, Composer, _CoreResolver):
    """The same in pure Python, for a PyYAML built without libyaml (several times slower)."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)


def _composer(text: str) -> Any:
    return _PyComposer(text) if _CParser is None else _CComposer(text)


_TIMESTAMPS = SafeConstructor()  # its timestamp parser needs no parser state


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_path(loc: Loc) -> str:
    """``("devices", 0, "url")`` -> ``devices[0].url``; any other key as ``["its repr"]``.

    A key is the file's text: one with a line break, a dot or a bracket must not forge another
    line or another path in a problem.
    """
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


@dataclass
class Parsed:
    """The document as plain data, the 1-based line of every key and item, and what was wrong.

    ``references`` lists where a string holds ``${`` (a secret reference for the loader to resolve),
    so the loader need not walk the whole document again.
    """

    data: object = None
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    references: list[Loc] = field(default_factory=list)


class _TooMuch(Exception):
    """The alias budget or the depth limit ran out; the walk stops at once."""


@dataclass
class _Walk:
    file: str
    parsed: Parsed
    visited: set[int] = field(default_factory=set)
    active: set[int] = field(default_factory=set)
    aliased: int = 0

    def problem(self, node: Node, loc: Loc, message: str) -> None:
        line = node.start_mark.line + 1
        self.parsed.problems.append(Problem(message, file=self.file, line=line, key=key_path(loc)))

    def value(self, node: Node, loc: Loc) -> object:
        if node.__class__ is ScalarNode:
            # A scalar alias is one value per ``*name`` written, so it cannot expand the file.
            return self.scalar(node, loc)
        ident = id(node)
        if ident in self.active:
            self.problem(node, loc, "invalid YAML: an alias refers to the value that contains it")
            return None
        if ident in self.visited:
            self.spend(node, loc, len(node.value))
        else:
            self.visited.add(ident)
        if len(loc) > MAX_DEPTH:
            self.problem(node, loc, f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
            raise _TooMuch
        self.active.add(ident)
        try:
            if node.__class__ is SequenceNode and node.tag == _SEQ:
                return self.sequence(node, loc)
            if node.__class__ is MappingNode and node.tag == _MAP:
                result: dict[str, object] = {}
                self.mapping(node, loc, result, merged=False)
                return result
        finally:
            self.active.discard(ident)
        self.problem(node, loc, "YAML tags are not supported here")
        return None

    def spend(self, node: Node, loc: Loc, values: int) -> None:
        """Count values a revisited (aliased) collection brings in; stop past the budget."""
        self.aliased += values
        if self.aliased > ALIAS_VALUES:
            self.problem(node, loc, f"invalid YAML: aliases expand to more than {ALIAS_VALUES:,} values")
            raise _TooMuch

    def sequence(self, node: SequenceNode, loc: Loc) -> list[object]:
        items = []
        lines = self.parsed.lines
        for index, item in enumerate(node.value):
            sub = (*loc, index)
            if sub not in lines:
                lines[sub] = item.start_mark.line + 1
            items.append(self.value(item, sub))
        return items

    def mapping(self, node: MappingNode, loc: Loc, result: dict[str, object], *, merged: bool) -> None:
        """Fill ``result`` from ``node``; keys already there win (they came from the merging map)."""
        merges: list[Node] = []
        own: set[str] = set()
        lines = self.parsed.lines
        for key_node, value_node in node.value:
            tag = key_node.tag
            if tag != _STR or key_node.__class__ is not ScalarNode:
                if tag == _MERGE and key_node.__class__ is ScalarNode:
                    merges.append(value_node)
                else:
                    self.problem(key_node, loc, "keys must be text")
                continue
            key = key_node.value
            sub = (*loc, key)
            if key in own:
                self.problem(key_node, sub, f"invalid YAML: duplicate key {key!r}")
                continue
            own.add(key)
            if merged:
                if key in result:
                    continue
                lines.setdefault(sub, key_node.start_mark.line + 1)
            else:
                lines[sub] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, sub)
        for source in merges:
            self.merge(source, loc, result)

    def merge(self, source: Node, loc: Loc, result: dict[str, object]) -> None:
        sources = source.value if isinstance(source, SequenceNode) else [source]
        for each in sources:
            if not isinstance(each, MappingNode) or each.tag != _MAP:
                self.problem(each, loc, "invalid YAML: << merges a mapping or a list of mappings")
                continue
            if id(each) in self.active:
                self.problem(each, loc, "invalid YAML: an alias refers to the value that contains it")
                continue
            self.spend(each, loc, len(each.value))
            self.active.add(id(each))
            try:
                self.mapping(each, loc, result, merged=True)
            finally:
                self.active.discard(id(each))

    def scalar(self, node: ScalarNode, loc: Loc) -> object:  # noqa: PLR0911 - one value per YAML 1.2 scalar form, as the spec orders them
        tag, text = node.tag, node.value
        if tag == _STR:
            if "${" in text:
                self.parsed.references.append(loc)
            return text
        if tag == _NULL and text in ("", "~", "null", "Null", "NULL"):
            return None
        if tag == _BOOL and text.lower() in ("true", "false"):
            return text.lower() == "true"
        try:
            if tag == _INT:
                return _integer(text)
            if tag == _FLOAT:
                return _float(text)
            if tag == _TIMESTAMP:
                stamp: date | datetime = _TIMESTAMPS.construct_yaml_timestamp(node)
                return stamp
        except (ValueError, TypeError):
            self.problem(node, loc, f"invalid YAML: the value does not fit its tag !!{tag.rsplit(':', 1)[1]}")
            return None
        self.problem(node, loc, "YAML tags are not supported here")
        return None


def _integer(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.lstrip("+-") == ".inf":
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(text)


def _syntax_problem(exc: yaml.YAMLError, file: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        # libyaml's texts name what it expected, never the document's values.
        text = str(exc.problem or exc.context or "syntax error")
        if text == "but found another document":
            text = "a site file is one YAML document; this is a second one (---)"
        return Problem(f"invalid YAML: {text}", file=file, line=line)
    return Problem(f"invalid YAML ({type(exc).__name__})", file=file)


def parse_yaml(text: str, *, file: str) -> Parsed:
    """One YAML document as plain data (``None`` for an empty file) with lines and problems.

    Never raises for bad input: every problem is in ``Parsed.problems`` with file and line.
    """
    parsed = Parsed()
    if sum(text.count(separator) for separator in _SEPARATORS) > MAX_VALUES:
        message = f"more than {MAX_VALUES:,} values (keys, items, scalars); split the site file"
        parsed.problems.append(Problem(f"invalid YAML: {message}", file=file))
        return parsed
    composer = _composer(text)
    try:
        root = composer.get_single_node()
    except yaml.YAMLError as exc:
        parsed.problems.append(_syntax_problem(exc, file))
        return parsed
    except RecursionError:  # only the pure-Python composer recurses; libyaml stops at depth 1,000
        parsed.problems.append(Problem(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", file=file))
        return parsed
    finally:
        composer.dispose()
    if root is None:
        return parsed
    parsed.lines[()] = root.start_mark.line + 1
    try:
        parsed.data = _Walk(file, parsed).value(root, ())
    except _TooMuch:
        parsed.data = None
    return parsed
