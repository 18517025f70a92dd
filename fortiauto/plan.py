"""Build a device's Plan from facts: the ordered changes, and why each content task needs none.

Pure: facts (what ``Task.read`` returned) and rendered desired state in, an ordered ``Plan`` and
its ``Step``s (each change with the target its task needs to apply it) out. Two mail servers
that share a profile share the change; two that want different content for one object are a
``PlanError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fortiauto.errors import PlanError
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.results import Change, Plan
from fortiauto.tasks import ORDER, Target, Task

__all__ = ["Fact", "Step", "build_plan"]


@dataclass(frozen=True)
class Fact:
    """What one task read for one mail server."""

    task: Task
    target: Target
    current: dict[str, Any] | None


@dataclass(frozen=True)
class Step:
    change: Change
    target: Target


def _order(fact: Fact) -> int:
    return ORDER.index(fact.task.name)


def build_plan(
    device: str, version: FortiOSVersion, facts: Sequence[Fact], *, rung: str | None = None
) -> tuple[Plan, tuple[Step, ...]]:
    """Order the changes certificate -> ... -> policy; merge identical changes to shared objects."""
    steps: list[Step] = []
    seen: dict[tuple[str, str, str], Change] = {}
    reasons: dict[str, str] = {}
    warnings: list[str] = []
    for fact in sorted(facts, key=_order):
        label = f"{fact.target.mail_server.name}/{fact.task.name}"
        diff = fact.task.diff(fact.target, fact.current)
        if diff.noop_reason:
            reasons[label] = diff.noop_reason
        warnings.extend(w for w in diff.warnings if w not in warnings)
        for change in diff.changes:
            key = (change.path, str(change.mkey), change.vdom)
            earlier = seen.get(key)
            if earlier is None:
                seen[key] = change
                steps.append(Step(change, fact.target))
            elif earlier.after != change.after:
                raise PlanError(f"mail servers want different content for {change.path}/{change.mkey}")
            else:
                reasons[label] = f"{change.path}/{change.mkey} shared with another mail server"
    plan = Plan(
        device=device,
        version=str(version),
        changes=tuple(step.change for step in steps),
        noop_reasons=reasons,
        warnings=tuple(warnings),
        rung=rung,
    )
    return plan, tuple(steps)
