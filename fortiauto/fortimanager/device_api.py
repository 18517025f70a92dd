"""A device routed through FortiManager as the transaction's ``DeviceApi``: changes there, facts from it.

``transaction.DeviceTransaction`` runs unchanged on ``FortiManagerDeviceApi``: CMDB reads and
writes of the tables fortiauto manages (and the certificate import) go to FortiManager through
``FortiManagerCmdb``; ``system_status``, ``monitor_get``, ``log_get`` and every other CMDB read
(central management, log settings) go to the unit's own REST API, which is never written.
Being ``Installs``, it is installed by the transaction after the writes, after an undo and
after a retirement: commit the ADOM workspace, take the install preview (the CLI that will
reach the unit), install the package to this one device and follow the task to its end.
Being a ``preflight.ManagedRoute``, it tells pre-flight whether FortiManager may change the
unit now (``readiness.check_ready``, ``readiness.check_scope``: a package that installs to
anything but this unit is refused before any write, its targets read once per run's
session, plus another admin's workspace lock). Being a ``preflight.ChecksPlan``, it refuses
a plan that updates an ADOM object a policy of another package uses (``shared_objects``;
the package list and their policies read once per run's session, and only for such a plan).

Workspace mode: the ADOM lock is taken at the first write and held until the device is done
(undo and re-install included), so no other admin can slip in between a change and its undo;
leaving unlocks, which discards nothing fortiauto still needs (every install commits first).
FortiManager's failures on the CMDB seam are given their FortiOS kin (``NotFound``,
``APIError`` for a refused write, ``ResponseLost`` for a write whose answer was lost ...), so
the applier, the undo and the outcome table treat them as they treat the unit's, with the
FortiManager error kept as the cause. ``SiteConnections`` is a run's client factory: one
FortiManager session for every routed device, which take turns while writing, in this process
and with every other process on the machine (``fleet.lock.fortimanager_lock``: Ansible's forks,
a second CLI run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

from fortiauto import errors
from fortiauto.fleet.lock import fortimanager_lock
from fortiauto.fortimanager.client import FortiManagerClient
from fortiauto.fortimanager.cmdb import CERT_PATH, IMPORT_PATH, POLICY_PATH, FortiManagerCmdb
from fortiauto.fortimanager.connect import Route, client_for_fortimanager, route_for, workspace_setting
from fortiauto.fortimanager.readiness import check_ready, check_scope, describe_targets, scope_unreadable
from fortiauto.fortimanager.shared_objects import (
    GROUP_FIELDS,
    GROUP_PATH,
    POLICY_FIELDS,
    AdomObject,
    needs_groups,
    objects_unreadable,
    own_package,
    shared_refusal,
    updated_objects,
    users,
)
from fortiauto.fortios.connect import client_for
from fortiauto.fortios.normalise import canonical, project
from fortiauto.preflight import MANAGED_PATHS, RouteReadiness
from fortiauto.results import Change, RequestCounts
from fortiauto.site import Device, Site
from fortiauto.site.models import FortiManagerSpec
from fortiauto.transaction.device import DeviceApi

__all__ = ["FortiManagerDeviceApi", "RoutedCounts", "SiteConnections", "fortios_kin", "redacted_preview"]

logger = logging.getLogger("fortiauto.fortimanager")

T = TypeVar("T")
DirectFactory = Callable[[Device], AbstractAsyncContextManager[DeviceApi]]

# The tables whose home is FortiManager; any other CMDB path is a fact read from the unit.
_MANAGED: frozenset[str] = frozenset(MANAGED_PATHS)
# Raised by the install and the workspace as they are: they mean what they say already.
_OWN_MEANING = (errors.WorkspaceLocked, errors.InstallFailed, errors.TaskTimeout)
# "No vdom given" for the unit's client, which tells it apart from None (no vdom at all).
_UNSET: Any = object()
_PRESENT: Any = object()  # an imported certificate: its key is never read back, only its presence
_MASK = "ENC ********"
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S
)
# FortiOS CLI attributes that hold a secret (``set <name> <value>``, the value maybe quoted over lines).
_SECRET_SET = re.compile(
    r'^(\s*set (?:private-key|password|passwd|passphrase|psksecret|secret|key)\s+)(?:"[^"]*"|\S.*)$', re.M
)


@dataclass(frozen=True)
class RoutedCounts(RequestCounts):
    """The unit's own requests (``writes`` stays 0) and, in ``fortimanager``, what FortiManager received."""

    fortimanager: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "fortimanager": dict(self.fortimanager)}


def fortios_kin(exc: errors.FortiManagerError, *, write: bool) -> errors.FortiautoError:
    """The FortiOS error that means for the transaction what FortiManager's ``exc`` means.

    A refused write (any status code) is an ``APIError``: it did not happen, so the undo leaves
    that object alone. A write whose answer was lost is ``ResponseLost``: re-read, never resend.
    """
    text = str(exc)
    code = exc.code if isinstance(exc, errors.FortiManagerAPIError) else None
    if isinstance(exc, errors.FortiManagerTransportError):
        if write:
            return errors.ResponseLost(text, in_flight=exc.in_flight)
        return errors.TransportError(text)
    if isinstance(exc, errors.FortiManagerAuthError):
        return errors.AuthError(text, http_status=401)
    if isinstance(exc, errors.FortiManagerNoPermission) and not write:
        return errors.AuthError(text, http_status=403)
    kinds: tuple[tuple[type[errors.FortiManagerError], type[errors.APIError]], ...] = (
        (errors.FortiManagerNotFound, errors.NotFound),
        (errors.FortiManagerAlreadyExists, errors.AlreadyExists),
        (errors.FortiManagerInvalidData, errors.InvalidValue),
    )
    kind = next((fortios for fmg, fortios in kinds if isinstance(exc, fmg)), errors.APIError)
    return kind(text, http_status=200, error_code=code)


@contextlib.contextmanager
def _as_fortios(*, write: bool) -> Iterator[None]:
    try:
        yield
    except _OWN_MEANING:
        raise
    except errors.FortiManagerError as exc:
        raise fortios_kin(exc, write=write) from exc


class FortiManagerDeviceApi:
    """``DeviceApi`` + ``Installs`` + ``ManagedRoute`` for one routed device (see the module docstring)."""

    def __init__(
        self,
        fmg: FortiManagerClient,
        unit: DeviceApi,
        *,
        route: Route,
        spec: FortiManagerSpec,
        workspace: bool,
        writing: bool = True,
    ) -> None:
        self.fmg = fmg
        self.unit = unit
        self.route = route
        self._spec = spec
        self._workspace = workspace
        self._writing = writing  # False for plan (check mode): readiness only reads
        self.cmdb = FortiManagerCmdb(fmg, device=route.device, package=route.package, vdom=route.vdom)
        self._version_known = False
        self._locked = False
        self._staged = 0  # object writes sent since the last install
        self._writes = 0
        self._tasks: list[int] = []
        self._preview: str | None = None
        # What each object written since the last install must look like on the unit after it.
        self._expected: dict[tuple[str, str | int], Any] = {}

    def __repr__(self) -> str:
        return f"FortiManagerDeviceApi({self.route.describe()})"

    # --- what the transaction reads about the unit -----------------------------------------

    @property
    def counts(self) -> RoutedCounts:
        own = self.unit.counts
        return RoutedCounts(total=own.total, writes=own.writes, fortimanager=self.report())

    def report(self) -> dict[str, Any]:
        """What FortiManager received for this device: for the device's JSON (never a credential)."""
        return {
            **self.route.to_json(),
            "requests": self.fmg.counts.total,
            "writes": self.fmg.counts.writes,  # every call but a read: lock, commit, install included
            "changes": self._writes,  # the transaction's object writes (a certificate import is one)
            "installs": self.fmg.counts.installs,
            "install_tasks": list(self._tasks),
            "install_preview": self._preview,
        }

    async def system_status(self) -> Any:
        status = await self.unit.system_status()
        version = getattr(status, "version", None)
        if version is not None:
            # FortiManager spells server-cert as the unit's FortiOS does (a string up to 6.4).
            self.cmdb = FortiManagerCmdb(
                self.fmg,
                device=self.route.device,
                package=self.route.package,
                vdom=self.route.vdom,
                server_cert_is_list=bool(version.server_cert_is_list),
            )
            self._version_known = True
        return status

    async def monitor_get(self, path: str, *, vdom: Any = _UNSET, params: Any = None) -> Any:
        return await self.unit.monitor_get(path, params=params, **_given(vdom))

    async def log_get(self, path: str, *, vdom: Any = _UNSET, params: Any = None) -> Any:
        return await self.unit.log_get(path, params=params, **_given(vdom))

    async def readiness(self) -> RouteReadiness:  # noqa: PLR0911 - one verdict per readiness fact, in the order FortiManager reports them
        """May FortiManager change the unit now? ``PlanError`` when it has no such device/vdom/package."""
        route = self.route
        refusal = await self._device_refusal()
        if refusal is not None:
            return RouteReadiness(route.describe(), refusal=refusal)
        if not self._workspace:
            return RouteReadiness(route.describe())
        with _as_fortios(write=False):
            holder = await self.fmg.lock_info()
        if holder is None:
            return RouteReadiness(route.describe())
        wait = self._spec.lock_wait
        if wait <= 0:
            return RouteReadiness(
                route.describe(),
                refusal=(
                    f"FortiManager ADOM {route.adom!r} is locked by {holder.user!r} (workspace mode); "
                    "nothing was changed; retry when the lock is released, or set the fortimanager "
                    "block's lock_wait to wait for it"
                ),
            )
        if not self._writing:
            note = f"ADOM {route.adom} is locked by {holder.user}: apply waits up to {wait:g} s for it"
            return RouteReadiness(route.describe(), notes=(note,))
        # Wait for it now, before the baseline probe: a lock that stays taken is a refusal, not a
        # failed first write (and the lock is then held until this device is done).
        try:
            await self._lock()
        except errors.WorkspaceLocked as exc:
            return RouteReadiness(route.describe(), refusal=str(exc))
        note = f"waited for {holder.user}'s lock on ADOM {route.adom}; holding it until this device is done"
        return RouteReadiness(route.describe(), notes=(note,))

    async def _device_refusal(self) -> str | None:
        """Why FortiManager must not change this unit now: its status, then where its package installs."""
        route = self.route
        with _as_fortios(write=False):
            found = await self.fmg.device(route.device)
        try:
            check_ready(found, device=route.device, vdom=route.vdom, package=route.package, adom=route.adom)
        except errors.Refused as exc:
            refusal = str(exc)
            if found is not None and found.db_status == "mod":
                refusal += await self._shared_package_hint()
            return refusal
        try:
            scope = await self.fmg.package_targets(route.package)
        except errors.FortiManagerError as exc:
            return str(scope_unreadable(route.package, route.device, str(exc)))
        try:
            check_scope(scope, device=route.device, vdom=route.vdom, package=route.package)
        except errors.Refused as exc:
            return str(exc)
        return None

    async def _shared_package_hint(self) -> str:
        """Pending changes on a unit whose package installs elsewhere too may be a change made for others."""
        route = self.route
        try:
            scope = await self.fmg.package_targets(route.package)
        except errors.FortiManagerError:
            return ""  # the refusal stands on its own
        others = sorted({target for target in scope if target != (route.device, route.vdom)})
        if not others:
            return ""
        return (
            f" (package {route.package} also installs to {describe_targets(others)}: the pending "
            "change may be one made there for them; fortiauto changes only a package that installs "
            f"to {route.device} alone, so give {route.device} its own policy package)"
        )

    async def plan_refusal(self, changes: Sequence[Change]) -> str | None:
        """Why this plan must not be written: it updates an ADOM object another package uses.

        Only a plan that updates an ADOM object asks FortiManager anything (the package list and
        each other package's policies, read once per run's session); a failed read refuses.
        """
        updated = updated_objects(changes)
        if not updated:
            return None
        try:
            shared = await self._other_users(updated)
        except errors.FortiManagerError as exc:
            return str(objects_unreadable(updated, self.route.adom, str(exc)))
        return str(shared_refusal(shared, device=self.route.device)) if shared else None

    async def _other_users(self, updated: Sequence[AdomObject]) -> dict[AdomObject, list[str]]:
        """Per updated object, the other packages whose policies use it (directly or by a profile group)."""
        packages = [p for p in await self.fmg.package_paths() if not own_package(p, self.route.package)]
        policies = {p: await self.fmg.package_references(p, POLICY_FIELDS) for p in packages}
        groups: dict[str, Mapping[str, Any]] = {}
        if needs_groups(updated, policies):
            groups = {str(g.get("name")): g for g in await self.fmg.profile_groups(GROUP_FIELDS)}
        return users(updated, policies, groups)

    # --- the CMDB seam ---------------------------------------------------------------------

    async def get(
        self, path: str, mkey: str | int | None = None, *, vdom: Any = _UNSET, params: Any = None
    ) -> list[dict[str, Any]]:
        if path not in _MANAGED:
            return await self.unit.get(path, mkey, params=params, **_given(vdom))
        await self._learn_version()
        with _as_fortios(write=False):
            return await self.cmdb.get(path, mkey)

    async def get_one(
        self, path: str, mkey: str | int, *, vdom: Any = _UNSET, params: Any = None
    ) -> dict[str, Any] | None:
        if path not in _MANAGED:
            return await self.unit.get_one(path, mkey, params=params, **_given(vdom))
        await self._learn_version()
        with _as_fortios(write=False):
            return await self.cmdb.get_one(path, mkey)

    async def create(
        self, path: str, body: Any, *, vdom: Any = None, params: Any = None, mkey: Any = None
    ) -> Any:
        key = mkey if mkey is not None else dict(body).get("name")
        return await self._write(path, key, dict(body), lambda: self.cmdb.create(path, body, mkey=mkey))

    async def update(
        self, path: str, mkey: str | int, body: Any, *, vdom: Any = None, params: Any = None
    ) -> Any:
        return await self._write(path, mkey, dict(body), lambda: self.cmdb.update(path, mkey, body))

    async def delete(self, path: str, mkey: str | int, *, vdom: Any = None) -> Any:
        return await self._write(path, mkey, None, lambda: self.cmdb.delete(path, mkey))

    async def monitor_post(self, path: str, body: Any, *, vdom: Any = None, params: Any = None) -> Any:
        if path.strip("/") != IMPORT_PATH:
            raise errors.PlanError(
                f"{self.route.device} is changed through FortiManager; fortiauto does not post "
                f"monitor/{path} to the unit"
            )
        certname = body.get("certname")
        return await self._write(CERT_PATH, certname, _PRESENT, lambda: self.cmdb.monitor_post(path, body))

    async def _write(self, path: str, mkey: Any, image: Any, send: Callable[[], Awaitable[T]]) -> T:
        """One object write through FortiManager; ``image`` is what the unit must hold after the install."""
        if path not in _MANAGED:
            raise errors.PlanError(
                f"{self.route.device} is changed through FortiManager; fortiauto does not write {path} "
                "on the unit"
            )
        await self._learn_version()
        await self._lock()
        self._forget_shared(path)
        try:
            with _as_fortios(write=True):
                answer = await send()
        except errors.ResponseLost:
            self._staged += 1  # it may have landed: the next install must carry its undo
            raise
        self._staged += 1
        self._writes += 1
        if mkey is not None:
            self._expected[(path, mkey)] = image
        return answer

    def _forget_shared(self, path: str) -> None:
        """What this write changes is read afresh by the next plan that asks (the run's cache)."""
        if path == POLICY_PATH:
            self.fmg.forget_package(self.route.package)
        elif path == GROUP_PATH:
            self.fmg.forget_profile_groups()

    # --- workspace and install -------------------------------------------------------------

    async def _lock(self) -> None:
        if self._workspace and not self._locked:
            with _as_fortios(write=True):
                await self.fmg.lock(wait=self._spec.lock_wait)
            self._locked = True

    async def install(self, why: str) -> None:
        """Commit, preview (``apply``), install the package to this device and follow the task.

        Nothing staged since the last install (an undo that found everything as before): no install.
        Raises ``InstallFailed`` (the unit may hold part of the package) or ``TaskTimeout``.
        """
        if not self._staged:
            return
        self._staged = 0
        route = self.route
        if self._locked:
            with _as_fortios(write=True):
                await self.fmg.commit()
        if why == "apply":
            self._preview = await self._install_preview()
        try:
            task = await self.fmg.install_package(
                route.package,
                device=route.device,
                vdom=route.vdom,
                comment=f"fortiauto: {why}",
                timeout=self._spec.install_timeout,
            )
        except (errors.InstallFailed, errors.TaskTimeout) as exc:
            self._tasks.append(exc.task_id)
            self._expected = {}  # the undo that follows says what the unit must hold next
            raise
        except errors.FortiManagerError as exc:
            raise fortios_kin(exc, write=True) from exc
        self._tasks.append(task.id)
        await self._verify_on_unit(task.id)

    async def _verify_on_unit(self, task_id: int) -> None:
        """Read every object this device's writes touched on the unit itself: the install is proven there."""
        expected, self._expected = self._expected, {}
        wrong: list[str] = []
        for (path, mkey), want in expected.items():
            try:
                current = await self.unit.get_one(path, mkey)
            except errors.FortiautoError as exc:
                wrong.append(f"{path}/{mkey}: unreadable ({exc})")
                continue
            if not _holds(current, want):
                wrong.append(f"{path}/{mkey}: {'still there' if want is None else 'not as installed'}")
        if wrong:
            raise errors.ReadBackMismatch(
                f"install task {task_id} ended done, but the unit {self.route.device} does not hold "
                f"what FortiManager installed: {'; '.join(wrong)}"
            )

    async def _install_preview(self) -> str:
        """The CLI the install will send to the unit; a failed preview is noted, the install goes on."""
        route = self.route
        try:
            text = await self.fmg.install_preview(
                route.package, device=route.device, vdom=route.vdom, timeout=self._spec.install_timeout
            )
        except errors.FortiManagerError as exc:
            return f"(install preview not available: {exc})"
        return redacted_preview(text)

    async def close(self) -> None:
        """Release the ADOM lock when this device took it (uncommitted edits are discarded)."""
        if not self._locked:
            return
        self._locked = False
        try:
            await self.fmg.unlock()
        except errors.FortiManagerError as exc:
            logger.warning("%s: unlock of ADOM %s failed (%s)", self.route.device, self.route.adom, exc)

    # --- helpers ---------------------------------------------------------------------------

    async def _learn_version(self) -> None:
        # ``fortiauto rollback`` reads and writes without asking the status first.
        if not self._version_known:
            await self.system_status()


def redacted_preview(text: str) -> str:
    """The preview CLI without secrets: a key block, and any ``set <secret attribute>`` value, masked.

    FortiManager masks or encrypts them itself ("ENC ..."); even an encrypted key does not belong
    in a report, and a build that echoes one in clear must not leak it.
    """
    text = _PRIVATE_KEY_BLOCK.sub(_MASK, text)
    return _SECRET_SET.sub(lambda m: f"{m.group(1)}{_MASK}", text)


def _holds(current: dict[str, Any] | None, want: Any) -> bool:
    """Does the unit's object match what was written (absent for a delete, present for an import)?"""
    if want is None:
        return current is None
    if want is _PRESENT:
        return current is not None
    return current is not None and canonical(project(current, want)) == canonical(want)


def _given(vdom: Any) -> dict[str, Any]:
    return {} if vdom is _UNSET else {"vdom": vdom}


def _turn_for(lock: asyncio.Lock, *, take: bool) -> AbstractAsyncContextManager[Any]:
    return lock if take else contextlib.nullcontext()


@asynccontextmanager
async def _machine_turn(spec: FortiManagerSpec, device: Device, *, take: bool) -> AsyncIterator[None]:
    """This device's turn in the ADOM among every process of the machine (waited for, then held)."""
    if not take:
        yield
        return
    lock = fortimanager_lock(spec.url, spec.adom)
    holder = lock.holder()
    if holder is not None:
        logger.info(
            "%s: waiting for the turn of %s in FortiManager ADOM %s",
            device.name,
            holder.get("device") or "another run",
            spec.adom,
        )
    await lock.wait_acquire(f"turn-{device.name}", device=device.name)
    try:
        yield
    finally:
        lock.release()


class SiteConnections:
    """A run's client factory: a direct device's REST client, or the FortiManager path for a routed one.

    Use it as ``async with connect_for(site) as factory:``; the FortiManager session opens at the
    first routed device (one login for the run) and ends with the block. With ``writing``,
    routed devices take turns from connecting to their end: FortiManager's ADOM objects (and
    the ADOM lock) are shared, so a device reads FortiManager only once the previous one's change
    is installed and committed, or undone and re-installed. The turn is machine-wide (a lock
    file per FortiManager ADOM, waited for): each Ansible fork runs its own factory.
    """

    def __init__(self, site: Site, *, writing: bool = True, direct: DirectFactory | None = None) -> None:
        self.site = site
        self.writing = writing
        self._direct: DirectFactory = direct or client_for
        self._opening = asyncio.Lock()
        self._turn = asyncio.Lock()
        self._fmg: FortiManagerClient | None = None
        self._workspace = False
        self._failure: errors.FortiautoError | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        fmg, self._fmg = self._fmg, None
        if fmg is not None:
            await fmg.close()

    def __call__(self, device: Device) -> AbstractAsyncContextManager[DeviceApi]:
        if device.fortimanager is None:
            return self._direct(device)
        return self._routed(device)

    @asynccontextmanager
    async def _routed(self, device: Device) -> AsyncIterator[DeviceApi]:
        spec = self.site.fortimanager
        if spec is None:  # the site loader refuses this; a hand-built site may not
            raise errors.InputError(f"{device.name} has a fortimanager: entry but the site has no block")
        async with _turn_for(self._turn, take=self.writing), _machine_turn(spec, device, take=self.writing):
            fmg = await self._session(spec)
            async with self._direct(device) as unit:
                api = FortiManagerDeviceApi(
                    fmg.view(f"fortimanager for {device.name}"),
                    unit,
                    route=route_for(device, spec),
                    spec=spec,
                    workspace=self._workspace,
                    writing=self.writing,
                )
                try:
                    yield api
                finally:
                    await api.close()

    async def _session(self, spec: FortiManagerSpec) -> FortiManagerClient:
        """The run's one FortiManager session (opened once; a failure is every routed device's)."""
        async with self._opening:
            if self._failure is not None:
                raise self._failure
            if self._fmg is None:
                client = client_for_fortimanager(spec)
                try:
                    await client.open()
                    workspace = workspace_setting(spec)
                    if workspace is None:
                        workspace = await client.workspace_enabled()
                except errors.FortiManagerError as exc:
                    await client.close()
                    self._failure = fortios_kin(exc, write=False)
                    raise self._failure from exc
                self._fmg, self._workspace = client, workspace
            return self._fmg
