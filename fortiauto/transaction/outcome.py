"""The one place a device's status and exit code are chosen, and the fleet's exit code derived.

Last step of a device's transaction: the engine says *what happened* (an ``Ending``) and this
module turns it into a ``DeviceResult`` whose ``status``, ``exit_code`` and ``reason`` cannot
disagree, because they come from one table. ``fleet_exit_code`` derives a run's exit code from
its devices; the CLI, ``fortiauto rollback`` and the Ansible module all call it.

Exit codes (docs/design.md): 0 compliant with the full fix (effect proven or not applicable) ·
2 invalid input, and no device was written to · 3 rolled back and verified · 4 not in a known
state (a human is needed) · 5 refused before any write, or not started (halt rule, interrupt) ·
6 mail flows but the fix is not fully in effect (fallback rung, or no proof in the log) ·
7 not reached before any write (connection refused, timeout, DNS) · 1 a bug.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from fortiauto.errors import (
    AuthError,
    FortiautoError,
    FortiOSError,
    InputError,
    PlanError,
    Refused,
    TLSVerifyError,
)
from fortiauto.results import DeviceResult, DeviceStatus, Effect, ProbeResult

__all__ = [
    "SEVERITY",
    "Ending",
    "before_writes",
    "conclude",
    "device_exit_code",
    "fleet_exit_code",
    "probe_exit_code",
    "success",
]

NOT_LOGGED = "the probe's message is not in the email filter log"
SPAM_VERDICT = "F18"  # probe/classify.py: the email filter rejected or tagged the probe's message


class Ending(StrEnum):
    """What happened to one device, as the transaction saw it."""

    PLANNED = "planned"  # check mode: changes listed, nothing written
    COMPLIANT = "compliant"  # nothing to change, effect proven or not applicable
    APPLIED = "applied"  # changed, probes passed, effect proven or not applicable
    UNPROVEN = "unproven"  # the full fix is in place and mail flows, but the message is not in the log
    FALLBACK = "fallback"  # mail flows on a fallback rung: compliant with the rung, not with the fix
    ROLLED_BACK = "rolled_back"  # a failure after writes, every write undone and verified by re-reading
    LEFT_OVER = "left_over"  # the undo could not restore everything: the result lists what is left
    UNKNOWN = "unknown"  # a failure after writes whose effect could not be verified
    REFUSED = "refused"  # a device-state rule forbids the change (FortiManager, HA secondary, rights ...)
    BASELINE_BROKEN = "baseline_broken"  # mail already broken before the change: not touched
    NOT_STARTED = "not_started"  # halt rule, change window or an interrupt kept it from starting
    INTERRUPTED = "interrupted"  # interrupted before any write
    INVALID = "invalid"  # the device cannot take the site's input (credentials, policy, vdom ...)
    UNREACHABLE = "unreachable"  # no connection before any write (refused, timeout, DNS)
    RESTORED = "restored"  # ``fortiauto rollback``: the journal's writes are undone and verified
    NOTHING_TO_UNDO = "nothing_to_undo"  # ``fortiauto rollback``: nothing of that run is left
    BUG = "bug"  # an unexpected exception: a bug in fortiauto


_TABLE: dict[Ending, tuple[DeviceStatus, int]] = {
    Ending.PLANNED: ("changed", 0),
    Ending.COMPLIANT: ("unchanged", 0),
    Ending.APPLIED: ("changed", 0),
    Ending.UNPROVEN: ("unproven", 6),
    Ending.FALLBACK: ("fallback", 6),
    Ending.ROLLED_BACK: ("rolled_back", 3),
    Ending.LEFT_OVER: ("failed", 4),
    Ending.UNKNOWN: ("failed", 4),
    Ending.REFUSED: ("refused", 5),
    Ending.BASELINE_BROKEN: ("skipped", 5),
    Ending.NOT_STARTED: ("skipped", 5),
    Ending.INTERRUPTED: ("skipped", 5),
    Ending.INVALID: ("failed", 2),
    Ending.UNREACHABLE: ("failed", 7),
    Ending.RESTORED: ("rolled_back", 0),
    Ending.NOTHING_TO_UNDO: ("unchanged", 0),
    Ending.BUG: ("failed", 1),
}

# Most urgent first: the worst real outcome decides a fleet's exit code.
SEVERITY: tuple[int, ...] = (4, 1, 3, 7, 5, 6, 2, 0)
_INVALID, _REFUSED = 2, 5


def conclude(name: str, ending: Ending, reason: str, **details: Any) -> DeviceResult:
    """The ``DeviceResult`` for ``ending``: status and exit code from the one table."""
    status, code = _TABLE[ending]
    return DeviceResult(
        name=name, status=status, exit_code=code, ending=ending.value, reason=reason, **details
    )


def device_exit_code(result: DeviceResult) -> int:
    return result.exit_code


def fleet_exit_code(results: Iterable[DeviceResult]) -> int:
    """The run's exit code: the most urgent device code; 2 only when no device was written to.

    A device the site's input does not fit (2) in a run that wrote to another device counts as
    refused before any write (5): the run did change firewalls, so "nothing touched" would lie.
    """
    results = list(results)
    # A unit changed through FortiManager shows no writes of its own, but changes that were made.
    wrote = any(r.requests.writes or (r.changes and r.ending != Ending.PLANNED) for r in results)
    codes = {r.exit_code for r in results}
    if wrote and _INVALID in codes:
        codes = (codes - {_INVALID}) | {_REFUSED}
    return next((code for code in SEVERITY if code in codes), 0)


def probe_exit_code(probes: Iterable[ProbeResult]) -> int:
    """``fortiauto probe`` (no change made): 0 when every probe passed, 3 when mail does not flow."""
    return 0 if all(p.passed for p in probes) else 3


def success(
    *,
    rung: str | None,
    effect: Effect,
    changed: bool,
    probes: Iterable[ProbeResult],
    unprovable: str | None = None,
) -> tuple[Ending, str]:
    """Mail flows after the change (or with nothing to change): how complete is the fix?

    ``unprovable`` says why the effect could not be looked up (no readable log device ...).
    """
    judged = next((p for p in probes if (p.failure_class or "").startswith(SPAM_VERDICT)), None)
    verdict = None if judged is None else _with_detail(judged)
    if rung is not None:
        return Ending.FALLBACK, f"mail flows on fallback rung {rung}, not with the full fix"
    if verdict is not None:
        return Ending.UNPROVEN, (
            f"mail flows, but the email filter judged the probe's message as spam ({verdict}); "
            "choose the probe's identity (probe.ehlo, transaction.mail_from) so the effect can be proven"
        )
    if effect == "not_logged":
        why = f": {unprovable}" if unprovable else ""
        return Ending.UNPROVEN, f"the fix is in place and mail flows, but {NOT_LOGGED}{why}"
    if effect == "unknown" and unprovable:
        return (
            Ending.UNPROVEN,
            f"the fix is in place and mail flows, but its effect cannot be proven: {unprovable}",
        )
    if changed:
        return Ending.APPLIED, "applied and probe passed"
    return Ending.COMPLIANT, ""


def _with_detail(probe: ProbeResult) -> str:
    """``F18 spam-tagged: the email filter log says tagged: helo-dns``: the class and what said so."""
    failed = next((step for step in reversed(probe.steps) if not step.ok), None)
    detail = failed.detail if failed is not None else ""
    return f"{probe.failure_class}: {detail}" if detail else str(probe.failure_class)


def before_writes(exc: BaseException) -> tuple[Ending, str]:
    """A failure before any write: the device is as it was; the kind of failure picks the ending."""
    if isinstance(exc, AuthError | TLSVerifyError | PlanError | InputError):
        return Ending.INVALID, str(exc)
    if isinstance(exc, Refused):
        return Ending.REFUSED, f"refused: {exc}"
    if isinstance(exc, FortiOSError):
        return Ending.UNREACHABLE, f"{exc}; nothing was written"
    kind = "" if isinstance(exc, FortiautoError) else f"unexpected {type(exc).__name__}: "
    return Ending.BUG, f"{kind}{exc} (a bug; nothing was written)"
