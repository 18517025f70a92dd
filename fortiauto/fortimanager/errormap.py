"""The one boundary where httpx exceptions and FortiManager status codes become ``fortiauto.errors``.

``client.py`` runs every exchange inside ``mapped_errors`` and passes every parsed answer to
``raise_for_answer``; nothing above the client sees an httpx exception or a raw status code.
Errors carry where they happened (method and url) and never a secret: FortiManager's message
is scrubbed of the request's secrets before it is kept. Codes: FortiManager JSON API docs
(how-to-fortimanager-api.readthedocs.io: -11 "No permission for the resource", -6 "Invalid url",
-10 "The data is invalid for selected url") and the fortinet.fortimanager Ansible collection's
``module_utils/common.py`` return-code table (-2, -3, -10131, -9998, -10000, -10033, -20042),
its issue ansible/ansible#65915 (-10147 "no write permission" when the workspace is not locked),
and -20020 "No permission" for workflow sessions.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypedDict

import httpx

from fortiauto import errors
from fortiauto.fortimanager.rpc import Answer, MalformedAnswer

__all__ = ["RequestContext", "error_for_answer", "mapped_errors", "raise_for_answer", "raise_for_http"]

_REDACTED = "***"
_NOT_FOUND = frozenset({-3, -6})
_EXISTS = frozenset({-2, -9998, -10000, -10033})
_INVALID = frozenset({-10, -10131})
_NO_PERMISSION = frozenset({-11, -10147, -20020})


class Where(TypedDict):
    """The keyword arguments every ``FortiManagerError`` takes to say where it happened."""

    method: str
    url: str
    fortimanager: str


@dataclass(frozen=True)
class RequestContext:
    """Where a request went; ``secrets`` are scrubbed from any text FortiManager echoes back."""

    method: str
    url: str
    fortimanager: str = ""
    write: bool = False
    login: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def where(self) -> Where:
        return {"method": self.method, "url": self.url, "fortimanager": self.fortimanager}

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
        return text


@contextmanager
def mapped_errors(ctx: RequestContext) -> Iterator[None]:
    """Turn whatever the exchange raises into the ``FortiManagerError`` tree, ``from`` the original."""
    try:
        yield
    except errors.FortiautoError:
        raise
    except MalformedAnswer as exc:
        raise errors.FortiManagerAPIError(f"FortiManager: {exc}", **ctx.where()) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
        raise _transport_error(exc, ctx) from exc


def raise_for_http(ctx: RequestContext, response: httpx.Response) -> None:
    """Raise for an HTTP status that carries no JSON-RPC answer (401/403 for a bad API key, 5xx)."""
    status = response.status_code
    if status in (401, 403):
        raise errors.FortiManagerAuthError(
            f"FortiManager: HTTP {status}: the API key or session was refused", **ctx.where()
        )
    if status != 200:
        raise errors.FortiManagerAPIError(f"FortiManager: unexpected HTTP {status}", **ctx.where())


def raise_for_answer(ctx: RequestContext, answer: Answer) -> Answer:
    """Return the answer when its status code is 0, else raise the matching error."""
    if answer.ok:
        return answer
    raise error_for_answer(ctx, answer)


def error_for_answer(ctx: RequestContext, answer: Answer) -> errors.FortiManagerError:
    """The error a non-zero status code stands for."""
    message = ctx.scrub(answer.message) or "no message"
    text = f"FortiManager: {message}"
    if ctx.login:
        return errors.FortiManagerAuthError(
            f"{text}: check the username/password and rpc-permit", **ctx.where()
        )
    code = answer.code
    cls: type[errors.FortiManagerAPIError] = errors.FortiManagerAPIError
    if code in _NOT_FOUND:
        cls = errors.FortiManagerNotFound
    elif code in _EXISTS:
        cls = errors.FortiManagerAlreadyExists
    elif code in _INVALID:
        cls = errors.FortiManagerInvalidData
    elif code in _NO_PERMISSION:
        cls = errors.FortiManagerNoPermission
    return cls(text, code=code, **ctx.where())


def _transport_error(exc: Exception, ctx: RequestContext) -> errors.FortiManagerError:
    where = ctx.where()
    if isinstance(exc, httpx.ConnectError) and _cert_verify_failure(exc):
        return errors.FortiManagerTransportError(
            "TLS certificate verification failed; set the fortimanager block's verify_tls "
            "to the CA bundle that signed FortiManager's certificate",
            **where,
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return errors.FortiManagerTransportError("timed out connecting to FortiManager", **where)
    if isinstance(exc, httpx.ConnectError):
        return errors.FortiManagerTransportError("could not connect to FortiManager", **where)
    if ctx.write:
        # The request left us; FortiManager may carry it out. The caller re-reads, never resends.
        return errors.FortiManagerTransportError(
            f"the request was sent but its answer was lost ({type(exc).__name__})",
            in_flight=isinstance(exc, httpx.TimeoutException),
            **where,
        )
    if isinstance(exc, httpx.TimeoutException):
        return errors.FortiManagerTransportError("timed out waiting for FortiManager's answer", **where)
    return errors.FortiManagerTransportError(
        f"the exchange with FortiManager failed ({type(exc).__name__})", **where
    )


def _cert_verify_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        current = current.__cause__ or current.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)
