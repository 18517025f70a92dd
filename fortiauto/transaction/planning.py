"""The plan phase of a device transaction: read the facts, then build the plan (pure) from them.

For each mail server of the device and each task in order, the desired object (``desired.py``)
and the object as read make a ``Fact``; ``plan.build_plan`` turns the facts into an ordered
``Plan`` with its ``Step``s. The same reads tell which certificates a rebind retires and which
certificates are close to expiry (``rotation.py``), at no extra request; a plan that retires one
reads it (one request per retired certificate) to tell whether the renewal changed the issuer,
which puts a chain check on the probe after the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from fortiauto.desired import desired_objects, merge_shared
from fortiauto.errors import NotFound, PlanError
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.plan import Fact, Step, build_plan
from fortiauto.policycheck import policy_problems, policy_warnings, service_ports
from fortiauto.results import Change, Plan
from fortiauto.rotation import (
    CERTIFICATE_PATH,
    ChainCheck,
    bound_certificates,
    chain_check,
    expiry_warnings,
    retired_certificates,
    rotation_note,
)
from fortiauto.site import Device, MailServer
from fortiauto.tasks import ORDER, REGISTRY, Target, Task
from fortiauto.tasks.base import FortiOSApi

__all__ = ["Planner", "PreparedPlan", "prepare_plan"]


@dataclass(frozen=True)
class PreparedPlan:
    """A plan and what applying it needs: the steps, and the deletions that follow a passed probe."""

    plan: Plan
    steps: tuple[Step, ...]
    retire: tuple[Change, ...] = ()
    policy_name: str | None = None
    # mail server -> id of the inbound policy as read: the effect must be logged by that policy
    policy_ids: Mapping[str, int] = field(default_factory=dict)
    # rotations to a certificate of another issuer: the probe after the change verifies the chain
    chain_checks: tuple[ChainCheck, ...] = ()
    # why the route refuses this plan before any write (preflight.ChecksPlan), or None
    refusal: str | None = None

    @property
    def attempted(self) -> tuple[Change, ...]:
        """The plan's changes without the deletions that only follow a passed probe."""
        return tuple(c for c in self.plan.changes if c not in self.retire)


class Planner(Protocol):
    """A plan other than the recommended configuration's, on the same transaction (``remove.py``).

    Called like ``prepare_plan``; ``tasks`` are the tasks its changes name (the Applier writes
    them); ``proves_effect`` False: there is no effect in the log to prove (taking the fix off).
    """

    proves_effect: bool

    def tasks(self) -> dict[str, Task]: ...

    async def __call__(
        self,
        api: FortiOSApi,
        device: Device,
        version: FortiOSVersion,
        *,
        rung: str | None,
        tasks: dict[str, Task],
        templates: Path | None = None,
        warnings: Sequence[str] = (),
        check_policy: bool = True,
    ) -> PreparedPlan: ...


def tasks() -> dict[str, Task]:
    return {name: REGISTRY[name]() for name in ORDER}


async def prepare_plan(
    api: FortiOSApi,
    device: Device,
    version: FortiOSVersion,
    *,
    rung: str | None,
    tasks: dict[str, Task],
    templates: Path | None = None,
    warnings: Sequence[str] = (),
    check_policy: bool = True,
) -> PreparedPlan:
    """Read every object the desired state names, then plan; raises ``PlanError`` before any write.

    ``check_policy``: when the plan would write, make sure each policy is an inbound mail
    policy (``policycheck.py``; a few reads, once per transaction).
    """
    pairs: list[tuple[Task, Target]] = []
    wanted = [
        (ms, ms.vdom or device.vdom, desired_objects(ms, version, rung=rung, templates=templates))
        for ms in device.mail_servers
    ]
    # Profiles two mail servers share get one desired state (merged), or a PlanError.
    for (ms, vdom, _), desired in zip(wanted, merge_shared(wanted), strict=True):
        pairs.extend(
            (tasks[name], Target(ms, vdom, version, desired[name])) for name in ORDER if name in desired
        )
    warnings = (*warnings, *version.support_notes())
    currents = await _read_all(api, device.name, pairs)
    facts = [Fact(task, target, current) for (task, target), current in zip(pairs, currents, strict=True)]
    plan, steps = build_plan(device.name, version, facts, rung=rung)
    if check_policy and not plan.empty:
        await _check_policies(api, facts)
    notes = [w for f in facts if f.task.name == "policy" and f.current for w in policy_warnings(f.current)]
    retiring, rotation_notes = _rotation(facts, plan)
    notes.extend(rotation_notes)
    checks = await _chain_checks(api, retiring)
    notes.extend(c.note() for c in checks)
    retire = tuple({(c.vdom, str(c.mkey)): c for _, found in retiring for c in found}.values())
    plan = replace(
        plan,
        changes=plan.changes + retire,
        warnings=tuple(dict.fromkeys([*warnings, *plan.warnings, *notes])),
    )
    return PreparedPlan(plan, steps, retire, _policy_name(facts), _policy_ids(facts), checks)


async def _read_all(
    api: FortiOSApi, device: str, pairs: list[tuple[Task, Target]]
) -> list[dict[str, Any] | None]:
    # Let every read settle before raising: the client must not close under reads still in flight.
    outcomes = await asyncio.gather(
        *(_read(api, device, t, target) for t, target in pairs), return_exceptions=True
    )
    failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failure is not None:
        raise failure
    return [o for o in outcomes if not isinstance(o, BaseException)]


async def _read(api: FortiOSApi, device: str, task: Task, target: Target) -> dict[str, Any] | None:
    try:
        return await task.read(api, target)
    except NotFound as exc:
        raise PlanError(f"{device}: cannot read {task.path} in vdom {target.vdom!r}: {exc}") from exc


async def _check_policies(api: FortiOSApi, facts: Sequence[Fact]) -> None:
    """Refuse (PlanError, nothing written) a policy that is not the inbound mail policy to a VIP."""
    for fact in facts:
        ms, policy = fact.target.mail_server, fact.current
        if fact.task.name != "policy" or policy is None or ms.allow_any_policy:
            continue
        vdom = fact.target.vdom
        vips = {str(v.get("name")) for v in await api.get("firewall/vip", vdom=vdom)}
        names = [str(s.get("name")) for s in policy.get("service") or [] if isinstance(s, dict)]
        ports: list[tuple[int, int]] | None = None
        if not any(name in ("ALL", "ALL_TCP") for name in names):
            custom = {str(s.get("name")): s for s in await api.get("firewall.service/custom", vdom=vdom)}
            groups = {}
            if any(name not in custom for name in names):
                groups = {str(g.get("name")): g for g in await api.get("firewall.service/group", vdom=vdom)}
            ports = service_ports(names, custom, groups)
        problems = policy_problems(
            policy, vips=vips, ports=ports, probe_port=ms.probe.port, probe_mode=ms.probe.mode
        )
        if problems:
            raise PlanError(
                f"{ms.name}: {'; '.join(problems)}: not the inbound mail policy; name the right one "
                "(policy: id, name or vip), or set allow_any_policy: true to change it anyway"
            )


def _policy_name(facts: Sequence[Fact]) -> str | None:
    names = [
        str(f.current["name"])
        for f in facts
        if f.task.name == "policy" and f.current and f.current.get("name")
    ]
    return ", ".join(dict.fromkeys(names)) or None


def _policy_ids(facts: Sequence[Fact]) -> dict[str, int]:
    return {
        f.target.mail_server.name: int(f.current["policyid"])
        for f in facts
        if f.task.name == "policy" and f.current and str(f.current.get("policyid", "")).isdigit()
    }


Retiring = list[tuple[MailServer, tuple[Change, ...]]]  # per mail server, the certificates it retires


def _rotation(facts: Sequence[Fact], plan: Plan) -> tuple[Retiring, list[str]]:
    """From the SSL/SSH profiles as read: the certificates this plan retires, and what to say.

    A certificate is retired only when this plan rebinds its profile (so the probe proves the
    successor); the expiry warnings come from the same read.
    """
    now = datetime.now(UTC)
    retired: Retiring = []
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
            retired.append((ms, found))
            notes.append(rotation_note(ms, found))
    return retired, notes


async def _chain_checks(api: FortiOSApi, retiring: Retiring) -> tuple[ChainCheck, ...]:
    """Read each retired certificate (its PEM) and decide whether the renewal changed its issuer."""
    checks = []
    for ms, found in retiring:
        pems = {str(c.mkey): await _certificate_pem(api, c) for c in found}
        check = chain_check(ms, pems)
        if check is not None:
            checks.append(check)
    return tuple(checks)


async def _certificate_pem(api: FortiOSApi, retired: Change) -> str | None:
    # The CMDB object carries the certificate as PEM text (fortios-objects.md §5.2).
    current = await api.get_one(CERTIFICATE_PATH, retired.mkey, vdom=retired.vdom)
    pem = (current or {}).get("certificate")
    return pem if isinstance(pem, str) else None
