"""One device's transaction: pre-flight -> baseline probe -> plan -> apply -> probe -> commit | rollback.

The engine owns the order of side effects and nothing else: tasks decide what to change,
the client talks to FortiOS, the probe talks SMTP, reporters format. Every write is preceded
by a fsynced journal line with its pre-image; any failure (API error, timeout, lost response,
probe failure, cancellation) ends with the device fully applied and probe-green, or rolled back
and verified by re-reading, or, when even that fails, ``failed`` with exactly what is left.
Pre-flight (``preflight.py``) refuses, before any write, a FortiManager-managed unit, an HA
secondary or a token that cannot write what the plan touches; a rotated certificate's
predecessor is deleted only after the probe pinned to the new one has passed (``commit``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from fortiauto.errors import (
    ApplyError,
    AuthError,
    ConcurrentEdit,
    FortiautoError,
    FortiOSError,
    NotFound,
    PlanError,
    Refused,
    ResponseLost,
    TLSVerifyError,
)
from fortiauto.events import Events
from fortiauto.fortios.normalise import canonical, project
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.journal import Journal, JournalEntry, change_to_json
from fortiauto.plan import Fact, Step, build_plan
from fortiauto.preflight import Preflight, run_preflight
from fortiauto.probe.delivery import DeliveryCheck
from fortiauto.render import render_desired
from fortiauto.results import Change, DeviceResult, Effect, Plan, ProbeResult, RequestCounts
from fortiauto.site import Device, MailServer, ProbeSpec
from fortiauto.tasks import (
    ORDER,
    REGISTRY,
    Target,
    Task,
    bound_certificates,
    expiry_warnings,
    retired_certificates,
    rotation_note,
    undo_change,
)
from fortiauto.tasks.base import FortiOSApi

__all__ = [
    "ClientFactory",
    "DeviceRun",
    "EngineOptions",
    "Phase",
    "Prober",
    "rollback_device",
]

F17_NOT_DELIVERED = "F17 not-delivered"
# Seconds to let a write whose answer was lost land before undoing it (bounded either way).
_MIN_LOST_WRITE_GRACE = 1.0
_MAX_LOST_WRITE_GRACE = 30.0
_EFFECT_POLLS = 3
_EFFECT_POLL_DELAY = 0.3


class Phase(StrEnum):
    CONNECT = "connect"
    BASELINE = "baseline"
    PLAN = "plan"
    APPLY = "apply"
    PROBE = "probe"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    REPORT = "report"


class DeviceApi(FortiOSApi, Protocol):
    """What the engine needs of a FortiOS client beyond the tasks' slice (``FortiOSClient``)."""

    @property
    def counts(self) -> RequestCounts: ...

    async def system_status(self) -> Any: ...

    async def monitor_get(self, path: str, *, vdom: Any = ..., params: Any = None) -> Any: ...

    async def log_get(self, path: str, *, vdom: Any = ..., params: Any = None) -> Any: ...


ClientFactory = Callable[[Device], AbstractAsyncContextManager[DeviceApi]]


class Prober(Protocol):
    def __call__(
        self,
        spec: ProbeSpec,
        *,
        pin_sha256: str | None = None,
        baseline: ProbeResult | None = None,
        subject_token: str | None = None,
    ) -> Awaitable[ProbeResult]: ...


@dataclass(frozen=True)
class EngineOptions:
    run_id: str
    check: bool = False  # plan only: reads, no writes, no probes
    probe: bool = True
    force: bool = False  # change a device whose baseline probe fails
    templates: Path | None = None


@dataclass
class _Write:
    seq: int
    change: Change
    target: Target
    unanswered: bool = False  # sent, its answer timed out: it may still land on the device


class DeviceRun:
    """The transaction for one device; ``run()`` never raises a FortiautoError (it becomes the result)."""

    def __init__(
        self,
        device: Device,
        *,
        options: EngineOptions,
        client_factory: ClientFactory,
        prober: Prober,
        journal: Journal | None = None,
        events: Events | None = None,
        delivery: DeliveryCheck | None = None,
    ) -> None:
        self.device = device
        self.delivery = delivery
        self.options = options
        self.client_factory = client_factory
        self.prober = prober
        self.journal = journal
        self.events = events or Events()
        self.phase = Phase.CONNECT
        self._writes: list[_Write] = []
        self._seq = 0
        self._first_write: float | None = None
        self._mail_back: float | None = None
        self._committed: tuple[Change, ...] = ()
        self._tasks: dict[str, Task] = {name: REGISTRY[name]() for name in ORDER}
        self._preflight = Preflight()
        self._retire: tuple[Change, ...] = ()  # certificates the current plan retires after its probe

    # -- the transaction -------------------------------------------------------------------

    async def run(self) -> DeviceResult:
        self.events.device_started(self.device.name)
        counts = RequestCounts()
        try:
            async with self.client_factory(self.device) as api:
                try:
                    result = await self._transaction(api)
                except asyncio.CancelledError:
                    result = await self._interrupted(api)
                finally:
                    counts = api.counts
        except FortiautoError as exc:
            result = self._failure_before_writes(exc) if not self._writes else self._unknown(exc)
        except asyncio.CancelledError:  # cancelled while connecting or logging in: nothing was written
            result = DeviceResult(
                name=self.device.name, status="skipped", reason="interrupted before any write"
            )
        result = replace(result, requests=counts)
        self.phase = Phase.REPORT
        self.events.device_finished(result)
        return result

    async def _transaction(self, api: DeviceApi) -> DeviceResult:
        status = await api.system_status()
        version: FortiOSVersion = status.version.require_supported()
        self._preflight = await run_preflight(api, serial=str(getattr(status, "serial", "")))
        if not self.options.check and self._preflight.may_refuse(self.device):
            # Plan first: refuse before probing or writing, unless there is nothing to write.
            plan, _ = await self._plan(api, version, None)
            refusal = self._refusal(plan)
            if refusal is not None:
                self.events.change_planned(self.device.name, plan)
                return self._refused(plan, refusal)
        baseline: dict[str, ProbeResult] = {}
        if self.options.probe and not self.options.check:
            self.phase = Phase.BASELINE
            baseline = await self._probe_all("baseline", pinned=False)
            broken = [f"{ms}: {r.failure_class}" for ms, r in baseline.items() if not r.passed]
            if broken and not self.options.force:
                return DeviceResult(
                    name=self.device.name,
                    status="skipped",
                    reason=(
                        f"baseline probe failed, mail already broken ({'; '.join(broken)}); "
                        "force (CLI --force, Ansible force: true) to change anyway"
                    ),
                    baseline=_first(baseline),
                )
        failures: list[str] = []
        last_probe: ProbeResult | None = None
        applied: list[Change] = []
        for rung in self._ladder():
            self.phase = Phase.PLAN
            plan, steps = await self._plan(api, version, rung)
            self.events.change_planned(self.device.name, plan)
            if self.options.check:
                return self._planned(plan)
            refusal = self._refusal(plan)
            if refusal is not None:
                return self._refused(plan, refusal)
            if plan.empty:
                return DeviceResult(
                    name=self.device.name,
                    status="unchanged",
                    reason=_noop_reason(plan),
                    plan=plan,
                    probe=_first(baseline),
                    effect=await self._effect(api, baseline),
                    fallback_used=rung,
                    forced=self.options.force,
                )
            try:
                await self._apply(api, steps)
            except (FortiautoError, asyncio.CancelledError) as exc:
                return await self._abort(api, plan, exc)
            applied = [step.change for step in steps]
            self.phase = Phase.PROBE
            after = await self._confirm_delivery(
                await self._probe_all("after", pinned=True, baseline=baseline)
            )
            last_probe = _first_failed(after) or _first(after)
            if all(r.passed for r in after.values()):
                self.phase = Phase.COMMIT
                self._journal("commit", rung=rung)
                self._committed, self._writes = tuple(applied), []
                retired, kept = await self._retire_certificates(api)
                self._committed += retired
                return DeviceResult(
                    name=self.device.name,
                    status="changed",
                    reason="applied and probe passed" + (f" on fallback rung {rung}" if rung else ""),
                    changes=self._committed,
                    plan=replace(plan, warnings=plan.warnings + kept) if kept else plan,
                    probe=last_probe,
                    baseline=_first(baseline),
                    effect=await self._effect(api, after),
                    fallback_used=rung,
                    mttr_ms=self._mttr() if failures else None,
                    forced=self.options.force,
                )
            failures.append(f"{rung or 'full'}: {last_probe.failure_class if last_probe else '?'}")
            left = await self._rollback(api)
            confirm = await self._probe_all("confirm", pinned=False)
            if left:
                return self._left_over(plan, left, last_probe, f"probe failed ({failures[-1]})")
            if not all(r.passed for r in confirm.values()) and self.options.probe:
                failures[-1] += "; mail still not flowing after rollback"
        return DeviceResult(
            name=self.device.name,
            status="rolled_back",
            reason=f"probe failed after change ({', '.join(failures)}); rolled back, pre-change state verified",  # noqa: E501
            changes=tuple(applied),
            probe=last_probe,
            baseline=_first(baseline),
            mttr_ms=self._mttr(),
            forced=self.options.force,
        )

    def _ladder(self) -> list[str | None]:
        """The full fix, then each fallback rung every mail server of the device allows."""
        servers = self.device.mail_servers
        rungs: list[str | None] = [None]
        if servers:
            rungs.extend(r for r in servers[0].fallback if all(r in ms.fallback for ms in servers[1:]))
        return rungs

    # -- plan ------------------------------------------------------------------------------

    async def _plan(
        self, api: DeviceApi, version: FortiOSVersion, rung: str | None
    ) -> tuple[Plan, tuple[Step, ...]]:
        pairs: list[tuple[Task, Target]] = []
        for ms in self.device.mail_servers:
            desired = render_desired(ms, version, rung=rung, templates=self.options.templates)
            vdom = ms.vdom or self.device.vdom
            for name in ORDER:
                if name in desired:
                    pairs.append((self._tasks[name], Target(ms, vdom, version, desired[name])))
        # Let every read settle before raising: the client must not close under reads still in flight.
        outcomes = await asyncio.gather(
            *(self._read(api, task, target) for task, target in pairs), return_exceptions=True
        )
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:
            raise failure
        currents = [o for o in outcomes if not isinstance(o, BaseException)]
        facts = [Fact(task, target, current) for (task, target), current in zip(pairs, currents, strict=True)]
        plan, steps = build_plan(self.device.name, version, facts, rung=rung)
        self._retire, notes = _rotation(facts, plan)
        warnings = [*self._preflight.warnings(self.device), *plan.warnings, *notes]
        plan = replace(plan, changes=plan.changes + self._retire)
        refusal = self._refusal(plan)
        if refusal is not None and self.options.check:
            warnings.append(f"apply would be refused: {refusal}")
        return replace(plan, warnings=tuple(dict.fromkeys(warnings))), steps

    def _refusal(self, plan: Plan) -> str | None:
        """Why this plan must not be applied on this device (pre-flight facts), or None."""
        if plan.empty:
            return None
        return self._preflight.refusal(self.device, (c.path for c in plan.changes))

    def _attempted(self, plan: Plan) -> tuple[Change, ...]:
        """The plan's changes without the deletions that only follow a passed probe."""
        return tuple(c for c in plan.changes if c not in self._retire)

    def _refused(self, plan: Plan, why: str) -> DeviceResult:
        return DeviceResult(
            name=self.device.name,
            status="skipped",
            reason=f"refused: {why}",
            plan=plan,
            error=Refused(why),
            exit_code=Refused.exit_code,
        )

    async def _read(self, api: DeviceApi, task: Task, target: Target) -> dict[str, Any] | None:
        try:
            return await task.read(api, target)
        except NotFound as exc:
            raise PlanError(
                f"{self.device.name}: cannot read {task.path} in vdom {target.vdom!r}: {exc}"
            ) from exc

    def _planned(self, plan: Plan) -> DeviceResult:
        return DeviceResult(
            name=self.device.name,
            status="unchanged" if plan.empty else "changed",
            reason=_noop_reason(plan)
            if plan.empty
            else f"{len(plan.changes)} change(s) planned (check mode)",
            changes=plan.changes,
            plan=plan,
        )

    # -- apply -----------------------------------------------------------------------------

    async def _apply(self, api: DeviceApi, steps: Sequence[Step]) -> None:
        self.phase = Phase.APPLY
        for step in steps:
            task = self._tasks[step.change.task]
            if step.change.action == "update":
                await self._check_unchanged(api, task, step)
            self._seq += 1
            write = _Write(self._seq, step.change, step.target)
            self._journal("pre", seq=write.seq, change=change_to_json(step.change))
            self._writes.append(write)
            if self._first_write is None:
                self._first_write = time.monotonic()
            # A lost answer (ResponseLost) is never re-sent: it fails the apply, and the rollback
            # re-reads the object first to learn whether the write took effect.
            try:
                await task.apply(api, step.change, step.target)
            except ResponseLost as exc:
                write.unanswered = exc.in_flight
                raise
            self._journal("done", seq=write.seq)
            self.events.change_applied(self.device.name, step.change)

    async def _check_unchanged(self, api: DeviceApi, task: Task, step: Step) -> None:
        """Re-read before writing: if someone edited the object since the plan, stop."""
        current = await task.read(api, step.target)
        before = step.change.before or {}
        if canonical(project(current, before)) != canonical(before):  # someone else's edit
            raise ConcurrentEdit(
                f"{step.change.path}/{step.change.mkey} changed on the device since it was planned; "
                "not writing"
            )

    async def _retire_certificates(self, api: DeviceApi) -> tuple[tuple[Change, ...], tuple[str, ...]]:
        """After a passed probe: delete the certificates the rebind retired, if nothing uses them.

        Each delete is journaled like any write. A certificate still referenced (``q_ref`` of a
        ``with_meta`` read), or one whose delete fails, is kept with a note: the device is
        compliant either way.
        """
        done: list[Change] = []
        kept: list[str] = []
        for change in self._retire:
            try:
                current = await api.get_one(
                    change.path, change.mkey, vdom=change.vdom, params={"with_meta": "1"}
                )
                if current is None:
                    continue  # already gone: the goal holds
                refs = current.get("q_ref")
                if isinstance(refs, int) and refs > 0:
                    kept.append(f"kept certificate {change.mkey}: still referenced by {refs} object(s)")
                    continue
                self._seq += 1
                self._journal("pre", seq=self._seq, change=change_to_json(change))
                await api.delete(change.path, change.mkey, vdom=change.vdom)
                self._journal("done", seq=self._seq)
            except FortiautoError as exc:
                kept.append(f"kept certificate {change.mkey}: {exc}")
                continue
            done.append(change)
            self.events.change_applied(self.device.name, change)
        return tuple(done), tuple(kept)

    # -- rollback --------------------------------------------------------------------------

    async def _abort(self, api: DeviceApi, plan: Plan, exc: BaseException) -> DeviceResult:
        """A write failed or the run was cancelled: undo everything journaled, shielded from a second cancel.

        A cancelled device returns its rolled-back result instead of re-raising, so the rollout
        still reports it (the rollout cancels in-flight devices only on a second Ctrl-C).
        """
        left = await asyncio.shield(self._rollback(api))
        reason = str(exc) if isinstance(exc, FortiautoError) else "interrupted"
        if left:
            return self._left_over(plan, left, None, f"apply failed ({reason})")
        return self._rolled_back(plan, f"apply failed ({reason})", error=exc)

    async def _interrupted(self, api: DeviceApi) -> DeviceResult:
        """Cancelled (Ctrl-C twice, SIGTERM): undo whatever was written, then report."""
        if self._committed:
            return DeviceResult(
                name=self.device.name, status="changed", reason="applied and probed", changes=self._committed
            )
        if not self._writes:
            return DeviceResult(
                name=self.device.name, status="skipped", reason="interrupted before any write"
            )
        changes = tuple(w.change for w in self._writes)
        left = await self._rollback(api)
        if left:
            return DeviceResult(
                name=self.device.name,
                status="failed",
                reason="interrupted; rollback incomplete, needs a human",
                changes=changes,
                left_over=tuple(left),
            )
        return DeviceResult(
            name=self.device.name,
            status="rolled_back",
            reason="interrupted; rolled back, pre-change state verified",
            changes=changes,
        )

    def _rolled_back(self, plan: Plan, reason: str, error: BaseException | None = None) -> DeviceResult:
        return DeviceResult(
            name=self.device.name,
            status="rolled_back",
            reason=f"{reason}; rolled back, pre-change state verified",
            changes=self._attempted(plan),
            plan=plan,
            mttr_ms=self._mttr(),
            error=error if isinstance(error, FortiautoError) else ApplyError(reason),
            forced=self.options.force,
        )

    async def _rollback(self, api: DeviceApi) -> list[str]:
        """Undo this transaction's writes newest first, then verify by re-reading; returns what is left."""
        self.phase = Phase.ROLLBACK
        entries = [JournalEntry(self.device.name, w.seq, w.change) for w in reversed(self._writes)]
        unanswered = [e for e, w in zip(entries, reversed(self._writes), strict=True) if w.unanswered]
        # A write whose answer was lost may still be in flight: re-reading at once could see the
        # old state, "restore" nothing, and be overtaken by the late write. Wait, undo, and look
        # once more after another grace period (undo re-reads first, so a second pass is free
        # when nothing landed late).
        grace = min(max(_MIN_LOST_WRITE_GRACE, self.device.timeout), _MAX_LOST_WRITE_GRACE)
        if unanswered:
            await asyncio.sleep(grace)
        left = await undo_entries(api, entries, self._journal)
        if unanswered and not left:
            await asyncio.sleep(grace)
            left = await undo_entries(api, unanswered, self._journal)
        self._writes.clear()
        return left

    def _left_over(self, plan: Plan, left: list[str], probe: ProbeResult | None, why: str) -> DeviceResult:
        return DeviceResult(
            name=self.device.name,
            status="failed",
            reason=f"{why}; rollback incomplete, needs a human",
            changes=self._attempted(plan),
            plan=plan,
            probe=probe,
            left_over=tuple(left),
        )

    # -- probe and effect ------------------------------------------------------------------

    async def _probe_all(
        self, stage: str, *, pinned: bool, baseline: dict[str, ProbeResult] | None = None
    ) -> dict[str, ProbeResult]:
        results: dict[str, ProbeResult] = {}
        if not self.options.probe:
            return results
        for ms in self.device.mail_servers:
            result = await self.prober(
                ms.probe,
                pin_sha256=ms.certificate.fingerprint_sha256 if pinned else None,
                baseline=(baseline or {}).get(ms.name),
                subject_token=f"{self.options.run_id}-{self.device.name}-{ms.name}-{secrets.token_hex(3)}",
            )
            results[ms.name] = result
            self.events.probe_finished(self.device.name, stage, result)
        if stage == "confirm" and all(r.passed for r in results.values()) and self._first_write is not None:
            self._mail_back = time.monotonic()
        return results

    async def _confirm_delivery(self, probes: dict[str, ProbeResult]) -> dict[str, ProbeResult]:
        """A 250 after the dot is not delivery: where the backend can tell, the message must be there."""
        if self.delivery is None:
            return probes
        checked = dict(probes)
        for ms in self.device.mail_servers:
            result = probes.get(ms.name)
            if result is None or not result.passed or not result.message_id:
                continue
            if await self.delivery(self.device, ms, result.message_id) is False:
                checked[ms.name] = replace(
                    result,
                    passed=False,
                    failure_class=F17_NOT_DELIVERED,
                    warnings=(
                        *result.warnings,
                        "250 after the dot, but the message never reached the mail server",
                    ),
                )
                self.events.probe_finished(self.device.name, "delivery", checked[ms.name])
        return checked

    async def _effect(self, api: DeviceApi, probes: dict[str, ProbeResult]) -> Effect:
        """Did the probe's message reach the email filter log? That is what the change is for."""
        servers = {ms.name: ms for ms in self.device.mail_servers}
        sent = [(servers[name], r) for name, r in probes.items() if r.passed and r.subject]
        if not sent:
            return "unknown"
        outcomes = [await self._logged(api, ms, r.subject or "") for ms, r in sent]
        if "not_logged" in outcomes:
            return "not_logged"
        return "logged" if all(o == "logged" for o in outcomes) else "unknown"

    async def _logged(self, api: DeviceApi, ms: MailServer, subject: str) -> Effect:
        token = subject.rsplit(maxsplit=1)[-1]
        vdom = ms.vdom or self.device.vdom
        for attempt in range(_EFFECT_POLLS):
            try:
                body = await api.log_get(
                    "memory/emailfilter/raw", vdom=vdom, params={"filter": f"subject=@{token}", "rows": "50"}
                )
            except FortiOSError:
                return "unknown"
            if token in str(body):
                return "logged"
            if attempt + 1 < _EFFECT_POLLS:
                await asyncio.sleep(_EFFECT_POLL_DELAY)
        return "not_logged"

    # -- helpers ---------------------------------------------------------------------------

    def _journal(self, kind: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record(kind, device=self.device.name, **fields)

    def _mttr(self) -> float | None:
        if self._first_write is None or self._mail_back is None:
            return None
        return (self._mail_back - self._first_write) * 1000

    def _failure_before_writes(self, exc: FortiautoError) -> DeviceResult:
        # Nothing was written: bad credentials, a wrong verify_tls or a plan the device can't take
        # are input problems (exit 2); an unreachable device keeps its own code.
        code = (
            2
            if isinstance(exc, AuthError | PlanError | TLSVerifyError) or exc.exit_code == 2
            else exc.exit_code
        )
        return DeviceResult(
            name=self.device.name, status="failed", reason=str(exc), error=exc, exit_code=code
        )

    def _unknown(self, exc: FortiautoError) -> DeviceResult:
        return DeviceResult(
            name=self.device.name,
            status="failed",
            reason=f"{exc}; device state unknown after writes, run `fortiauto rollback`",
            error=exc,
            left_over=tuple(f"{w.change.path}/{w.change.mkey}" for w in self._writes),
        )


async def undo_entries(
    api: DeviceApi, entries: Sequence[JournalEntry], journal: Callable[..., None] | None = None
) -> list[str]:
    """Undo journaled writes in the order given (newest first), verify each; return what is left."""
    left: list[str] = []
    for entry in entries:
        change = entry.change
        try:
            # Re-read first: a write whose answer was lost may never have happened.
            restored = await _verify_restored(api, change)
            if not restored:
                await undo_change(api, change)
                restored = await _verify_restored(api, change)
        except FortiautoError as exc:
            restored, why = False, str(exc)
        else:
            why = "" if restored else "re-read differs from the pre-image"
        if journal is not None:
            journal("undo", seq=entry.seq, ok=restored)
        if not restored:
            left.append(f"{change.action} {change.path}/{change.mkey} (vdom {change.vdom}): {why}")
    return left


async def _verify_restored(api: DeviceApi, change: Change) -> bool:
    current = await api.get_one(change.path, change.mkey, vdom=change.vdom)
    if change.action in ("create", "import"):
        return current is None
    if change.action == "delete":
        return current is not None  # a delete that never happened leaves nothing to undo
    before = change.before or {}
    restored: bool = canonical(project(current, before)) == canonical(before)
    return restored


async def rollback_device(
    device: Device,
    entries: Sequence[JournalEntry],
    *,
    client_factory: ClientFactory,
    journal: Journal | None = None,
    events: Events | None = None,
) -> DeviceResult:
    """Undo a device's pending journal entries (``fortiauto rollback``); idempotent."""
    events = events or Events()
    events.device_started(device.name)

    def record(kind: str, **fields: Any) -> None:
        if journal is not None:
            journal.record(kind, device=device.name, **fields)

    counts = RequestCounts()
    changes = tuple(e.change for e in entries)
    try:
        async with client_factory(device) as api:
            try:
                left = await undo_entries(api, entries, record)
            finally:
                counts = api.counts
    except FortiautoError as exc:
        result = DeviceResult(name=device.name, status="failed", reason=str(exc), error=exc, changes=changes)
    else:
        if left:
            result = DeviceResult(
                name=device.name,
                status="failed",
                reason="rollback incomplete, needs a human",
                left_over=tuple(left),
                changes=changes,
            )
        elif entries:
            result = DeviceResult(
                name=device.name, status="rolled_back", reason="restored from the journal", changes=changes
            )
        else:
            result = DeviceResult(name=device.name, status="unchanged", reason="nothing left to undo")
    result = replace(result, requests=counts)
    events.device_finished(result)
    return result


def _rotation(facts: Sequence[Fact], plan: Plan) -> tuple[tuple[Change, ...], list[str]]:
    """From the SSL/SSH profiles as read: the certificates this plan retires, and what to say.

    A certificate is retired only when this plan rebinds its profile (so the probe proves the
    successor); the expiry warnings come from the same read, at no extra request.
    """
    now = datetime.now(UTC)
    retired: dict[tuple[str, str], Change] = {}
    notes: list[str] = []
    for fact in facts:
        if fact.task.name != "ssl_profile":
            continue
        ms, vdom = fact.target.mail_server, fact.target.vdom
        bound = bound_certificates(fact.current)
        notes.extend(expiry_warnings(ms, bound, now=now))
        rebinds = any(
            c.task == "ssl_profile" and c.mkey == ms.ssl_profile and c.vdom == vdom for c in plan.changes
        )
        found = retired_certificates(ms, vdom, bound) if rebinds else ()
        if found:
            retired.update({(c.vdom, str(c.mkey)): c for c in found})
            notes.append(rotation_note(ms, found))
    return tuple(retired.values()), notes


def _first(results: dict[str, ProbeResult]) -> ProbeResult | None:
    return next(iter(results.values()), None)


def _first_failed(results: dict[str, ProbeResult]) -> ProbeResult | None:
    return next((r for r in results.values() if not r.passed), None)


def _noop_reason(plan: Plan) -> str:
    """Short, for tables; each task's own reason stays in ``plan.noop_reasons`` (and the JSON)."""
    count = len(plan.noop_reasons)
    return f"already compliant ({count} task(s) checked)" if count else "nothing to change"
