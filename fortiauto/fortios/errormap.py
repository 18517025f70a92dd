"""The one boundary where httpx exceptions and FortiOS error envelopes become ``fortiauto.errors``.

The client runs every exchange inside ``mapped_errors`` and passes every parsed answer to
``raise_for_answer``; nothing above the client ever sees an httpx exception. An answer that is
not a well-formed FortiOS envelope for what was asked is ``MalformedAnswer`` — never success,
never "absent". Each error carries where it happened (``RequestContext``: method, path, mkey,
vdom, device) and, for API errors, the HTTP status, FortiOS error code and ``cli_error`` —
scrubbed of the request's secrets, since a CLI error can echo a value back. A connection that
never came up is ``Unreachable`` naming the URL and the cause in words. Codes follow FortiOS's
CLI return codes (docs/fortios-client.md). Also answers the one retry question that needs httpx
knowledge: was anything sent?
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from fortiauto import errors
from fortiauto.fortios.auth import LoginRejected
from fortiauto.fortios.envelope import Envelope
from fortiauto.fortios.pinning import PinMismatch
from fortiauto.fortios.redact import redact

__all__ = [
    "SECRET_FIELDS",
    "RequestContext",
    "error_for_envelope",
    "malformed",
    "mapped_errors",
    "nothing_sent",
    "raise_for_answer",
    "secret_values",
]

_REDACTED = "***"

# Field and query names whose values are secret wherever they appear (request bodies, URLs).
SECRET_FIELDS: Final = frozenset(
    {
        "access_token",
        "api-key",
        "key_file_content",
        "passphrase",
        "password",
        "private-key",
        "private_key",
        "psksecret",
        "secretkey",
        "session_key",
        "token",
    }
)

_INVALID_VALUE_CODES = frozenset({-651, -650, -145, -146})
_CODE_CLASSES: Final[dict[int, type[errors.APIError]]] = {
    -3: errors.NotFound,
    -5: errors.AlreadyExists,
    -23: errors.InUse,
    **dict.fromkeys(_INVALID_VALUE_CODES, errors.InvalidValue),
}
_STATUS_CLASSES: Final[dict[int, type[errors.APIError]]] = {
    424: errors.DependencyFailed,
    429: errors.RateLimited,
}

# Short texts for the FortiOS CLI return codes fortiauto meets (vendor list, protocol sheet section 6).
_CODE_TEXT = {
    -3: "entry not found",
    -5: "a duplicate entry already exists",
    -23: "entry is used by other objects",
    -37: "permission denied",
    -145: "imported certificate or key invalid",
    -146: "imported certificate or key invalid",
    -650: "value out of range",
    -651: "input value is invalid",
}

_STATUS_TEXT = {
    400: "bad request",
    401: "authentication failed: check the token or username/password and the admin's trusthosts",
    403: "forbidden: the admin profile lacks rights or the CSRF token was refused",
    404: "not found",
    405: "method not allowed",
    413: "request entity too large",
    424: "failed dependency (duplicate, missing or invalid attribute)",
    429: "access temporarily blocked (too many requests or failed logins)",
    500: "internal error",
}

# Failures that happen before a single byte of the request reaches the device.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RequestContext:
    """Where a request went, for error messages; ``secrets`` are scrubbed from any echoed text."""

    method: str
    path: str
    mkey: Any = None
    vdom: str | None = None
    device: str = ""
    write: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # What a well-formed answer must look like: the API ("cmdb", "monitor", "log"), the mkey a
    # create expects FortiOS to echo, the device URL and timeout for transport messages.
    api: str = "cmdb"
    expect_mkey: Any = None
    url: str = ""
    timeout: float | None = None

    def where(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "mkey": self.mkey,
            "vdom": self.vdom,
            "device": self.device,
        }

    def scrub(self, text: str | None) -> str | None:
        """``text`` with this request's secrets and anything shaped like a credential replaced."""
        if text is None:
            return None
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
        return redact(text)


@contextmanager
def mapped_errors(ctx: RequestContext) -> Iterator[None]:
    """Turn whatever the exchange raises into the ``FortiOSError`` tree, ``from`` the original."""
    try:
        yield
    except errors.FortiautoError:
        raise
    except LoginRejected as exc:
        raise _login_error(exc, ctx) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
        _scrub_chain(exc, ctx)
        raise _transport_error(exc, ctx) from exc


def _scrub_chain(exc: BaseException, ctx: RequestContext) -> None:
    """Scrub the texts of the library exceptions we chain (``from exc``), in place.

    httpcore's and h11's "Illegal header value b'Bearer ...'" quote the header, token included,
    and a traceback under ``--debug`` prints every exception of the chain.
    """
    for cause in _causes(exc):
        if any(isinstance(arg, str | bytes) for arg in cause.args):
            cause.args = tuple(_scrub_arg(arg, ctx) for arg in cause.args)


def _scrub_arg(arg: object, ctx: RequestContext) -> object:
    if isinstance(arg, bytes):
        return (ctx.scrub(arg.decode("utf-8", "replace")) or "").encode()
    if isinstance(arg, str):
        return ctx.scrub(arg)
    return arg


def nothing_sent(error: errors.FortiOSError) -> bool:
    """True when no byte of the request reached the device (connect or TLS failure, pool timeout)."""
    return isinstance(error.__cause__, _NOT_SENT)


def raise_for_answer(ctx: RequestContext, envelope: Envelope, problem: str | None = None) -> Envelope:
    """The envelope when it is a well-formed FortiOS success answer to ``ctx``, else raise.

    ``problem`` is ``decode_body``'s description of a body that is not a JSON object. An error
    answer raises its ``APIError``/``AuthError``; anything that is not what FortiOS sends for
    this request raises ``MalformedAnswer``.
    """
    if not 200 <= envelope.http_status < 300 or envelope.status == "error":
        raise error_for_envelope(ctx, envelope, problem)
    if problem is not None:
        raise _malformed(ctx, envelope, f"HTTP {envelope.http_status} with {problem}")
    wrong = _shape_problem(ctx, envelope)
    if wrong is not None:
        raise _malformed(ctx, envelope, wrong)
    return envelope


def error_for_envelope(
    ctx: RequestContext, envelope: Envelope, problem: str | None = None
) -> errors.FortiOSError:
    """The error an unsuccessful envelope stands for (401 HTML pages arrive as body-less envelopes).

    A 404 (or -3) is ``NotFound`` only when it is FortiOS's own error envelope for the mkey asked:
    callers read ``NotFound`` as "the object is absent", so a proxy's 404 page must not pass for it.
    """
    status, code = envelope.http_status, envelope.error
    if status == 404 or code == -3:
        wrong = _not_found_problem(ctx, envelope, problem)
        if wrong is not None:
            return _malformed(ctx, envelope, wrong)
    if status in (401, 403):
        return errors.AuthError(_STATUS_TEXT[status], http_status=status, **ctx.where())
    cls = _api_error_class(status, code)
    text = _CODE_TEXT.get(code) if code is not None else None
    if text is None:
        text = _STATUS_TEXT.get(status, f"unexpected HTTP {status}")
        if 300 <= status < 400:
            text = f"unexpected redirect (HTTP {status}): check the URL's scheme and port"
    return cls(
        f"FortiOS: {text}",
        http_status=status,
        error_code=code,
        cli_error=ctx.scrub(envelope.cli_error),
        **ctx.where(),
    )


def secret_values(body: Any) -> tuple[str, ...]:
    """String values under secret field names anywhere in a request body, for ``RequestContext.secrets``."""
    found: list[str] = []
    if isinstance(body, Mapping):
        for key, value in body.items():
            if str(key).lower() in SECRET_FIELDS and isinstance(value, str) and value:
                found.append(value)
            else:
                found.extend(secret_values(value))
    elif isinstance(body, list | tuple):
        for item in body:
            found.extend(secret_values(item))
    return tuple(found)


def malformed(ctx: RequestContext, what: str, *, http_status: int = 200) -> errors.MalformedAnswer:
    """The ``MalformedAnswer`` for an answer to ``ctx`` that is not what FortiOS sends: ``what``."""
    after = " (the write may or may not have taken effect: read the object again)" if ctx.write else ""
    return errors.MalformedAnswer(
        f"not a FortiOS answer: {what}{after}", http_status=http_status, reason=what, **ctx.where()
    )


def _malformed(ctx: RequestContext, envelope: Envelope, what: str) -> errors.MalformedAnswer:
    return malformed(ctx, what, http_status=envelope.http_status)


def _not_found_problem(ctx: RequestContext, envelope: Envelope, problem: str | None) -> str | None:
    if problem is not None:
        return f"HTTP {envelope.http_status} with {problem}"
    if envelope.raw.get("status") != "error":
        return f"HTTP {envelope.http_status} without FortiOS's error status"
    return _mkey_problem(ctx, envelope)


def _mkey_problem(ctx: RequestContext, envelope: Envelope) -> str | None:
    asked = ctx.mkey if ctx.mkey is not None else ctx.expect_mkey
    if asked is None or "mkey" not in envelope.raw:
        return None
    if str(envelope.raw["mkey"]) != str(asked):
        return f"it names mkey {envelope.raw['mkey']!r}, not {asked!r}"
    return None


def _shape_problem(ctx: RequestContext, envelope: Envelope) -> str | None:
    """What makes a 2xx answer not FortiOS's success envelope for ``ctx``, or ``None``."""
    wrong = _envelope_problem(ctx, envelope) or _mkey_problem(ctx, envelope)
    if wrong is not None or ctx.method != "GET":
        return wrong
    if "results" not in envelope.raw:
        return "a read answer without results"
    if ctx.api == "cmdb":
        return _cmdb_results_problem(envelope.results, member=ctx.mkey is not None)
    return None


def _envelope_problem(ctx: RequestContext, envelope: Envelope) -> str | None:
    if "status" not in envelope.raw:
        return "an envelope without status"
    if envelope.status != "success":
        return f"status {envelope.status!r}, not success"
    echoed = envelope.raw.get("http_method")
    if isinstance(echoed, str) and echoed.upper() != ctx.method:
        return f"an answer to a {echoed.upper()}, not to this {ctx.method}"
    return None


def _cmdb_results_problem(results: Any, *, member: bool) -> str | None:
    if member:
        # A member read is a list of exactly one object; a missing member is a 404, never [].
        if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
            return f"a member read whose results are {_shape(results)}, not a list of one object"
        return None
    if isinstance(results, dict):
        return None  # a singleton such as system/global
    if not isinstance(results, list) or not all(isinstance(item, dict) for item in results):
        return f"a table read whose results are {_shape(results)}, not a list of objects"
    return None


def _shape(value: Any) -> str:
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a list of {len(value)} ({', '.join(kinds)})" if value else "an empty list"
    return f"a {type(value).__name__}"


def _api_error_class(status: int, code: int | None) -> type[errors.APIError]:
    # The FortiOS code decides first (validation failures all come back as HTTP 500), but a 404
    # is a 404 whatever code it carries.
    if status == 404:
        return errors.NotFound
    by_code = _CODE_CLASSES.get(code) if code is not None else None
    by_status = _STATUS_CLASSES.get(status) or (errors.ServerError if status >= 500 else errors.APIError)
    return by_code or by_status


def _login_error(exc: LoginRejected, ctx: RequestContext) -> errors.FortiOSError:
    if exc.malformed:
        return malformed(ctx, str(exc), http_status=exc.http_status)
    if exc.http_status == 429:
        return errors.RateLimited(
            "FortiOS: login blocked after too many failed attempts", http_status=429, **ctx.where()
        )
    if exc.http_status >= 500:
        return errors.ServerError(f"FortiOS: {exc}", http_status=exc.http_status, **ctx.where())
    status = exc.http_status if exc.http_status in (401, 403) else 401
    return errors.AuthError(str(exc), http_status=status, **ctx.where())


def _transport_error(exc: Exception, ctx: RequestContext) -> errors.FortiOSError:
    return _tls_error(exc, ctx) or _not_sent_error(exc, ctx) or _exchange_error(exc, ctx)


def _tls_error(exc: Exception, ctx: RequestContext) -> errors.TLSVerifyError | None:
    target = ctx.url or "the device"
    mismatch = _find_cause(exc, PinMismatch)
    if isinstance(mismatch, PinMismatch):
        return errors.TLSVerifyError(
            f"{target}: the certificate's SHA-256 fingerprint is {mismatch.seen}, not the pinned "
            f"{mismatch.expected}; nothing was sent (check verify_tls, or who answers at this address)",
            **ctx.where(),
        )
    verify_failure = _cert_verify_failure(exc)
    if not (isinstance(exc, httpx.ConnectError) and verify_failure):
        return None
    return errors.TLSVerifyError(
        f"{target}: certificate verify failed: {ctx.scrub(verify_failure)}; set verify_tls to the CA "
        "bundle that signed the device's certificate, or pin it with verify_tls: sha256:<fingerprint>",
        **ctx.where(),
    )


def _not_sent_error(exc: Exception, ctx: RequestContext) -> errors.TransportError | None:
    """Failures before the request left: no connection, no free connection, a header no HTTP can carry."""
    if isinstance(exc, httpx.PoolTimeout):
        return errors.Timeout("timed out waiting for a free connection to the device", **ctx.where())
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        cause = _connect_cause(exc, ctx.timeout)
        return errors.Unreachable(
            f"cannot reach {ctx.url or 'the device'}: {cause}", url=ctx.url, cause=cause, **ctx.where()
        )
    if isinstance(exc, httpx.LocalProtocolError):
        # httpcore's text quotes the offending header value, which may be a credential.
        return errors.TransportError(f"the request could not be sent: {ctx.scrub(str(exc))}", **ctx.where())
    return None


def _exchange_error(exc: Exception, ctx: RequestContext) -> errors.TransportError:
    """The request left (fully or partly) and no usable answer came back."""
    if ctx.write:
        # FortiOS may have applied it. Never resend blindly: the caller re-reads the object to
        # learn whether the write took effect.
        return errors.ResponseLost(
            f"the write was sent but its answer was lost ({type(exc).__name__})",
            # Timed out: the request may still be queued on the device. A dropped connection means
            # the device is done with it, whichever way it went.
            in_flight=isinstance(exc, httpx.TimeoutException),
            **ctx.where(),
        )
    if isinstance(exc, httpx.TimeoutException):
        target = ctx.url or "the device"
        return errors.Timeout(
            f"timed out waiting for the answer of {target}{_after(ctx.timeout)}", **ctx.where()
        )
    return errors.TransportError(
        f"the exchange with {ctx.url or 'the device'} failed ({type(exc).__name__})", **ctx.where()
    )


def _after(timeout: float | None) -> str:
    return "" if timeout is None else f" after {timeout:g} s"


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNRESET: "connection reset while connecting",
    errno.ETIMEDOUT: "timed out",
}


def _connect_cause(exc: BaseException, timeout: float | None) -> str:
    """Why a connection never came up, in words: refused, DNS, no route, timeout, TLS handshake."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out{_after(timeout)}"
    if _find_cause(exc, socket.gaierror) is not None:
        return "name does not resolve"
    tls = _find_cause(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        return f"TLS handshake failed: {tls.reason or tls.strerror or tls}"
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[cause.errno]
    return f"connection failed ({exc})"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((cause for cause in _causes(exc) if isinstance(cause, kind)), None)


def _cert_verify_failure(exc: BaseException) -> str | None:
    """The verifier's reason when ``exc`` was caused by certificate verification, else ``None``."""
    failure = _find_cause(exc, ssl.SSLCertVerificationError)
    if isinstance(failure, ssl.SSLCertVerificationError):
        return failure.verify_message or "certificate rejected"
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "certificate rejected"
    return None
