"""Escaping for every report format: text from a device or a file is data, never structure.

A device name, a reason or an error text can hold newlines, ``|``, ``#``, rich markup such as
``[bold]`` or ``[http 500, error -1]``, or HTML. Each reporter passes such text through the
function for its format here, so no value can forge a line, a table row, a heading, a tag or
markup (issue 14). Jinja2's autoescape covers HTML; the rest is below.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["md_cell", "md_code_fence", "md_text", "one_line", "visible", "xml_text"]

# C0/C1 controls and the bidirectional overrides that can make text read differently than stored.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# XML 1.0 allows no C0 control except tab, newline and carriage return, and no lone surrogate.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Characters Markdown (CommonMark + GFM tables) can read as structure anywhere in a line; an
# underscore inside a word (``rolled_back``) is never emphasis in GFM and stays readable. An
# escaped ``&`` keeps a name holding "&amp;" from being shown as "&".
_MD_INLINE = re.compile(r"([\\`*\[\]<>|~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# ... and at the start of a line: headings, quotes, list items, rules.
_MD_LEADING = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|>|[-+*=](?=\s|$)|[-=_*]{3,}|\d+[.)](?=\s|$))")


def _visible(char: str) -> str:
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def one_line(value: Any) -> str:
    """``value`` as one line: newlines, other controls and bidi overrides shown as escapes."""
    return _INVISIBLE.sub(lambda m: _visible(m.group()), str(value))


def visible(value: Any) -> str:
    """Like ``one_line`` but keeping newlines and tabs (for a block of lines, e.g. HTML ``<pre>``)."""
    return _INVISIBLE.sub(lambda m: m.group() if m.group() in "\n\t" else _visible(m.group()), str(value))


def _escape_leading(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker[0].isdigit():  # "1." -> "1\." (a backslash before a digit is no escape)
        return f"{indent}{marker[:-1]}\\{marker[-1]}"
    return f"{indent}\\{marker}"


def md_text(value: Any) -> str:
    """Inline Markdown text (a paragraph, a heading's text, a list item): one line, no markup."""
    text = _MD_INLINE.sub(r"\\\1", one_line(value))
    return _MD_LEADING.sub(_escape_leading, text)


def md_cell(value: Any) -> str:
    """A GFM table cell: inline escapes (``|`` cannot split the row), one line, never empty."""
    return _MD_INLINE.sub(r"\\\1", one_line(value)) or " "


def md_code_fence(text: str) -> str:
    """A fence longer than any backtick run in ``text``, so the block cannot be closed early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def xml_text(value: Any) -> str:
    """Text an XML 1.0 document can hold (ElementTree escapes ``<&>"``; it does not drop these)."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
