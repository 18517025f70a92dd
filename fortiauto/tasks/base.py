"""Task: one kind of FortiOS object fortiauto manages, as read / diff / apply / undo.

The shape is pyinfra's fact + operation pair.

``read`` does the GETs and returns the object as FortiOS sent it; ``diff`` is pure and returns the
``Change``s needed to reach the desired state, or none plus the reason nothing is needed;
``apply`` performs one change. Undo needs no task: ``transaction/undo.py`` reverses a change from
the journal's data alone (no site, no template), which is what lets ``fortiauto rollback`` work
after a crash.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from fortiauto.desired import ON_CREATE
from fortiauto.errors import PlanError
from fortiauto.fortios.normalise import differing
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.results import Change
from fortiauto.site import MailServer

__all__ = ["REGISTRY", "CmdbObjectTask", "Diff", "FortiOSApi", "Target", "Task", "merged"]


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s keys added, containers merged key by key (pure)."""
    out = dict(base)
    for key, value in extra.items():
        have = out.get(key)
        out[key] = merged(have, value) if isinstance(have, dict) and isinstance(value, dict) else value
    return out


class FortiOSApi(Protocol):
    """The slice of ``FortiOSClient`` tasks use (a seam for tests and for the engine)."""

    async def get(
        self, path: str, mkey: str | int | None = None, *, vdom: Any = ..., params: Any = None
    ) -> list[dict[str, Any]]: ...

    async def get_one(
        self, path: str, mkey: str | int, *, vdom: Any = ..., params: Any = None
    ) -> dict[str, Any] | None: ...

    async def create(
        self, path: str, body: Any, *, vdom: Any = ..., params: Any = None, mkey: Any = None
    ) -> Any: ...

    async def update(
        self, path: str, mkey: str | int, body: Any, *, vdom: Any = ..., params: Any = None
    ) -> Any: ...

    async def delete(self, path: str, mkey: str | int, *, vdom: Any = ...) -> Any: ...

    async def monitor_post(self, path: str, body: Any, *, vdom: Any = ..., params: Any = None) -> Any: ...


@dataclass(frozen=True)
class Target:
    """What one task manages for one mail server: the rendered desired object and where it lives."""

    mail_server: MailServer
    vdom: str
    version: FortiOSVersion
    desired: dict[str, Any]


@dataclass(frozen=True)
class Diff:
    changes: tuple[Change, ...] = ()
    noop_reason: str | None = None
    warnings: tuple[str, ...] = ()


REGISTRY: dict[str, type[Task]] = {}


class Task(ABC):
    """Base of every task; subclasses register under ``name`` (``class X(Task, name="policy")``)."""

    name: ClassVar[str]
    path: ClassVar[str]
    label: ClassVar[str] = "object"
    # The access-profile group that governs writes to ``path`` and, for a "custom" group, the
    # sub-permission (pre-flight checks the token can write every path a plan touches).
    permission: ClassVar[tuple[str, str | None]]

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
            REGISTRY[name] = cls

    @abstractmethod
    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> str | int: ...

    @abstractmethod
    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None: ...

    @abstractmethod
    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff: ...

    async def apply(self, api: FortiOSApi, change: Change, target: Target) -> Any:
        """Perform one change (create or update by default); returns the client's answer."""
        if change.action == "create":
            # A named object: FortiOS must echo exactly this key (the client checks it).
            return await api.create(change.path, change.after or {}, vdom=change.vdom, mkey=change.mkey)
        if change.action == "update":
            return await api.update(change.path, change.mkey, change.after or {}, vdom=change.vdom)
        raise NotImplementedError(f"{self.name} cannot {change.action}")

    def change(
        self,
        target: Target,
        action: Any,
        mkey: str | int,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> Change:
        return Change(
            task=self.name,
            path=self.path,
            mkey=mkey,
            action=action,
            before=before,
            after=after,
            vdom=target.vdom,
        )


class CmdbObjectTask(Task):
    """A named CMDB object fortiauto creates when missing and updates key by key when it differs.

    The desired object's ``on-create`` keys (``desired.ON_CREATE``) are sent only with a create:
    an object of the site's own keeps its settings beyond the keys fortiauto manages.
    """

    read_only: ClassVar[frozenset[str]] = frozenset()

    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> str | int:
        return str(target.desired["name"])

    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None:
        return await api.get_one(self.path, self.mkey(target), vdom=target.vdom, params={"with_meta": "1"})

    def wanted(self, target: Target, current: dict[str, Any] | None) -> dict[str, Any]:
        """The object to reach from ``current`` (None: the one to create)."""
        desired = {k: v for k, v in target.desired.items() if k != ON_CREATE}
        extra = target.desired.get(ON_CREATE)
        if current is None and isinstance(extra, dict):
            return merged(desired, extra)
        return desired

    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff:
        mkey = self.mkey(target)
        if mkey in self.read_only:
            raise PlanError(
                f"{self.label} {mkey!r} is a read-only FortiOS built-in; name a profile of your own"
            )
        wanted = self.wanted(target, current)
        if current is None:
            return Diff((self.change(target, "create", mkey, None, wanted),))
        before, after = differing(current, wanted)
        warnings = self.shared_use_warnings(mkey, current) + self.notes(mkey, current)
        if not after:
            return Diff(noop_reason=f"{self.label} {mkey} already compliant", warnings=warnings)
        return Diff((self.change(target, "update", mkey, before, after),), warnings=warnings)

    def notes(self, mkey: str | int, current: dict[str, Any]) -> tuple[str, ...]:
        """What the plan should say about an existing object beyond what is changed (none by default)."""
        return ()

    def shared_use_warnings(self, mkey: str | int, current: dict[str, Any]) -> tuple[str, ...]:
        """Changing a profile other policies use changes them too: say so (``q_ref`` from with_meta)."""
        refs = current.get("q_ref")
        if isinstance(refs, int) and refs > 1:
            return (
                f"{self.label} {mkey} is referenced by {refs} objects; the change applies to all of them",
            )
        return ()
