"""Verify a device's mail path: SMTP probes, delivery to the mailbox, and the fix's effect in the log.

The verify phase of a device transaction, and its baseline. ``Verifier.probe_all`` probes every
mail server of the device through its VIP (pinned to the mail server's own certificate after
the change), ``confirm_delivery`` asks the mail server's delivery confirmer whether the message
arrived (a 250 after the dot is not delivery: F17), and ``effect`` looks for the probe's message
in the device's email filter log — the proof that inbound mail is now logged and inspected.
A rotation to a certificate of another issuer (``rotation.ChainCheck``) asks the probe after
the change to verify the chain too, through the probe's own options, and names the renewal in
the finding. Every probe is kept (``StageProbe``), so reports can show the one that caused a
rollback.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from fortiauto.errors import FortiOSError
from fortiauto.events import Events
from fortiauto.probe.classify import FailureClass, judged_in_log
from fortiauto.probe.delivery import DeliveryCheck
from fortiauto.probe.evidence import LogReader, find_evidence, log_sources, read_log_settings
from fortiauto.results import Effect, ProbeResult, StageProbe
from fortiauto.rotation import ChainCheck
from fortiauto.site import Device, MailServer, ProbeSpec

__all__ = ["F17_NOT_DELIVERED", "LogApi", "Prober", "Verifier"]

F17_NOT_DELIVERED = "F17 not-delivered"
_EFFECT_POLLS = 3
_EFFECT_POLL_DELAY = 0.3

Probes = dict[str, ProbeResult]  # per mail server name


class Prober(Protocol):
    def __call__(
        self,
        spec: ProbeSpec,
        *,
        pin_sha256: str | None = None,
        baseline: ProbeResult | None = None,
        subject_token: str | None = None,
    ) -> Awaitable[ProbeResult]: ...


LogApi = LogReader


@dataclass
class Verifier:
    """Probes and checks for one device; remembers every probe and when mail came back."""

    device: Device
    prober: Prober
    run_id: str
    events: Events
    delivery: DeliveryCheck | None = None
    enabled: bool = True
    history: list[StageProbe] = field(default_factory=list)
    mail_back_at: float | None = None
    evidence: dict[str, Any] | None = None
    effect_notes: list[str] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)  # mail server -> the log's spam verdict
    # mail server -> the inbound policy's id (from the plan): only its log entry proves the fix
    inbound_policies: dict[str, int] = field(default_factory=dict)
    _log_sources: dict[str, list[str]] = field(default_factory=dict)  # per vdom, read once per run

    async def probe_all(
        self,
        stage: str,
        *,
        pinned: bool,
        baseline: Probes | None = None,
        rung: str | None = None,
        chain_checks: Sequence[ChainCheck] = (),
    ) -> Probes:
        results: Probes = {}
        if not self.enabled:
            return results
        checks = {c.mail_server: c for c in chain_checks if c.forced}
        for ms in self.device.mail_servers:
            check = checks.get(ms.name)
            result = await self.prober(
                check.spec(ms.probe) if check else ms.probe,
                pin_sha256=ms.certificate.fingerprint_sha256 if pinned else None,
                baseline=(baseline or {}).get(ms.name),
                subject_token=f"{self.run_id}-{self.device.name}-{ms.name}-{secrets.token_hex(3)}",
            )
            if check is not None:
                result = renewed_chain_finding(result)
            results[ms.name] = result
            self._keep(stage, ms.name, result, rung)
        if stage == "confirm" and results and passed(results):
            self.mail_back_at = time.monotonic()
        return results

    @property
    def unprovable(self) -> bool:
        """The effect could not be looked up (no readable log device, or the log could not be read)."""
        return bool(self.effect_notes)

    def _keep(self, stage: str, mail_server: str, result: ProbeResult, rung: str | None) -> None:
        self.history.append(StageProbe(stage, mail_server, result, rung))
        self.events.probe_finished(self.device.name, stage, result)

    async def confirm_delivery(
        self, probes: Probes, *, rung: str | None = None, stage: str = "delivery"
    ) -> Probes:
        """Where the mail server's confirmer can tell, the probe's message must have arrived.

        Also run on the baseline (``stage`` ``baseline-delivery``): a message that does not arrive
        before any change means mail is already broken, and wrong mailbox settings show before
        any write; and on the confirming probe after a rollback, so no probe message is left behind.
        """
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
                self._keep(stage, ms.name, checked[ms.name], rung)
        return checked

    async def effect(self, api: LogReader, probes: Probes) -> Effect:
        """Did the probe's message reach the email filter log, where the device really logs?

        That is what the change is for. The entry that proved it is kept in ``evidence``; an
        entry that shows a spam check judged the probe's message is kept in ``verdicts``
        (``judged`` turns those probes into ``F18 spam-tagged``).
        """
        servers = {ms.name: ms for ms in self.device.mail_servers}
        sent = [(servers[name], r) for name, r in probes.items() if r.passed and r.subject]
        if not sent:
            return "unknown"
        outcomes = [await self._logged(api, ms, r.subject or "") for ms, r in sent]
        if "not_logged" in outcomes:
            return "not_logged"
        return "logged" if all(o == "logged" for o in outcomes) else "unknown"

    def judged(self, probes: Probes) -> Probes:
        """The probes, those the email filter log says a spam check judged as ``F18 spam-tagged``.

        Mail flows for them, but the probe's identity did not pass: the outcome does not call
        the effect proven (``outcome.success``).
        """
        return {
            name: judged_in_log(result, self.verdicts[name]) if name in self.verdicts else result
            for name, result in probes.items()
        }

    async def _logged(self, api: LogReader, ms: MailServer, subject: str) -> Effect:
        token = subject.rsplit(maxsplit=1)[-1]
        vdom = ms.vdom or self.device.vdom
        try:
            if vdom not in self._log_sources:
                self._log_sources[vdom] = log_sources(await read_log_settings(api, vdom))
            sources = self._log_sources[vdom]
            if not sources:
                self.effect_notes.append(f"{ms.name}: the device logs to no log device the API can read")
                return "unknown"
            found = await find_evidence(
                api, vdom, token, polls=_EFFECT_POLLS, delay=_EFFECT_POLL_DELAY, sources=sources
            )
        except FortiOSError as exc:
            self.effect_notes.append(f"{ms.name}: the email filter log could not be read: {exc}")
            return "unknown"
        if found is None:
            return "not_logged"
        expected = self.inbound_policies.get(ms.name)
        if expected is not None and found.policy_id is not None and found.policy_id != expected:
            self.effect_notes.append(
                f"{ms.name}: the probe's message was logged by policy {found.policy_id}, not by the "
                f"inbound policy {expected}: the probe did not come in the way Internet mail does "
                "(probe.via: a host outside)"
            )
            return "not_logged"
        self.evidence = found.to_json()
        if found.verdict is not None:
            self.verdicts[ms.name] = found.verdict
        return "logged"


def renewed_chain_finding(result: ProbeResult) -> ProbeResult:
    """A chain that does not verify, said as what it is: the renewed certificate's chain."""
    if result.failure_class != FailureClass.CHAIN_UNTRUSTED:
        return result
    steps = list(result.steps)
    index = next((i for i in reversed(range(len(steps))) if not steps[i].ok), None)
    if index is None:
        return result
    detail = steps[index].detail
    if detail.startswith("chain does not verify"):
        detail = f"the renewed certificate's {detail}"
    else:
        detail = f"the renewed certificate's chain could not be verified: {detail}"
    steps[index] = replace(steps[index], detail=detail)
    return replace(result, steps=tuple(steps))


def passed(probes: Probes) -> bool:
    return all(r.passed for r in probes.values())


def first_failed(probes: Probes) -> ProbeResult | None:
    return next((r for r in probes.values() if not r.passed), None)


def first(probes: Probes) -> ProbeResult | None:
    return next(iter(probes.values()), None)
