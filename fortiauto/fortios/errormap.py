"""The one boundary where httpx exceptions and FortiOS error envelopes become ``fortiauto.errors``.

The client runs every exchange inside ``mapped_errors`` and passes every parsed answer to
``raise_for_envelope``; nothing above the client ever sees an httpx exception. Each error
carries where it happened (``RequestContext``: method, path, mkey, vdom, device) and, for API
errors, the HTTP status, FortiOS error code and ``cli_error`` — scrubbed of the request's
secrets, since a CLI error can echo a value back. Codes follow shared/reference/fortios-protocol.md
section 6. Also answers the one retry question that needs httpx knowledge: was anything sent?
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from fortiauto import errors
from fortiauto.fortios.auth import LoginRejected
from fortiauto.fortios.envelope import Envelope

__all__ = [
    "SECRET_FIELDS",
    "RequestContext",
    "error_for_envelope",
    "mapped_errors",
    "nothing_sent",
    "raise_for_envelope",
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

    def where(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "mkey": self.mkey,
            "vdom": self.vdom,
            "device": self.device,
        }

    def scrub(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
        return text


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
        raise _transport_error(exc, ctx) from exc


def nothing_sent(error: errors.FortiOSError) -> bool:
    """True when no byte of the request reached the device (connect or TLS failure, pool timeout)."""
    return isinstance(error.__cause__, _NOT_SENT)


def raise_for_envelope(ctx: RequestContext, envelope: Envelope) -> Envelope:
    """Return the envelope when FortiOS reports success, else raise the matching ``FortiOSError``."""
    if envelope.ok:
        return envelope
    raise error_for_envelope(ctx, envelope)


def error_for_envelope(ctx: RequestContext, envelope: Envelope) -> errors.FortiOSError:
    """The error an unsuccessful envelope stands for (401 HTML pages arrive as body-less envelopes)."""
    status, code = envelope.http_status, envelope.error
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


def _api_error_class(status: int, code: int | None) -> type[errors.APIError]:
    # The FortiOS code decides first: validation failures all come back as HTTP 500.
    if status == 404 or code == -3:
        return errors.NotFound
    if code == -5:
        return errors.AlreadyExists
    if code == -23:
        return errors.InUse
    if code in _INVALID_VALUE_CODES:
        return errors.InvalidValue
    if status == 424:
        return errors.DependencyFailed
    if status == 429:
        return errors.RateLimited
    if status >= 500:
        return errors.ServerError
    return errors.APIError


def _login_error(exc: LoginRejected, ctx: RequestContext) -> errors.FortiOSError:
    if exc.http_status == 429:
        return errors.RateLimited(
            "FortiOS: login blocked after too many failed attempts", http_status=429, **ctx.where()
        )
    if exc.http_status >= 500:
        return errors.ServerError(f"FortiOS: {exc}", http_status=exc.http_status, **ctx.where())
    status = exc.http_status if exc.http_status in (401, 403) else 401
    return errors.AuthError(str(exc), http_status=status, **ctx.where())


def _transport_error(exc: Exception, ctx: RequestContext) -> errors.FortiOSError:
    where = ctx.where()
    if isinstance(exc, httpx.ConnectError) and _cert_verify_failure(exc):
        return errors.TLSVerifyError(
            f"TLS certificate verification failed ({_cert_verify_failure(exc)}); "
            "set verify_tls to the CA bundle that signed the device's certificate",
            **where,
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return errors.Timeout("timed out connecting to the device", **where)
    if isinstance(exc, httpx.ConnectError):
        return errors.ConnectError("could not connect to the device", **where)
    if ctx.write:
        # The request left us (fully or partly); FortiOS may have applied it. Never resend blindly:
        # the caller re-reads the object to learn whether the write took effect.
        return errors.ResponseLost(
            f"the write was sent but its answer was lost ({type(exc).__name__})",
            # Timed out: the request may still be queued on the device. A dropped connection means
            # the device is done with it, whichever way it went.
            in_flight=isinstance(exc, httpx.TimeoutException),
            **where,
        )
    if isinstance(exc, httpx.TimeoutException):
        return errors.Timeout("timed out waiting for the device's answer", **where)
    return errors.TransportError(f"the exchange with the device failed ({type(exc).__name__})", **where)


def _cert_verify_failure(exc: BaseException) -> str | None:
    """The verifier's reason when ``exc`` was caused by certificate verification, else ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or "certificate verify failed"
        current = current.__cause__ or current.__context__
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "certificate verify failed"
    return None
