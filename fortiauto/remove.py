"""``fortiauto remove``: take the recommended configuration back off a device, without a journal.

Ansible's ``state: absent``, on the same transaction as an apply (``transaction.device`` with
``TransactionOptions.planner``): baseline probe, plan, journal, write, read back, probe, commit
or roll back. Only the plan differs. ``RemovalPlanner`` reads, per mail server:

- the policy, to be bound again to what the site file names as its previous profiles
  (``mail_servers[].previous``); a mail server without them is refused, since nothing else
  says what to restore (the update is re-read before it is written, like any update);
- with ``policy.profile_group: edit``, the profile group a ``profile-type group`` policy
  applies, whose email filter, SSL/SSH and protocol options profiles go back to ``previous``
  (the plan names the other policies applying it, as an apply's does);
- the email filter, SSL/SSH and protocol options profiles the site names: deleted only when
  fortiauto created them (their comment starts with ``fortiauto:``), no previous binding names
  them, and no object beyond the policies and groups rebound here references them (``q_ref``);
- the certificates fortiauto imported for the mail server (``fa-<mail server>-<sha256[:8]>``):
  deleted after the probe passed, as a rotation retires one (a private key is never stored, so
  that deletion is the one step no undo can reverse; it waits for the proof).

Order: the policy and its group first (they release the profiles), then the profiles, the
certificates after the probe. A deleted profile's undo re-creates it from the full object as
read (journaled).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fortiauto.desired import PROFILE_GROUP_MEMBERS
from fortiauto.errors import Refused
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.plan import Step
from fortiauto.results import Change, Plan
from fortiauto.rotation import CERTIFICATE_PATH, is_own_certificate
from fortiauto.site import Device, MailServer
from fortiauto.tasks import Target, Task
from fortiauto.tasks.base import Diff, FortiOSApi
from fortiauto.transaction.planning import PreparedPlan, tasks

__all__ = ["OWN_COMMENT", "AbsentTask", "RemovalPlanner", "policy_bindings"]

OWN_COMMENT = "fortiauto:"  # every object fortiauto creates carries it (desired.py)
_PROFILES = ("emailfilter", "ssl_profile", "protocol_options")  # deleted in this order


def policy_bindings(ms: MailServer) -> dict[str, str]:
    """The policy keys ``previous`` restores; ``Refused`` when the site file does not name them."""
    previous = ms.previous
    if previous is None:
        raise Refused(
            f"{ms.name}: the site file does not say what the policy was bound to before fortiauto; "
            "add mail_servers[].previous: {ssl_profile, emailfilter_profile, protocol_options, "
            "inspection_mode} (or undo the run that made the change: fortiauto rollback --run ID)"
        )
    return {
        "ssl-ssh-profile": previous.ssl_profile,
        "emailfilter-profile": previous.emailfilter_profile,
        "profile-protocol-options": previous.protocol_options,
        "inspection-mode": previous.inspection_mode,
    }


def _without_meta(value: Any) -> Any:
    """An object as read, without FortiOS's ``q_`` metadata: the body that re-creates it."""
    if isinstance(value, dict):
        return {k: _without_meta(v) for k, v in value.items() if not str(k).startswith("q_")}
    if isinstance(value, list):
        return [_without_meta(v) for v in value]
    return value


class AbsentTask(Task):
    """A profile fortiauto created, to be deleted; ``target.desired`` carries its name and the
    number of references the rebound policies hold on it (``q_allowed_refs``)."""

    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> str:
        return str(target.desired["name"])

    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None:
        return await api.get_one(self.path, self.mkey(target), vdom=target.vdom, params={"with_meta": "1"})

    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff:
        mkey = self.mkey(target)
        if current is None:
            return Diff(noop_reason=f"{self.label} {mkey} is not on the device")
        if not str(current.get("comment") or "").startswith(OWN_COMMENT):
            return Diff(
                noop_reason=f"{self.label} {mkey} kept: not created by fortiauto (no fortiauto: comment)"
            )
        if target.desired.get("restored"):
            return Diff(noop_reason=f"{self.label} {mkey} kept: a previous binding names it")
        refs, allowed = current.get("q_ref"), int(target.desired.get("q_allowed_refs", 0))
        if isinstance(refs, int) and refs > allowed:
            return Diff(
                noop_reason=f"{self.label} {mkey} kept: {refs - allowed} other object(s) still use it"
            )
        before = _without_meta(current)
        return Diff((self.change(target, "delete", mkey, before, None),))

    async def apply(self, api: FortiOSApi, change: Change, target: Target) -> Any:
        return await api.delete(change.path, change.mkey, vdom=change.vdom)


def _absent(present: type[Task]) -> Task:
    """The ``AbsentTask`` of one kind of profile; its changes keep that task's name (reports, journal)."""
    attrs = {"name": present.name, "path": present.path, "label": present.label}
    kind: type[AbsentTask] = type(f"Absent{present.__name__}", (AbsentTask,), attrs)
    return kind()


class RemovalPlanner:
    """The ``Planner`` of ``fortiauto remove`` (``transaction.planning.Planner``)."""

    proves_effect = False  # the fix is being taken off: there is no effect in the log to prove

    def tasks(self) -> dict[str, Task]:
        present = tasks()
        return {**present, **{name: _absent(type(present[name])) for name in _PROFILES}}

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
    ) -> PreparedPlan:
        servers = [(ms, ms.vdom or device.vdom) for ms in device.mail_servers]
        wanted = [policy_bindings(ms) for ms, _ in servers]  # refuses before any read
        policy = tasks["policy"]
        policy_targets = [
            Target(ms, vdom, version, bindings) for (ms, vdom), bindings in zip(servers, wanted, strict=True)
        ]
        policies = await asyncio.gather(*(policy.read(api, t) for t in policy_targets))
        steps: list[Step] = []
        reasons: dict[str, str] = {}
        for target, current in zip(policy_targets, policies, strict=True):
            diff = policy.diff(target, current)
            steps.extend(Step(c, target) for c in diff.changes)
            if not diff.changes and current is not None:
                label = f"policy {current.get('policyid')}"
                reasons[f"{target.mail_server.name}/policy"] = (
                    f"{label} already bound to its previous profiles"
                )
        group_steps, group_reasons, groups, notes = await _groups(
            api, tasks["profile_group"], version=version, servers=servers, wanted=wanted
        )
        steps.extend(group_steps)
        reasons.update(group_reasons)
        profile_steps, profile_reasons = await self._profiles(
            api, tasks, version=version, servers=servers, policies=[*policies, *groups], wanted=wanted
        )
        steps.extend(profile_steps)
        reasons.update(profile_reasons)
        retire = await _certificates(api, servers)
        changes = tuple(s.change for s in steps)
        plan = Plan(
            device=device.name,
            version=str(version),
            changes=changes + retire,
            noop_reasons=reasons,
            warnings=tuple(dict.fromkeys([*warnings, *notes])),
        )
        names = [str(p["name"]) for p in policies if p and p.get("name")]
        return PreparedPlan(plan, tuple(steps), retire, ", ".join(dict.fromkeys(names)) or None)

    async def _profiles(
        self,
        api: FortiOSApi,
        tasks: dict[str, Task],
        *,
        version: FortiOSVersion,
        servers: Sequence[tuple[MailServer, str]],
        policies: Sequence[dict[str, Any] | None],
        wanted: Sequence[dict[str, str]],
    ) -> tuple[list[Step], dict[str, str]]:
        """Delete steps for the profiles fortiauto created; once per (vdom, path, name).

        ``policies``: the policies and profile groups rebound here (their references are released).
        """
        keys = {"emailfilter": "emailfilter-profile", "ssl_profile": "ssl-ssh-profile"}
        keys["protocol_options"] = "profile-protocol-options"
        attrs = {"emailfilter": "emailfilter_profile", "ssl_profile": "ssl_profile"}
        attrs["protocol_options"] = "protocol_options"
        pairs: list[tuple[Task, Target]] = []
        seen: set[tuple[str, str, str]] = set()
        for name in _PROFILES:
            task, key = tasks[name], keys[name]
            for ms, vdom in servers:
                profile = str(getattr(ms, attrs[name]))
                if (vdom, task.path, profile) in seen:
                    continue
                seen.add((vdom, task.path, profile))
                uses = sum(1 for p in policies if p and p.get(key) == profile)
                restored = any(w[key] == profile for w in wanted)
                desired = {"name": profile, "q_allowed_refs": uses, "restored": restored}
                pairs.append((task, Target(ms, vdom, version, desired)))
        currents = await asyncio.gather(*(task.read(api, target) for task, target in pairs))
        steps: list[Step] = []
        reasons: dict[str, str] = {}
        for (task, target), current in zip(pairs, currents, strict=True):
            diff = task.diff(target, current)
            steps.extend(Step(c, target) for c in diff.changes)
            if diff.noop_reason:
                reasons[f"{target.mail_server.name}/{task.name}"] = diff.noop_reason
        return steps, reasons


async def _groups(
    api: FortiOSApi,
    task: Task,
    *,
    version: FortiOSVersion,
    servers: Sequence[tuple[MailServer, str]],
    wanted: Sequence[dict[str, str]],
) -> tuple[list[Step], dict[str, str], list[dict[str, Any] | None], list[str]]:
    """The profile groups fortiauto was let edit, bound again to the previous profiles (once each).

    Returns the steps, the no-op reasons, the groups as read and the plan's warnings.
    """
    targets = [
        Target(ms, vdom, version, {key: bindings[key] for key in PROFILE_GROUP_MEMBERS})
        for (ms, vdom), bindings in zip(servers, wanted, strict=True)
        if ms.policy.profile_group == "edit"
    ]
    groups = list(await asyncio.gather(*(task.read(api, t) for t in targets)))
    steps: list[Step] = []
    reasons: dict[str, str] = {}
    notes: list[str] = []
    seen: set[tuple[str, str]] = set()
    for target, current in zip(targets, groups, strict=True):
        diff = task.diff(target, current)
        notes.extend(diff.warnings)
        for change in diff.changes:
            if (change.vdom, str(change.mkey)) not in seen:  # two mail servers sharing one group
                seen.add((change.vdom, str(change.mkey)))
                steps.append(Step(change, target))
        if not diff.changes and current is not None:
            reasons[f"{target.mail_server.name}/{task.name}"] = (
                f"profile group {task.mkey(target, current)} already bound to its previous profiles"
            )
    return steps, reasons, groups, notes


async def _certificates(api: FortiOSApi, servers: Sequence[tuple[MailServer, str]]) -> tuple[Change, ...]:
    """The certificates fortiauto imported for these mail servers (by name), deleted after the probe."""
    found: dict[tuple[str, str], Change] = {}
    for vdom in dict.fromkeys(v for _, v in servers):
        local = await api.get(CERTIFICATE_PATH, vdom=vdom)
        for ms, _ in (s for s in servers if s[1] == vdom):
            for cert in local:
                name = str(cert.get("name"))
                if is_own_certificate(name, ms.name):
                    found[(vdom, name)] = Change(
                        "certificate", CERTIFICATE_PATH, name, "delete", {"name": name}, None, vdom
                    )
    return tuple(found.values())
