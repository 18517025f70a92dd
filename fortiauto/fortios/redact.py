"""Keep credentials out of every text a FortiOS exchange can produce: log records and error texts.

The client calls ``install_log_redaction`` when it is created; from then on every record of the
loggers that can see a request (fortiauto's own, httpx, httpcore, hpack, h2, asyncio) is
scrubbed before any handler formats it: the message, its arguments, the exception text and the
stack. ``errormap`` runs the same ``redact`` over texts built from library exceptions (such as
httpcore's "Illegal header value b'Bearer ...'"). Redaction goes by shape, not by value, so one
filter serves every client of the process and holds no secret itself: ``Bearer`` values,
``Authorization``/``Cookie``/``Set-Cookie``/``X-CSRFTOKEN`` header values (also in httpcore's
``(b'name', b'value')`` tuples), ``APSCOOKIE_*``/``ccsrftoken*``/``ccsrf_token*``/``session_key*``
cookies, and ``secretkey``/``password``/``token``-like fields in form, JSON or repr text.
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["LOGGER_FAMILIES", "RedactingFilter", "install_log_redaction", "redact"]

MASK: Final = "***"

# Logger trees that can see a request or its answer (hpack/h2 when HTTP/2 is used, asyncio for
# "exception was never retrieved" reports that carry exception texts).
LOGGER_FAMILIES: Final = ("fortiauto", "httpx", "httpcore", "hpack", "h2", "h11", "asyncio")
# Children that log on their own (a logger's filter sees only records created on that logger).
_KNOWN_CHILDREN: Final = (
    "fortiauto.fortios",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack.hpack",
    "hpack.table",
    "h2.connection",
)

_HEADER_NAMES = r"authorization|proxy-authorization|cookie|set-cookie|x-csrftoken"
_COOKIE_NAMES = r"apscookie_[\w-]*|ccsrf_?token[\w-]*|session_key[\w-]*"
_FIELD_NAMES = (
    r"secretkey|password|passphrase|access_token|session_key|api[-_]key|private[-_]key"
    r"|key_file_content|psksecret|token"
)

_PATTERNS: Final = (
    # cookies first: a header line below would stop at their quotes
    (re.compile(rf"""(\b(?:{_COOKIE_NAMES})\s*=\s*)("?)[^;,\s'"\\]*\2""", re.I), rf"\1{MASK}"),
    # httpcore's header tuples: (b'Set-Cookie', b'APSCOOKIE_1="..."; path=/')
    (
        re.compile(rf"""((?:b)?(['"])(?:{_HEADER_NAMES})\2\s*,\s*b?)(['"])(?:(?!\3).|\\.)*\3""", re.I),
        rf"\1\3{MASK}\3",
    ),
    # "Authorization: Bearer x", "Cookie: a=b; c=d" as header lines or dict reprs
    (
        re.compile(rf"""((?:{_HEADER_NAMES})['"]?\s*[:=]\s*['"]?)[^'"\r\n]+""", re.I),
        rf"\1{MASK}",
    ),
    (re.compile(r"(\bbearer\s+)[^\s'\"\\,;)]+", re.I), rf"\1{MASK}"),
    # form and query fields: secretkey=...&
    (re.compile(rf"""(\b(?:{_FIELD_NAMES})=)[^&\s'"]*""", re.I), rf"\1{MASK}"),
    # JSON and repr fields: "secretkey": "..."
    (
        re.compile(rf"""((['"])(?:{_FIELD_NAMES})\2\s*:\s*)(['"])(?:(?!\3).|\\.)*\3""", re.I),
        rf"\1\3{MASK}\3",
    ),
)


def redact(text: str) -> str:
    """``text`` with every credential-shaped value replaced by ``***``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record in place so no handler can format a credential; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep what can be shown
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            # The handler would format exc_info again only when exc_text is empty; keep ours.
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(manager: logging.Manager | None = None) -> None:
    """Put one ``RedactingFilter`` on every logger of ``LOGGER_FAMILIES`` (idempotent).

    Covers the known children and every logger of those families already registered, since a
    logger's filters see only records created on that very logger.
    """
    manager = manager or logging.Logger.manager
    names = set(LOGGER_FAMILIES) | set(_KNOWN_CHILDREN)
    names |= {
        name
        for name in list(manager.loggerDict)
        if any(name == family or name.startswith(f"{family}.") for family in LOGGER_FAMILIES)
    }
    for name in sorted(names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
