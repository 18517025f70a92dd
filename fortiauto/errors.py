"""The one exception tree of fortiauto; only ``cli.py`` turns these into exit codes and text.

Every failure a user can meet is one of these. Each family carries the exit code the
contract gives it (docs/design.md); the FortiOS client maps httpx errors and FortiOS error
envelopes into the ``FortiOSError`` branch at exactly one boundary
(``fortios/errormap.py``). No exception text ever holds a token, password or key.

    FortiautoError                      exit 1 (a bug unless a subclass says otherwise)
    ├── InputError (ValueError)         exit 2: bad site file, bad CLI usage, nothing touched
    │   ├── SiteInvalid                 one or more problems, each with file, line and key path
    │   └── UnsupportedVersion          FortiOS version fortiauto has no templates for
    ├── FortiOSError                    exit 4: the device answered badly or not at all
    │   ├── TransportError              no usable HTTP exchange
    │   │   ├── ConnectError
    │   │   │   └── Unreachable         no connection before any request: refused, DNS, no route, timeout
    │   │   ├── Timeout
    │   │   ├── TLSVerifyError          certificate verification failed (names verify_tls)
    │   │   └── ResponseLost            a write was sent but its answer never came
    │   ├── AuthError                   401 / 403
    │   ├── MalformedAnswer             an answer that is not a FortiOS envelope for what was asked
    │   └── APIError                    an error envelope: .http_status, .error_code, .cli_error
    │       ├── NotFound                404 / -3
    │       ├── AlreadyExists           -5
    │       ├── InUse                   -23
    │       ├── InvalidValue            -651 / -650 / -145 / -146
    │       ├── DependencyFailed        424
    │       ├── RateLimited             429
    │       └── ServerError             other 5xx
    ├── PlanError                       exit 2: the device cannot take the plan (missing policy, vdom ...)
    │   └── PlanNotPrepared             apply called without a prepared plan
    ├── ApplyError                      exit 3: a write failed; the engine rolls back
    │   ├── ConcurrentEdit              the object changed since it was planned
    │   ├── ReadBackMismatch            a write answered "success" that the read-back does not show
    │   └── JournalUnwritable           the journal cannot record (full or read-only): no write is sent
    ├── ProbeError                      exit 3: mail does not flow after the change
    ├── RollbackError                   exit 4: the device could not be restored; a human is needed
    ├── Refused                         exit 5
    │   ├── WindowClosed                outside the change window
    │   └── LockHeld                    another run holds the site lock
    └── FortiManagerError               exit 4: FortiManager answered badly or not at all
        ├── FortiManagerTransportError  no usable HTTP exchange (connect, timeout, TLS, lost answer)
        ├── FortiManagerAuthError       login refused, bad API key, 401/403
        ├── FortiManagerAPIError        a JSON-RPC status code other than 0: .code, .url
        │   ├── FortiManagerNotFound    -3 object does not exist, -6 invalid url
        │   ├── FortiManagerAlreadyExists  -2
        │   ├── FortiManagerInvalidData -10 / -9998 / -10131: data refused for the url
        │   └── FortiManagerNoPermission  -11 / -10147 / -20020
        ├── WorkspaceLocked (Refused)   exit 5: another admin holds the ADOM workspace lock
        ├── InstallFailed               an install task ended with errors (.task_id, .lines)
        └── TaskTimeout                 a task did not end in time (.task_id, .percent)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AlreadyExists",
    "ApplyError",
    "AuthError",
    "ConcurrentEdit",
    "ConnectError",
    "DependencyFailed",
    "FortiManagerAPIError",
    "FortiManagerAlreadyExists",
    "FortiManagerAuthError",
    "FortiManagerError",
    "FortiManagerInvalidData",
    "FortiManagerNoPermission",
    "FortiManagerNotFound",
    "FortiManagerTransportError",
    "FortiOSError",
    "FortiautoError",
    "InUse",
    "InputError",
    "InstallFailed",
    "InvalidValue",
    "JournalUnwritable",
    "LockHeld",
    "MalformedAnswer",
    "NotFound",
    "PlanError",
    "PlanNotPrepared",
    "ProbeError",
    "Problem",
    "RateLimited",
    "ReadBackMismatch",
    "Refused",
    "ResponseLost",
    "RollbackError",
    "ServerError",
    "SiteInvalid",
    "TLSVerifyError",
    "TaskTimeout",
    "Timeout",
    "TransportError",
    "Unreachable",
    "UnsupportedVersion",
    "WindowClosed",
    "WorkspaceLocked",
]


class FortiautoError(Exception):
    """Root of every error fortiauto raises on purpose."""

    exit_code = 1


class InputError(FortiautoError, ValueError):
    """The user's input is wrong; nothing was touched."""

    exit_code = 2


class Problem:
    """One problem in an input file: where it is and what is wrong, as one line."""

    __slots__ = ("file", "key", "line", "message")

    def __init__(self, message: str, *, file: str = "", line: int | None = None, key: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.key:
            where = f"{where}: {self.key}" if where else self.key
        return f"{where}: {self.message}" if where else self.message

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


class SiteInvalid(InputError):
    """A site file with one or more problems; ``str()`` is one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UnsupportedVersion(InputError):
    """A FortiOS release fortiauto has no templates for."""


class FortiOSError(FortiautoError):
    """The device answered with an error, or could not be reached."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        mkey: Any = None,
        vdom: str | None = None,
        device: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.mkey = mkey
        self.vdom = vdom
        self.device = device
        super().__init__(message)

    def context(self) -> str:
        """Where the error happened, e.g. ``PUT firewall/policy/12 vdom=root``."""
        target = self.path
        if self.mkey is not None:
            target = f"{target}/{self.mkey}"
        parts = [p for p in (self.method, target, f"vdom={self.vdom}" if self.vdom else "") if p]
        return " ".join(parts)

    def __str__(self) -> str:
        ctx = self.context()
        base = super().__str__()
        prefix = f"{self.device}: " if self.device else ""
        return f"{prefix}{base} ({ctx})" if ctx else f"{prefix}{base}"


class TransportError(FortiOSError):
    """No usable HTTP exchange happened (connect, timeout, TLS)."""


class ConnectError(TransportError):
    """The TCP or TLS connection could not be made."""


class Unreachable(ConnectError):
    """No connection to the device before any request was sent: refused, DNS, no route, connect timeout.

    ``url`` is the device URL and ``cause`` the reason in words ("connection refused", "name does
    not resolve", "timed out after 10 s"); nothing reached the device, so nothing was changed.
    """

    def __init__(self, message: str, *, url: str = "", cause: str = "", **kwargs: Any) -> None:
        self.url = url
        self.cause = cause
        super().__init__(message, **kwargs)


class Timeout(TransportError):
    """The device did not answer in time."""


class TLSVerifyError(TransportError):
    """The device's certificate failed verification (see the site's ``verify_tls``)."""


class ResponseLost(TransportError):
    """A write was sent but no answer came: whether it took effect is unknown until re-read.

    ``in_flight`` is True when the answer timed out, so the device may still carry the write out
    later; False when the connection dropped, so the device is done with it either way.
    """

    def __init__(self, message: str, *, in_flight: bool = True, **kwargs: Any) -> None:
        self.in_flight = in_flight
        super().__init__(message, **kwargs)


class AuthError(FortiOSError):
    """401 or 403: bad token or credentials, or the admin profile lacks the rights."""

    def __init__(self, message: str, *, http_status: int = 401, **kwargs: Any) -> None:
        self.http_status = http_status
        super().__init__(message, **kwargs)


class MalformedAnswer(FortiOSError):
    """The device (or something in front of it) answered with something that is not a FortiOS envelope.

    A 200 with an HTML or empty body, non-JSON, JSON that is not an object, no ``status``, a read
    without ``results`` (or of the wrong shape), a write not reporting success, or an echoed
    ``mkey`` that is not the one asked for. Never success and never "absent"; after a write,
    whether it took effect is unknown until the object is read again (as with ``ResponseLost``).
    """

    def __init__(self, message: str, *, http_status: int = 200, reason: str = "", **kwargs: Any) -> None:
        self.http_status = http_status
        self.reason = reason
        super().__init__(message, **kwargs)


class APIError(FortiOSError):
    """FortiOS answered with an error envelope."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int = 500,
        error_code: int | None = None,
        cli_error: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.http_status = http_status
        self.error_code = error_code
        self.cli_error = cli_error
        super().__init__(message, **kwargs)

    def __str__(self) -> str:
        text = super().__str__()
        details = [f"http {self.http_status}"]
        if self.error_code is not None:
            details.append(f"error {self.error_code}")
        if self.cli_error:
            details.append(f"cli_error: {self.cli_error}")
        return f"{text} [{', '.join(details)}]"


class NotFound(APIError):
    """404 / -3: the object or path does not exist."""


class AlreadyExists(APIError):
    """-5: an object with that key already exists."""


class InUse(APIError):
    """-23: the object is referenced by other objects and cannot be deleted."""


class InvalidValue(APIError):
    """-651 / -650 / -145 / -146: FortiOS rejected a value or reference."""


class DependencyFailed(APIError):
    """424: a failed dependency (duplicate, missing or invalid attribute)."""


class RateLimited(APIError):
    """429: too many requests or failed logins."""


class ServerError(APIError):
    """Any other 5xx."""


class PlanError(FortiautoError):
    """The device's configuration cannot take the plan (missing policy, VIP, vdom ...)."""

    exit_code = 2


class PlanNotPrepared(PlanError):
    """``apply`` was called before a plan was prepared."""

    exit_code = 1


class ApplyError(FortiautoError):
    """A write failed; the engine rolls the device back."""

    exit_code = 3


class ConcurrentEdit(ApplyError):
    """The object changed on the device between plan and write (someone else is editing)."""


class ReadBackMismatch(ApplyError):
    """After the writes, the device does not hold what was written (a swallowed or dropped write)."""


class JournalUnwritable(ApplyError):
    """The journal line could not be made durable, so the write it guards was not sent."""


class ProbeError(FortiautoError):
    """Mail does not flow through the VIP after the change."""

    exit_code = 3


class RollbackError(FortiautoError):
    """The device could not be restored to its pre-change state; a human is needed."""

    exit_code = 4


class Refused(FortiautoError):
    """fortiauto refused to start: the run would break a rule the operator set."""

    exit_code = 5


class WindowClosed(Refused):
    """Outside the approved change window."""


class LockHeld(Refused):
    """Another run holds the site's lock."""


class FortiManagerError(FortiautoError):
    """FortiManager answered with an error, or could not be reached (``fortimanager/errormap.py`` maps)."""

    exit_code = 4

    def __init__(self, message: str, *, method: str = "", url: str = "", fortimanager: str = "") -> None:
        self.method = method
        self.url = url
        self.fortimanager = fortimanager
        super().__init__(message)

    def __str__(self) -> str:
        base = super().__str__()
        where = " ".join(p for p in (self.method, self.url) if p)
        prefix = f"{self.fortimanager}: " if self.fortimanager else ""
        return f"{prefix}{base} ({where})" if where else f"{prefix}{base}"


class FortiManagerTransportError(FortiManagerError):
    """No usable HTTP exchange with FortiManager; ``in_flight`` when a write may still be carried out."""

    def __init__(self, message: str, *, in_flight: bool = False, **kwargs: Any) -> None:
        self.in_flight = in_flight
        super().__init__(message, **kwargs)


class FortiManagerAuthError(FortiManagerError):
    """The login or the API key was refused."""


class FortiManagerAPIError(FortiManagerError):
    """A JSON-RPC result whose status code is not 0."""

    def __init__(self, message: str, *, code: int | None = None, **kwargs: Any) -> None:
        self.code = code
        super().__init__(message, **kwargs)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} [code {self.code}]" if self.code is not None else text


class FortiManagerNotFound(FortiManagerAPIError):
    """-3 (object does not exist) or -6 (invalid url: an ADOM, package or device in it is missing)."""


class FortiManagerAlreadyExists(FortiManagerAPIError):
    """-2: an object with that name already exists."""


class FortiManagerInvalidData(FortiManagerAPIError):
    """-10 and kin: FortiManager refused the data for that url."""


class FortiManagerNoPermission(FortiManagerAPIError):
    """-11 / -10147 / -20020: the admin lacks the right, or the ADOM workspace is not locked by us."""


class WorkspaceLocked(FortiManagerError, Refused):
    """Another administrator holds the ADOM workspace lock: refused before any write."""

    exit_code = 5

    def __init__(self, message: str, *, holder: str = "", **kwargs: Any) -> None:
        self.holder = holder
        super().__init__(message, **kwargs)


class InstallFailed(FortiManagerError):
    """An install task ended with errors; the device may hold part of the change."""

    def __init__(self, message: str, *, task_id: int = 0, lines: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.task_id = task_id
        self.lines = lines
        super().__init__(message, **kwargs)


class TaskTimeout(FortiManagerError):
    """A FortiManager task did not end in time; what it did to the device is unknown until re-read."""

    def __init__(self, message: str, *, task_id: int = 0, percent: int = 0, **kwargs: Any) -> None:
        self.task_id = task_id
        self.percent = percent
        super().__init__(message, **kwargs)
