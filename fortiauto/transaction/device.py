"""One device's transaction: connect -> preflight -> baseline -> plan -> apply -> verify -> commit | rollback.

The engine owns the order of side effects and nothing else: tasks decide what to change
(``planning``), ``apply`` journals and writes, ``verify`` probes, ``undo`` reverses, and
``outcome`` is the only place a status and an exit code are chosen. ``run()`` never raises:
any failure (an API error, a malformed answer, a lost response, a full journal disk, a failed
probe, any number of cancellations, a bug) becomes the device's result, after the writes this
run made are rolled back and verified — or listed as left over when even that fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from fortiauto.config_revision import SavedRevision, save_revision
from fortiauto.errors import (
    FortiautoError,
    Refused,
)
from fortiauto.events import Events
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.journal import Journal
from fortiauto.preflight import ChecksPlan, ManagedRoute, Preflight, run_preflight
from fortiauto.probe.classify import mail_flows
from fortiauto.probe.delivery import DeliveryCheck
from fortiauto.results import Change, DeviceResult, Effect, Plan, RequestCounts
from fortiauto.site import Device
from fortiauto.tasks.base import FortiOSApi
from fortiauto.transaction.apply import Applier
from fortiauto.transaction.outcome import Ending, before_writes, conclude, success
from fortiauto.transaction.phases import Phase, PhaseTracker
from fortiauto.transaction.planning import Planner, PreparedPlan, prepare_plan, tasks
from fortiauto.transaction.retire import retire_certificates
from fortiauto.transaction.undo import UndoReport, undo_entries
from fortiauto.transaction.verify import Prober, Probes, Verifier, first, first_failed, passed

__all__ = ["ClientFactory", "DeviceApi", "DeviceTransaction", "Installs", "TransactionOptions"]

# Seconds to let a write whose answer was lost land before undoing it (bounded either way).
_MIN_LOST_WRITE_GRACE = 1.0
_MAX_LOST_WRITE_GRACE = 30.0
T = TypeVar("T")


class DeviceApi(FortiOSApi, Protocol):
    """What the transaction needs of a FortiOS client beyond the tasks' slice (``FortiOSClient``)."""

    @property
    def counts(self) -> RequestCounts: ...

    async def system_status(self) -> Any: ...

    async def monitor_get(self, path: str, *, vdom: Any = ..., params: Any = None) -> Any: ...

    async def log_get(self, path: str, *, vdom: Any = ..., params: Any = None) -> Any: ...


ClientFactory = Callable[[Device], AbstractAsyncContextManager[DeviceApi]]


@runtime_checkable
class Installs(Protocol):
    """A client whose writes are staged elsewhere (FortiManager) and pushed to the unit by ``install``.

    The transaction installs after the writes (before verifying), after an undo, and after a
    retirement; a direct FortiOS client has no ``install`` and its writes are live at once.
    """

    async def install(self, why: str) -> None: ...


@dataclass(frozen=True)
class TransactionOptions:
    run_id: str
    check: bool = False  # plan only: reads, no writes, no probes
    probe: bool = True
    force_baseline: bool = False  # change a device whose baseline probe fails
    templates: Path | None = None
    notes: tuple[str, ...] = ()  # warnings the fleet knows before the device starts (e.g. an unfinished run)
    start_rung: str | None = None  # a remembered fallback rung: the full fix is not retried
    start_note: str = ""  # why it starts there ("on fallback rung ... since ... because ...")
    # apply --plan: why the fresh plan of the first rung is not the saved one, or None (planfile.py)
    saved_plan: Callable[[Plan], str | None] | None = None
    # An unfinished run's retirement to finish (resume.py: deletes journaled after its commit)
    finish_retirement: tuple[Change, ...] = ()
    # fortiauto remove: another plan on the same machinery (its own tasks, no fallback rungs)
    planner: Planner | None = None


class DeviceTransaction:
    """The transaction for one device; ``run()`` returns its result and never raises."""

    def __init__(
        self,
        device: Device,
        *,
        options: TransactionOptions,
        client_factory: ClientFactory,
        prober: Prober,
        journal: Journal | None = None,
        events: Events | None = None,
        delivery: DeliveryCheck | None = None,
    ) -> None:
        self.device = device
        self.options = options
        self.client_factory = client_factory
        self.journal = journal
        self.events = events or Events()
        self.phases = PhaseTracker(device.name, self.events)
        own_tasks = options.planner.tasks() if options.planner is not None else tasks()
        self.applier = Applier(device.name, own_tasks, self._record_durable, self.events)
        self.verifier = Verifier(
            device,
            prober,
            options.run_id,
            self.events,
            delivery=delivery,
            enabled=options.probe and not options.check,
        )
        self._preflight = Preflight()
        self._committed: DeviceResult | None = None
        self._policy_name: str | None = None
        self._revision: SavedRevision | None = None
        self._policy_checked = False

    # -- the one boundary where anything becomes a result ----------------------------------

    async def run(self) -> DeviceResult:
        self.events.device_started(self.device.name)
        counts = RequestCounts()
        try:
            async with self.client_factory(self.device) as api:
                try:
                    result = await self._guarded(api)
                finally:
                    counts = api.counts
        except asyncio.CancelledError:  # while connecting or logging in: nothing was written
            result = conclude(self.device.name, Ending.INTERRUPTED, "interrupted before any write")
        except Exception as exc:
            result = self._before_writes(exc)
        self.phases.enter(Phase.DONE)
        result = replace(
            result, requests=counts, probes=tuple(self.verifier.history), timeline=self.phases.timeline
        )
        self._record_end(result)
        self.events.device_finished(result)
        return result

    def _record_end(self, result: DeviceResult) -> None:
        # Without this line a later run takes the device's writes as an unfinished run and stops.
        try:
            self._record("end", ending=result.ending, status=result.status)
        except FortiautoError:
            return

    async def _guarded(self, api: DeviceApi) -> DeviceResult:
        try:
            return await self._transaction(api)
        except asyncio.CancelledError:
            return await _to_the_end(self._after_failure(api, None, "interrupted"))
        except Exception as exc:
            if self._committed is not None:
                return self._committed
            if not self.applier.pending:
                return self._before_writes(exc)
            return await _to_the_end(self._after_failure(api, None, _why(exc), bug=not _expected(exc)))

    # -- the transaction ---------------------------------------------------------------------

    async def _transaction(self, api: DeviceApi) -> DeviceResult:
        status = await api.system_status()
        version: FortiOSVersion = status.version.require_supported(
            allow_newer=self.device.allow_newer_fortios
        ).on_model(str(getattr(status, "model", "") or ""))
        self.phases.enter(Phase.PREFLIGHT)
        self._preflight = await run_preflight(api, serial=str(getattr(status, "serial", "")))
        refused = await self._early_refusal(api, version)
        if refused is not None:
            return refused
        baseline: Probes = {}
        if self.verifier.enabled:
            self.phases.enter(Phase.BASELINE)
            baseline = await self.verifier.probe_all("baseline", pinned=False)
            baseline = await self.verifier.confirm_delivery(baseline, stage="baseline-delivery")
            lost = [
                f"{ms}: {_failure(r)}" for ms, r in baseline.items() if mail_flows(r.failure_class) is None
            ]
            if lost:
                return self._conclude(
                    Ending.UNREACHABLE,
                    f"the probe's vantage failed before any change ({'; '.join(lost)}); nothing was changed",
                )
            specs = {ms.name: ms.probe for ms in self.device.mail_servers}
            broken = [
                f"{ms}: {_failure(r)} probing {specs[ms].host}:{specs[ms].port}"
                for ms, r in baseline.items()
                if mail_flows(r.failure_class) is False
            ]
            if broken and not self.options.force_baseline:
                return self._conclude(
                    Ending.BASELINE_BROKEN,
                    "baseline probe failed before any change, mail is not flowing now "
                    f"({'; '.join(broken)}); nothing was changed (--force-baseline to change anyway)",
                )
        return await self._ladder(api, version, baseline)

    async def _early_refusal(self, api: DeviceApi, version: FortiOSVersion) -> DeviceResult | None:
        """Refuse before probing or writing when the device's state forbids this plan."""
        if self.options.check or not self._preflight.may_refuse(self.device):
            return None
        prepared = await self._plan(api, version, None)
        return self._refused(prepared)

    async def _ladder(self, api: DeviceApi, version: FortiOSVersion, baseline: Probes) -> DeviceResult:
        """The full fix, then each fallback rung, until one passes its probe or none is left."""
        failures: list[str] = []
        last: PreparedPlan | None = None
        for rung in self._rungs():
            self.phases.enter(Phase.PLAN, rung=rung)
            prepared = last = await self._plan(api, version, rung)
            self.events.change_planned(self.device.name, prepared.plan)
            early = self._without_writes(prepared)
            if early is not None:
                return early
            if prepared.plan.empty:
                prepared, finished = await self._finish_retirement(api, prepared)
                effect = await self._effect(api, baseline)
                judged = self.verifier.judged(baseline)
                return self._success(prepared, finished, judged, effect, fallback=bool(failures))
            outcome = await self._attempt(api, prepared, baseline)
            if isinstance(outcome, DeviceResult):
                return outcome
            failures.append(f"{rung or 'full'}: {outcome}")
            if prepared.retire:
                break  # a rotation never falls back: it completes where the device is, or is undone
        assert last is not None
        return self._conclude(
            Ending.ROLLED_BACK,
            f"probe failed after change ({', '.join(failures)}); rolled back, pre-change state verified",
            changes=last.attempted,
            plan=last.plan,
            probe=first_failed(self._after_probes()),
            mttr_ms=self._mttr(),
        )

    def _without_writes(self, prepared: PreparedPlan) -> DeviceResult | None:
        """Check mode and refusals end here, before any write."""
        if self.options.check:
            plan = prepared.plan
            if plan.empty:
                return self._conclude(Ending.COMPLIANT, _noop_reason(plan), plan=plan)
            return self._conclude(
                Ending.PLANNED,
                f"{len(plan.changes)} change(s) planned (check mode)",
                changes=plan.changes,
                plan=plan,
            )
        return self._drifted(prepared) or self._refused(prepared)

    def _drifted(self, prepared: PreparedPlan) -> DeviceResult | None:
        """apply --plan: refuse, before any write, a device whose fresh plan is not the saved one."""
        check = self.options.saved_plan
        if check is None or prepared.plan.rung != self._rungs()[0]:
            return None
        why = check(prepared.plan)
        if why is None:
            return None
        return self._conclude(
            Ending.REFUSED,
            f"refused: the device changed since the saved plan ({why}); nothing was written",
            plan=prepared.plan,
        )

    async def _attempt(self, api: DeviceApi, prepared: PreparedPlan, baseline: Probes) -> DeviceResult | str:
        """Apply one rung, verify it; a result when the device is done, else why the probe failed."""
        rung = prepared.plan.rung
        self.phases.enter(Phase.APPLY)
        prepared = await self._save_revision(api, prepared)
        try:
            await self.applier.apply(api, prepared.steps)
            await self.applier.read_back(api, prepared.steps)
            await _install(api, "apply")
        except FortiautoError as exc:
            return await _to_the_end(self._after_failure(api, prepared, f"apply failed ({exc})"))
        self.phases.enter(Phase.VERIFY)
        after = await self.verifier.probe_all(
            "after", pinned=True, baseline=baseline, rung=rung, chain_checks=prepared.chain_checks
        )
        after = await self.verifier.confirm_delivery(after, rung=rung)
        if all(mail_flows(r.failure_class) is True for r in after.values()):
            # Passed, or the email filter judged the probe's message as spam: mail flows either way.
            return await self._commit(api, prepared, after)
        why = _failure(first_failed(after))
        self.phases.enter(Phase.ROLLBACK)
        report = await _to_the_end(self._rollback(api))
        confirm = await self.verifier.probe_all("confirm", pinned=False)
        confirm = await self.verifier.confirm_delivery(confirm, stage="confirm-delivery")
        if not report.complete:
            return self._left_over(prepared, report, f"probe failed ({rung or 'full'}: {why})")
        if self.verifier.enabled and not passed(confirm):
            why += "; mail still not flowing after rollback"
        return why

    async def _commit(self, api: DeviceApi, prepared: PreparedPlan, after: Probes) -> DeviceResult:
        self.phases.enter(Phase.COMMIT)
        await self._record_durable("commit", rung=prepared.plan.rung)
        self.applier.forget()
        self._committed = self._success(prepared, prepared.attempted, after, "unknown", fallback=False)
        retired, kept = await retire_certificates(api, self.applier, self._to_retire(prepared))
        if retired:
            try:
                await _install(api, "retire")
            except FortiautoError as exc:
                kept += (f"the retired certificates' deletion was not installed: {exc}",)
        if kept:
            prepared = replace(prepared, plan=replace(prepared.plan, warnings=prepared.plan.warnings + kept))
        effect = await self._effect(api, after)
        judged = self.verifier.judged(after)
        self._committed = self._success(
            prepared, prepared.attempted + retired, judged, effect, fallback=False
        )
        return self._committed

    # -- results -----------------------------------------------------------------------------

    def _success(
        self,
        prepared: PreparedPlan,
        changes: tuple[Change, ...],
        probes: Probes,
        effect: Effect,
        *,
        fallback: bool,
    ) -> DeviceResult:
        plan, rung = prepared.plan, prepared.plan.rung
        notes = self.verifier.effect_notes
        ending, reason = success(
            rung=rung,
            effect=effect,
            changed=bool(changes),
            probes=probes.values(),
            unprovable=notes[0] if notes else None,
        )
        reason = reason or _noop_reason(plan)
        if rung is not None and rung == self.options.start_rung and self.options.start_note:
            reason = f"{reason}: {self.options.start_note}"
        if fallback and rung is not None:
            reason += " (the full fix failed its probe and was rolled back)"
        if self.verifier.effect_notes:
            plan = replace(plan, warnings=(*plan.warnings, *self.verifier.effect_notes))
        return self._conclude(
            ending,
            reason,
            changes=changes,
            plan=plan,
            probe=first(probes),
            baseline=first(self._baseline()),
            effect=effect,
            effect_evidence=self.verifier.evidence,
            fallback_used=rung,
            mttr_ms=self._mttr(),
        )

    def _refused(self, prepared: PreparedPlan) -> DeviceResult | None:
        why = (
            None
            if prepared.plan.empty
            else self._preflight.refusal(self.device, (c.path for c in prepared.plan.changes))
            or prepared.refusal
        )
        if why is None:
            return None
        self.events.change_planned(self.device.name, prepared.plan)
        return self._conclude(Ending.REFUSED, f"refused: {why}", plan=prepared.plan, error=Refused(why))

    def _left_over(self, prepared: PreparedPlan | None, report: UndoReport, why: str) -> DeviceResult:
        return self._conclude(
            Ending.LEFT_OVER,
            f"{why}; rollback incomplete, needs a human",
            changes=prepared.attempted if prepared else (),
            plan=prepared.plan if prepared else None,
            probe=first_failed(self._after_probes()),
            left_over=report.left,
        )

    def _before_writes(self, exc: BaseException) -> DeviceResult:
        ending, reason = before_writes(exc)
        return conclude(
            self.device.name, ending, reason, error=exc if isinstance(exc, FortiautoError) else None
        )

    async def _after_failure(
        self, api: DeviceApi, prepared: PreparedPlan | None, why: str, *, bug: bool = False
    ) -> DeviceResult:
        """Writes may be on the device: undo them all, then say what happened."""
        if self._committed is not None:
            return self._committed
        if not self.applier.writes:
            return conclude(self.device.name, Ending.INTERRUPTED, "interrupted before any write")
        if self.phases.phase is not Phase.ROLLBACK:
            self.phases.enter(Phase.ROLLBACK)
        changes = tuple(w.change for w in reversed(self.applier.writes))
        report = await self._rollback(api)
        if not report.complete:
            return self._left_over(prepared, report, why)
        return self._conclude(
            Ending.BUG if bug else Ending.ROLLED_BACK,
            f"{why}; rolled back, pre-change state verified",
            changes=prepared.attempted if prepared else changes,
            plan=prepared.plan if prepared else None,
            mttr_ms=self._mttr(),
        )

    def _conclude(self, ending: Ending, reason: str, **details: Any) -> DeviceResult:
        return conclude(
            self.device.name,
            ending,
            reason,
            forced=self.options.force_baseline,
            policy_name=self._policy_name,
            config_revision=self._revision.id if self._revision else None,
            **details,
        )

    def _to_retire(self, prepared: PreparedPlan) -> tuple[Change, ...]:
        """This plan's retirements, then an unfinished run's (``finish_retirement``), each once."""
        seen = {(c.vdom, str(c.mkey)) for c in prepared.retire}
        extra = tuple(c for c in self.options.finish_retirement if (c.vdom, str(c.mkey)) not in seen)
        return prepared.retire + extra

    async def _finish_retirement(
        self, api: DeviceApi, prepared: PreparedPlan
    ) -> tuple[PreparedPlan, tuple[Change, ...]]:
        """Nothing to change: finish an unfinished run's retirement, if there is one (``resume.py``)."""
        if not self.options.finish_retirement:
            return prepared, ()
        retired, kept = await retire_certificates(api, self.applier, self.options.finish_retirement)
        if retired:
            try:
                await _install(api, "retire")
            except FortiautoError as exc:
                kept += (f"the retired certificates' deletion was not installed: {exc}",)
        plan = replace(prepared.plan, warnings=(*prepared.plan.warnings, *kept))
        return replace(prepared, plan=plan), retired

    async def _save_revision(self, api: DeviceApi, prepared: PreparedPlan) -> PreparedPlan:
        """Once, before the first write: a configuration revision on the unit (``config_revision.py``)."""
        if self._revision is None and not isinstance(api, ManagedRoute):
            self._revision = await save_revision(api, self.options.run_id)
            await self._record_durable("config_revision", **self._revision.to_json())
        note = self._revision.note if self._revision else None
        if note is None or note in prepared.plan.warnings:
            return prepared
        return replace(prepared, plan=replace(prepared.plan, warnings=(*prepared.plan.warnings, note)))

    # -- undo ----------------------------------------------------------------------------------

    async def _rollback(self, api: DeviceApi) -> UndoReport:
        """Undo this transaction's writes newest first, then verify by re-reading; returns what is left."""
        pending = self.applier.pending
        entries = [w.entry(self.device.name) for w in pending]
        unanswered = [w.entry(self.device.name) for w in pending if w.unanswered]
        # A write whose answer was lost may still be in flight: re-reading at once could see the
        # old state, "restore" nothing, and be overtaken by the late write. Wait, undo, and look
        # once more after another grace period (undo re-reads first, so a second pass is free
        # when nothing landed late).
        grace = min(max(_MIN_LOST_WRITE_GRACE, self.device.timeout), _MAX_LOST_WRITE_GRACE)
        if unanswered:
            await asyncio.sleep(grace)
        report = await undo_entries(api, entries, self._record)
        if unanswered and report.complete:
            await asyncio.sleep(grace)
            report = await undo_entries(api, unanswered, self._record)
        try:
            await _install(api, "undo")
        except FortiautoError as exc:
            return UndoReport(
                (*report.left, f"the undo was not installed on the unit: {exc}"), report.changed_since
            )
        if report.complete:
            self.applier.forget()
        return report

    # -- helpers -------------------------------------------------------------------------------

    def _rungs(self) -> list[str | None]:
        """The full fix, then each fallback rung every mail server of the device allows."""
        servers = self.device.mail_servers
        rungs: list[str | None] = [None]
        if self.options.planner is not None:
            return rungs
        if servers:
            rungs.extend(r for r in servers[0].fallback if all(r in ms.fallback for ms in servers[1:]))
        if self.options.start_rung in rungs:
            return rungs[rungs.index(self.options.start_rung) :]
        return rungs

    async def _plan(self, api: DeviceApi, version: FortiOSVersion, rung: str | None) -> PreparedPlan:
        prepared = await (self.options.planner or prepare_plan)(
            api,
            self.device,
            version,
            rung=rung,
            tasks=self.applier.tasks,
            templates=self.options.templates,
            warnings=(*self.options.notes, *self._preflight.warnings(self.device)),
            check_policy=not self._policy_checked,
        )
        self._policy_checked = self._policy_checked or not prepared.plan.empty
        self._policy_name = prepared.policy_name or self._policy_name
        self.verifier.inbound_policies.update(prepared.policy_ids)
        if prepared.plan.empty:
            return prepared
        refusal = self._preflight.refusal(self.device, (c.path for c in prepared.plan.changes))
        if refusal is None and isinstance(api, ChecksPlan):
            refusal = await api.plan_refusal(prepared.plan.changes)
            prepared = replace(prepared, refusal=refusal)
        if self.options.check and refusal is not None:
            plan = prepared.plan
            prepared = replace(
                prepared, plan=replace(plan, warnings=(*plan.warnings, f"apply would be refused: {refusal}"))
            )
        return prepared

    async def _effect(self, api: DeviceApi, probes: Probes) -> Effect:
        """The fix's effect in the log; a plan that takes the fix off (``remove``) has none to prove."""
        if self.options.planner is not None and not self.options.planner.proves_effect:
            return "unknown"
        return await self.verifier.effect(api, probes)

    def _record(self, kind: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record(kind, device=self.device.name, **fields)

    async def _record_durable(self, kind: str, **fields: Any) -> None:
        # The same durable line as _record, but the fsync runs off the event loop (group commit).
        if self.journal is not None:
            await self.journal.record_durable(kind, device=self.device.name, **fields)

    def _mttr(self) -> float | None:
        start, back = self.applier.first_write_at, self.verifier.mail_back_at
        return None if start is None or back is None else (back - start) * 1000

    def _baseline(self) -> Probes:
        return {p.mail_server: p.result for p in self.verifier.history if p.stage == "baseline"}

    def _after_probes(self) -> Probes:
        found: Probes = {}
        for p in self.verifier.history:
            if p.stage in ("after", "delivery"):
                found[p.mail_server] = p.result
        return found


async def _to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end whatever cancellations arrive meanwhile (a rollback must finish).

    The client stays open under it because this coroutine, inside the client's context, does
    not return before ``work`` does.
    """
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if task.done():
                return task.result()


async def _install(api: DeviceApi, why: str) -> None:
    if isinstance(api, Installs):
        await api.install(why)


def _failure(result: Any) -> str:
    if result is None:
        return "?"
    text = str(result.failure_class or "failed")
    detail = next((s.detail for s in reversed(result.steps) if not s.ok and s.detail), "")
    return f"{text}: {detail}" if detail and detail not in text else text


def _expected(exc: BaseException) -> bool:
    return isinstance(exc, FortiautoError)


def _why(exc: BaseException) -> str:
    if isinstance(exc, FortiautoError):
        return f"failed ({exc})"
    return f"unexpected {type(exc).__name__}: {exc} (a bug)"


def _noop_reason(plan: Any) -> str:
    """Short, for tables; each task's own reason stays in ``plan.noop_reasons`` (and the JSON)."""
    count = len(plan.noop_reasons)
    return f"already compliant ({count} task(s) checked)" if count else "nothing to change"
