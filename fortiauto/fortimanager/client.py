"""The async FortiManager JSON-RPC client: the only code in fortiauto that talks to FortiManager.

The FortiManager transaction reads ADOM objects, the policy in its package, the device DB's
certificates and the managed devices through it, writes them inside an ADOM workspace lock,
and installs the package to one device, following the task to its end. Every call is one
``POST /jsonrpc`` on one httpx session (``rpc.py`` builds and parses the envelope,
``errormap.py`` maps every failure). Authentication is a session (``exec sys/login/user``,
logged out on close) or an API key sent as ``Authorization: Bearer`` (FortiManager 7.2.2+;
never in the URL: 7.4.7/7.6.2 refuse that). Paths, with their sources:

* ADOM objects ``/pm/config/adom/<adom>/obj/<path>[/<name>]``, a name's ``/`` escaped as ``\\/``
  (FortiManager JSON API docs, "Objects Management");
* the policy ``/pm/config/adom/<adom>/pkg/<pkg>/firewall/policy/<id>`` ("Policy Package Management");
* a local certificate with its key lives in the device DB,
  ``/pm/config/device/<dev>/vdom/<vdom>/vpn/certificate/local`` (fields ``certificate``,
  ``private-key``, ``password``), and ADOM objects reach it through a Dynamic Local Certificate
  ``/pm/config/adom/<adom>/obj/dynamic/certificate/local/<name>`` whose ``dynamic_mapping``
  maps ``_scope`` ``{name, vdom}`` to ``local-cert`` ("Device Management": "How to import a
  certificate?"; "Provisioning Template Management": Certificate Templates). The ADOM's
  certificate template (``obj/certificate/template``) only has FortiManager or SCEP sign a CSR,
  so it cannot carry a key we bring;
* workspace ``/dvmdb/adom/<adom>/workspace/{lock,commit,unlock,lockinfo}`` ("ADOM Management");
* install ``/securityconsole/install/package`` (``flags: ["preview"]`` for the preview, then
  ``/securityconsole/install/preview``, ``/securityconsole/preview/result`` and
  ``/securityconsole/package/cancel/install``), tasks ``/task/task/<id>``;
* the package's installation targets, ``scope member`` of ``/pm/pkg/adom/<adom>/<pkg>``
  ("Policy Package Management"); the ADOM's packages and folders (``subobj``), ``/pm/pkg/adom/<adom>``;
* ``/dvmdb/adom/<adom>/revision``, ``/dvmdb/adom/<adom>/device`` with ``option: ["extra info",
  "assignment info"]`` ("Device Management": Device status), ``/cli/global/system/global``
  ``workspace-mode`` (pyfmg's ``FMGLockContext.check_mode``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from fortiauto import errors
from fortiauto.fortimanager.errormap import RequestContext, mapped_errors, raise_for_answer, raise_for_http
from fortiauto.fortimanager.models import LockInfo, ManagedDevice, Revision, Task
from fortiauto.fortimanager.rpc import READ_METHODS, Answer, parse_answer, request_body

__all__ = ["FortiManagerClient", "RequestCounts"]

logger = logging.getLogger("fortiauto.fortimanager")

# The one seam tests replace to follow a task without waiting for it.
_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

_ENDPOINT: Final = "/jsonrpc"
_LOGIN_URL: Final = "/sys/login/user"
_LOGOUT_URL: Final = "/sys/logout"
# Request fields whose values are secret wherever they appear (certificate import, login).
_SECRET_FIELDS: Final = frozenset({"passwd", "password", "private-key", "scep-password", "adm_pass"})
_WORKSPACE_OFF: Final = frozenset({"disabled", "0", ""})


@dataclass
class RequestCounts:
    """JSON-RPC calls that reached (or may have reached) FortiManager; login and logout excluded."""

    total: int = 0
    writes: int = 0
    installs: int = 0

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "writes": self.writes, "installs": self.installs}


def _secret_values(value: Any) -> tuple[str, ...]:
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() in _SECRET_FIELDS:
                items = item if isinstance(item, list) else [item]
                found.extend(str(v) for v in items if isinstance(v, str) and v)
            else:
                found.extend(_secret_values(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(_secret_values(item))
    return tuple(found)


def _escape(name: str | int) -> str:
    # FortiManager takes a "/" inside an object name as "\/" in the url (JSON API docs, Objects).
    return str(name).replace("/", "\\/")


def _verify(verify: bool | str | Path | ssl.SSLContext) -> bool | ssl.SSLContext:
    """``True``/``False``, or a CA bundle path made into a context (httpx 0.28 deprecates paths)."""
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    try:
        return ssl.create_default_context(cafile=str(verify))
    except (OSError, ssl.SSLError) as exc:
        raise errors.InputError(f"cannot load the CA bundle {verify}: {exc.strerror or exc}") from None


class FortiManagerClient:
    """Async client for one FortiManager and one ADOM, authenticated by session login or API key.

    Use it as ``async with FortiManagerClient(url, token=...) as fmg:``; entering logs in
    (session mode), leaving logs out and closes the connection. Nothing here retries a write.
    """

    def __init__(
        self,
        url: str,
        *,
        adom: str = "root",
        token: str | SecretStr | None = None,
        username: str | None = None,
        password: str | SecretStr | None = None,
        verify: bool | str | Path | ssl.SSLContext = True,
        timeout: float = 30.0,
        poll_interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "fortimanager",
        allow_insecure_http: bool = False,
    ) -> None:
        self._token = SecretStr(token) if isinstance(token, str) else token
        self._password = SecretStr(password) if isinstance(password, str) else password
        self._username = username
        if self._token is not None and (username is not None or password is not None):
            raise errors.InputError("give FortiManager either an API key or username/password, not both")
        if self._token is None and (username is None or self._password is None):
            raise errors.InputError("FortiManager needs an API key, or both username and password")
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise errors.InputError("the FortiManager URL must look like https://fmg.example.net[:port]")
        if parts.scheme == "http" and not allow_insecure_http:
            raise errors.InputError(
                "the FortiManager URL is plain http: credentials would cross in clear text"
            )
        if timeout <= 0 or poll_interval < 0:
            raise errors.InputError("timeout must be > 0 and poll_interval >= 0")
        self._base = f"{parts.scheme}://{parts.netloc}"
        self.adom = adom
        self._name = name
        self._verify = _verify(verify)
        self._timeout = timeout
        self._poll = poll_interval
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._session: str | None = None
        self._closed = False
        self._owner = True  # False for a view: the session and connection belong to another client
        self._request_id = 0
        self.counts = RequestCounts()
        self._workspace_guard = asyncio.Lock()
        self._workspace_holders = 0
        # Installation targets per package, read once per session and shared by its views.
        self._scopes: dict[str, tuple[tuple[str, str], ...]] = {}
        self._scope_guard = asyncio.Lock()
        # The package list, policies' profile references and profile groups: read once per
        # session (shared by its views, as the dict itself is) until a write here forgets one.
        self._shared_reads: dict[str, tuple[Any, ...]] = {}
        self._shared_guard = asyncio.Lock()
        self._secrets = tuple(s.get_secret_value() for s in (self._token, self._password) if s is not None)

    def __repr__(self) -> str:
        mode = "token" if self._token is not None else "session"
        return f"FortiManagerClient(name={self._name!r}, url={self._base!r}, adom={self.adom!r}, auth={mode})"

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the session and, with username/password, log in now (bad credentials fail early)."""
        self._client()
        if self._token is None and self._session is None:
            try:
                await self._login()
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        """Log out (session mode) and close the connection; safe to call twice; a view only stops."""
        if self._closed:
            return
        if not self._owner:
            self._closed = True
            return
        self._closed = True
        http, self._http = self._http, None
        if http is None:
            return
        try:
            if self._session is not None:
                await self._logout(http)
        finally:
            await http.aclose()

    def view(self, name: str) -> FortiManagerClient:
        """This open session under another name, with its own counts (one device's share of a run's session).

        Closing the view neither logs out nor closes the connection: both stay with this client.
        """
        if self._http is None or self._closed:
            raise RuntimeError("open the FortiManagerClient before taking a view of it")
        shared = copy.copy(self)
        shared._name = name
        shared._owner = False
        shared.counts = RequestCounts()
        return shared

    # --- JSON-RPC -------------------------------------------------------------------------

    async def get(
        self,
        url: str,
        *,
        fields: Sequence[str] | None = None,
        filter: Sequence[Any] | None = None,
        option: Sequence[str] | None = None,
    ) -> Any:
        """``get`` one url; its ``data`` (an object or a list)."""
        options: dict[str, Any] = {}
        if fields:
            options["fields"] = list(fields)
        if filter:
            options["filter"] = list(filter)
        if option:
            options["option"] = list(option)
        return (await self.call("get", url, options=options)).data

    async def get_one(self, url: str) -> dict[str, Any] | None:
        """One object, or ``None`` when FortiManager says it does not exist."""
        try:
            data = await self.get(url)
        except errors.FortiManagerNotFound:
            return None
        if isinstance(data, list):
            data = data[0] if data else None
        return dict(data) if isinstance(data, Mapping) else None

    async def call(
        self, method: str, url: str, *, data: Any = None, options: Mapping[str, Any] | None = None
    ) -> Answer:
        """One JSON-RPC call; raises the mapped error for any non-zero status code."""
        write = method not in READ_METHODS
        ctx = RequestContext(
            method=method,
            url=url,
            fortimanager=self._name,
            write=write,
            secrets=self._secrets + _secret_values(data) + ((self._session,) if self._session else ()),
        )
        body = request_body(
            method, url, request_id=self._next_id(), session=self._session, data=data, options=options
        )
        answer = await self._send(body, ctx)
        self.counts.total += 1
        self.counts.writes += int(write)
        return raise_for_answer(ctx, answer)

    # --- facts ----------------------------------------------------------------------------

    async def workspace_enabled(self) -> bool:
        """True when FortiManager runs in workspace (or workflow) mode: writes need the ADOM lock."""
        data = await self.get("/cli/global/system/global", fields=["workspace-mode"])
        mode = data.get("workspace-mode") if isinstance(data, Mapping) else None
        return str(mode if mode is not None else "").lower() not in _WORKSPACE_OFF

    async def devices(self) -> list[ManagedDevice]:
        """The ADOM's managed devices with model, version, HA, connection and sync status."""
        data = await self.get(f"/dvmdb/adom/{self.adom}/device", option=["extra info", "assignment info"])
        rows = data if isinstance(data, list) else []
        return [ManagedDevice.from_fmg(row) for row in rows if isinstance(row, Mapping)]

    async def device(self, name: str) -> ManagedDevice | None:
        """One managed device, or ``None`` when the ADOM has no device of that name."""
        try:
            data = await self.get(
                f"/dvmdb/adom/{self.adom}/device/{_escape(name)}", option=["extra info", "assignment info"]
            )
        except errors.FortiManagerNotFound:
            return None
        return ManagedDevice.from_fmg(data) if isinstance(data, Mapping) else None

    async def package_scope(self, package: str) -> list[tuple[str, str]]:
        """Where ``package`` installs: (device, vdom) (``scope member`` of ``/pm/pkg/adom/<adom>/<pkg>``)."""
        try:
            data = await self.get(f"/pm/pkg/adom/{self.adom}/{_escape(package)}")
        except errors.FortiManagerNotFound:
            return []
        members = data.get("scope member") if isinstance(data, Mapping) else None
        return [
            (str(m.get("name", "")), str(m.get("vdom", ""))) for m in members or [] if isinstance(m, Mapping)
        ]

    async def package_targets(self, package: str) -> tuple[tuple[str, str], ...]:
        """``package_scope`` read once per session (every view shares it); a failed read is not kept.

        A run's devices ask before their first write: one request per package, not per device.
        """
        async with self._scope_guard:
            if package not in self._scopes:
                self._scopes[package] = tuple(await self.package_scope(package))
            return self._scopes[package]

    async def package_paths(self) -> tuple[str, ...]:
        """Every policy package of the ADOM by path (``folder/pkg`` inside a folder), read once per session.

        ``get /pm/pkg/adom/<adom>`` lists packages (``type: pkg``) and folders (``type: folder``,
        their contents in ``subobj``) (FortiManager JSON API docs, "Policy Package Management":
        "How to get the list of Policy Package?", "How to create a folder hierarchy";
        how-to-fortimanager-api.readthedocs.io).
        """
        return await self._read_once("packages", self._package_paths)

    async def _package_paths(self) -> tuple[str, ...]:
        data = await self.get(f"/pm/pkg/adom/{self.adom}")  # no fields: a folder's subobj must come too
        return tuple(_flatten_packages(data if isinstance(data, list) else [], ""))

    async def package_references(self, package: str, fields: Sequence[str]) -> tuple[dict[str, Any], ...]:
        """``fields`` of every policy of ``package``, read once per session until ``forget_package``.

        ``get /pm/config/adom/<adom>/pkg/<pkg>/firewall/policy`` with ``fields`` ("Policy
        Package Management"); a package in a folder is addressed by its path.
        """

        async def read() -> tuple[dict[str, Any], ...]:
            data = await self.get(self.policy_url(package), fields=fields)
            return tuple(dict(d) for d in data or [] if isinstance(d, Mapping))

        return await self._read_once(f"policies:{package}", read)

    async def profile_groups(self, fields: Sequence[str]) -> tuple[dict[str, Any], ...]:
        """``fields`` of the ADOM's profile groups (``obj/firewall/profile-group``), read once per session."""

        async def read() -> tuple[dict[str, Any], ...]:
            data = await self.get(self.object_url("firewall/profile-group"), fields=fields)
            return tuple(dict(d) for d in data or [] if isinstance(d, Mapping))

        return await self._read_once("profile-groups", read)

    def forget_package(self, package: str) -> None:
        """A policy of ``package`` was written in this session: its next read asks FortiManager again."""
        self._shared_reads.pop(f"policies:{package}", None)

    def forget_profile_groups(self) -> None:
        """A profile group was written in this session: the next read asks FortiManager again."""
        self._shared_reads.pop("profile-groups", None)

    async def _read_once(self, key: str, read: Callable[[], Awaitable[tuple[Any, ...]]]) -> tuple[Any, ...]:
        """``read()`` once per session under ``key``; a failed read is not kept."""
        async with self._shared_guard:
            if key not in self._shared_reads:
                self._shared_reads[key] = await read()
            return self._shared_reads[key]

    async def revisions(self) -> list[Revision]:
        """The ADOM revisions, oldest first."""
        data = await self.get(f"/dvmdb/adom/{self.adom}/revision")
        rows = data if isinstance(data, list) else []
        return sorted((Revision.from_fmg(r) for r in rows if isinstance(r, Mapping)), key=lambda r: r.version)

    # --- ADOM objects and the policy package ------------------------------------------

    def object_url(self, path: str, name: str | int | None = None) -> str:
        """``/pm/config/adom/<adom>/obj/<path>[/<name>]``, e.g. path ``firewall/ssl-ssh-profile``."""
        url = f"/pm/config/adom/{self.adom}/obj/{path.strip('/')}"
        return url if name is None else f"{url}/{_escape(name)}"

    def policy_url(self, package: str, policyid: int | None = None) -> str:
        """``/pm/config/adom/<adom>/pkg/<pkg>/firewall/policy[/<id>]``."""
        url = f"/pm/config/adom/{self.adom}/pkg/{package.strip('/')}/firewall/policy"
        return url if policyid is None else f"{url}/{int(policyid)}"

    async def get_object(self, path: str, name: str) -> dict[str, Any] | None:
        """One ADOM object, or ``None`` when it does not exist (the pre-image of a create)."""
        return await self.get_one(self.object_url(path, name))

    async def list_objects(self, path: str, *, filter: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        data = await self.get(self.object_url(path), filter=filter)
        return [dict(d) for d in data or [] if isinstance(d, Mapping)]

    async def add_object(self, path: str, body: Mapping[str, Any]) -> Answer:
        """Create an ADOM object (``add`` fails with -2 when the name exists)."""
        return await self.call("add", self.object_url(path), data=dict(body))

    async def update_object(self, path: str, name: str, body: Mapping[str, Any]) -> Answer:
        """Merge ``body`` into an existing ADOM object."""
        return await self.call("update", self.object_url(path, name), data=dict(body))

    async def set_object(self, path: str, name: str, body: Mapping[str, Any]) -> Answer:
        """Replace an ADOM object whole (create it when missing): how an undo restores a pre-image."""
        return await self.call("set", self.object_url(path, name), data=dict(body))

    async def delete_object(self, path: str, name: str) -> Answer:
        return await self.call("delete", self.object_url(path, name))

    async def get_policy(self, package: str, policyid: int) -> dict[str, Any] | None:
        return await self.get_one(self.policy_url(package, policyid))

    async def list_policies(self, package: str) -> list[dict[str, Any]]:
        data = await self.get(self.policy_url(package))
        return [dict(d) for d in data or [] if isinstance(d, Mapping)]

    async def update_policy(self, package: str, policyid: int, body: Mapping[str, Any]) -> Answer:
        return await self.call("update", self.policy_url(package, policyid), data=dict(body))

    async def set_policy(self, package: str, policyid: int, body: Mapping[str, Any]) -> Answer:
        return await self.call("set", self.policy_url(package, policyid), data=dict(body))

    # --- certificates: device DB + Dynamic Local Certificate --------------------------

    def device_certificate_url(self, device: str, vdom: str, name: str | None = None) -> str:
        url = f"/pm/config/device/{_escape(device)}/vdom/{vdom}/vpn/certificate/local"
        return url if name is None else f"{url}/{_escape(name)}"

    async def get_device_certificate(self, device: str, vdom: str, name: str) -> dict[str, Any] | None:
        return await self.get_one(self.device_certificate_url(device, vdom, name))

    async def add_device_certificate(
        self,
        device: str,
        vdom: str,
        *,
        name: str,
        cert_pem: str,
        key_pem: str | SecretStr,
        passphrase: str | SecretStr | None = None,
        comments: str = "",
    ) -> Answer:
        """Import a certificate and its key into the device's DB (installed with the next install)."""
        key = key_pem.get_secret_value() if isinstance(key_pem, SecretStr) else key_pem
        body: dict[str, Any] = {"name": name, "certificate": cert_pem, "private-key": key}
        if passphrase is not None:
            body["password"] = (
                passphrase.get_secret_value() if isinstance(passphrase, SecretStr) else passphrase
            )
        if comments:
            body["comments"] = comments
        return await self.call("add", self.device_certificate_url(device, vdom), data=body)

    async def delete_device_certificate(self, device: str, vdom: str, name: str) -> Answer:
        return await self.call("delete", self.device_certificate_url(device, vdom, name))

    async def get_dynamic_certificate(self, name: str) -> dict[str, Any] | None:
        return await self.get_object("dynamic/certificate/local", name)

    async def map_dynamic_certificate(self, name: str, *, device: str, vdom: str, local_cert: str) -> Answer:
        """Create or extend Dynamic Local Certificate ``name``: ``device``/``vdom`` uses ``local_cert``."""
        mapping = {"_scope": [{"name": device, "vdom": vdom}], "local-cert": local_cert}
        if await self.get_dynamic_certificate(name) is None:
            return await self.add_object(
                "dynamic/certificate/local", {"name": name, "dynamic_mapping": [mapping]}
            )
        url = f"{self.object_url('dynamic/certificate/local', name)}/dynamic_mapping"
        return await self.call("add", url, data=[mapping])

    async def delete_dynamic_certificate(self, name: str) -> Answer:
        return await self.delete_object("dynamic/certificate/local", name)

    async def unmap_dynamic_certificate(self, name: str, *, device: str, vdom: str) -> Answer:
        """Drop one device's mapping, keeping the others ("How to unassign a Certificate Template")."""
        url = f"{self.object_url('dynamic/certificate/local', name)}/dynamic_mapping/{_escape(device)}/{vdom}"
        return await self.call("delete", url)

    # --- workspace ------------------------------------------------------------------------

    async def lock_info(self) -> LockInfo | None:
        """Who holds the ADOM lock, or ``None`` when nobody does."""
        data = await self.get(f"/dvmdb/adom/{self.adom}/workspace/lockinfo")
        rows = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
        locks = [LockInfo.from_fmg(r) for r in rows if isinstance(r, Mapping) and r.get("lock_user")]
        return locks[0] if locks else None

    async def lock(self, *, wait: float = 0.0) -> None:
        """Lock the ADOM workspace; ``WorkspaceLocked`` (exit 5) when another admin holds it.

        ``wait`` seconds: keep trying (every ``poll_interval``, at least 1 s) while another
        admin holds the lock; 0 refuses at once.
        """
        deadline = time.monotonic() + wait
        while True:
            try:
                await self.call("exec", f"/dvmdb/adom/{self.adom}/workspace/lock")
                return
            except errors.FortiManagerAPIError as exc:
                holder = await self._lock_holder()
                if holder is None:
                    raise
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait:g} s" if wait else ""
                    raise errors.WorkspaceLocked(
                        f"ADOM {self.adom!r} is locked by {holder.user!r}{waited}; nothing was changed",
                        holder=holder.user,
                        method=exc.method,
                        url=exc.url,
                        fortimanager=self._name,
                    ) from exc
            await _sleep(max(self._poll, 1.0))

    async def commit(self) -> None:
        """Save the workspace changes (what an install then sends)."""
        await self.call("exec", f"/dvmdb/adom/{self.adom}/workspace/commit")

    async def unlock(self) -> None:
        """Release the ADOM lock; uncommitted changes are discarded."""
        await self.call("exec", f"/dvmdb/adom/{self.adom}/workspace/unlock")

    @asynccontextmanager
    async def workspace(self, *, enabled: bool | None = None, wait: float = 0.0) -> AsyncIterator[None]:
        """Hold the ADOM lock for the block (when workspace mode is on); always unlock after.

        ``enabled=None`` asks FortiManager whether workspace mode is on (the site's
        ``workspace: auto``). The block commits with ``commit()`` itself: leaving it unlocks,
        which discards anything not committed. ``wait`` is passed to ``lock``. Blocks that
        overlap on one client (devices of one ADOM in flight together) share one lock, taken by
        the first and released by the last, so one device's unlock never pulls the lock from
        under another's writes.
        """
        if enabled is None:
            enabled = await self.workspace_enabled()
        if not enabled:
            yield
            return
        async with self._workspace_guard:
            if self._workspace_holders == 0:
                await self.lock(wait=wait)
            self._workspace_holders += 1
        try:
            yield
        finally:
            async with self._workspace_guard:
                self._workspace_holders -= 1
                if self._workspace_holders == 0:
                    await self._unlock_quietly()

    async def _unlock_quietly(self) -> None:
        try:
            await self.unlock()
        except errors.FortiManagerError as err:
            logger.warning("%s: unlock of ADOM %s failed (%s)", self._name, self.adom, type(err).__name__)

    # --- install --------------------------------------------------------------------------

    async def install_package(
        self,
        package: str,
        *,
        device: str,
        vdom: str,
        comment: str = "",
        timeout: float = 300.0,
    ) -> Task:
        """Install ``package`` to one device and follow the task to its end.

        Raises:
            InstallFailed: the task ended with errors (the device may hold part of the package).
            TaskTimeout: the task did not end within ``timeout`` seconds.
        """
        data: dict[str, Any] = {
            "adom": self.adom,
            "pkg": package,
            "scope": [{"name": device, "vdom": vdom}],
            "flags": ["none"],
        }
        if comment:
            data["dev_rev_comments"] = comment
        answer = await self.call("exec", "/securityconsole/install/package", data=data)
        self.counts.installs += 1
        task = await self.wait_task(_task_id(answer), timeout=timeout)
        if not task.succeeded:
            raise errors.InstallFailed(
                f"install of {package!r} to {device}/{vdom} ended {task.state} "
                f"with {task.num_err} error(s): {'; '.join(task.lines) or 'no detail'}",
                task_id=task.id,
                lines=task.lines,
                method="exec",
                url="/securityconsole/install/package",
                fortimanager=self._name,
            )
        return task

    async def install_preview(self, package: str, *, device: str, vdom: str, timeout: float = 300.0) -> str:
        """The CLI an install of ``package`` would send to the device (nothing is installed).

        The four steps of the docs' "How to trigger an install preview": install with the
        ``preview`` flag, generate the device preview, read it, cancel the install.
        """
        scope = [{"name": device, "vdom": vdom}]
        answer = await self.call(
            "exec",
            "/securityconsole/install/package",
            data={"adom": self.adom, "pkg": package, "scope": scope, "flags": ["preview"]},
        )
        try:
            await self._wait_ok(_task_id(answer), timeout)
            answer = await self.call(
                "exec",
                "/securityconsole/install/preview",
                data={"adom": self.adom, "device": device, "flags": ["none"], "vdoms": [vdom]},
            )
            await self._wait_ok(_task_id(answer), timeout)
            result = await self.call(
                "exec", "/securityconsole/preview/result", data={"adom": self.adom, "scope": scope}
            )
        finally:
            await self.call("exec", "/securityconsole/package/cancel/install", data={"adom": self.adom})
        return _preview_text(result.data, device)

    async def wait_task(self, task_id: int, *, timeout: float = 300.0) -> Task:
        """Poll ``/task/task/<id>`` until the task ends; ``TaskTimeout`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            data = await self.get(f"/task/task/{task_id}")
            task = Task.from_fmg(data if isinstance(data, Mapping) else {}, task_id)
            if task.ended:
                return task
            if time.monotonic() >= deadline:
                raise errors.TaskTimeout(
                    f"task {task_id} did not end within {timeout:g} s (at {task.percent}%, {task.state})",
                    task_id=task_id,
                    percent=task.percent,
                    method="get",
                    url=f"/task/task/{task_id}",
                    fortimanager=self._name,
                )
            await _sleep(self._poll)

    async def _wait_ok(self, task_id: int, timeout: float) -> None:
        task = await self.wait_task(task_id, timeout=timeout)
        if not task.succeeded:
            raise errors.InstallFailed(
                f"preview task {task_id} ended {task.state}: {'; '.join(task.lines) or 'no detail'}",
                task_id=task_id,
                lines=task.lines,
                fortimanager=self._name,
            )

    # --- the exchange ---------------------------------------------------------------------

    async def _send(
        self, body: dict[str, Any], ctx: RequestContext, http: httpx.AsyncClient | None = None
    ) -> Answer:
        """One POST and its DEBUG line (method, url, status code, ms; never headers or bodies)."""
        http = http or self._client()
        started = time.perf_counter()
        outcome = "?"
        try:
            with mapped_errors(ctx):
                response = await http.post(_ENDPOINT, content=json.dumps(body).encode())
                raise_for_http(ctx, response)
                answer = parse_answer(response.json())
            outcome = str(answer.code)
            return answer
        except errors.FortiManagerError as err:
            outcome = type(err).__name__
            raise
        finally:
            logger.debug(
                "%s: %s %s -> %s (%.0f ms)",
                self._name,
                ctx.method,
                ctx.url,
                outcome,
                (time.perf_counter() - started) * 1000,
            )

    async def _login(self) -> None:
        assert self._username is not None
        assert self._password is not None
        ctx = RequestContext(
            method="exec",
            url=_LOGIN_URL,
            fortimanager=self._name,
            write=True,
            login=True,
            secrets=self._secrets,
        )
        data = {"user": self._username, "passwd": self._password.get_secret_value()}
        body = request_body("exec", _LOGIN_URL, request_id=self._next_id(), session=None, data=data)
        answer = raise_for_answer(ctx, await self._send(body, ctx))
        if answer.session is None:
            raise errors.FortiManagerAuthError("FortiManager: login gave no session", **ctx.where())
        self._session = answer.session

    async def _logout(self, http: httpx.AsyncClient) -> None:
        session, self._session = self._session, None
        ctx = RequestContext(method="exec", url=_LOGOUT_URL, fortimanager=self._name, write=True)
        body = request_body("exec", _LOGOUT_URL, request_id=self._next_id(), session=session)
        try:
            raise_for_answer(ctx, await self._send(body, ctx, http))
        except errors.FortiManagerError as err:
            # Nothing to undo: an orphaned session idles out on FortiManager.
            logger.warning("%s: logout failed (%s); the session will expire", self._name, type(err).__name__)

    async def _lock_holder(self) -> LockInfo | None:
        try:
            return await self.lock_info()
        except errors.FortiManagerError:
            return None

    def _next_id(self) -> int:
        self._request_id += 1
        return self._request_id

    def _client(self) -> httpx.AsyncClient:
        if self._closed:
            raise RuntimeError("FortiManagerClient is closed")
        if self._http is None:
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if self._token is not None:
                headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
            self._http = httpx.AsyncClient(
                base_url=self._base,
                headers=headers,
                verify=self._verify,
                timeout=httpx.Timeout(self._timeout),
                transport=self._transport,
                follow_redirects=False,
                trust_env=False,
            )
        return self._http


def _flatten_packages(rows: Sequence[Any], parent: str) -> list[str]:
    """Package paths from ``/pm/pkg/adom/<adom>``: a folder's packages under ``folder/``."""
    out: list[str] = []
    for row in rows:
        if not isinstance(row, Mapping) or not row.get("name"):
            continue
        path = f"{parent}{row['name']}"
        if row.get("type") == "folder":
            sub = row.get("subobj")
            out.extend(_flatten_packages(sub if isinstance(sub, list) else [], f"{path}/"))
        else:
            out.append(path)
    return out


def _task_id(answer: Answer) -> int:
    data = answer.data if isinstance(answer.data, Mapping) else {}
    # Install and preview answer {"task": N}; some calls answer {"taskid": N} (docs, hitcount).
    task = data.get("task", data.get("taskid", answer.raw.get("taskid")))
    if isinstance(task, bool) or not isinstance(task, int | str) or not str(task).isdigit():
        raise errors.FortiManagerAPIError(
            f"FortiManager: {answer.url} answered without a task id", url=answer.url
        )
    return int(task)


def _preview_text(data: Any, device: str) -> str:
    """The preview CLI of ``device`` from ``preview/result``: ``message`` holds a JSON list of results."""
    message = data.get("message") if isinstance(data, Mapping) else None
    entries: Any = message
    if isinstance(message, str):
        try:
            entries = json.loads(message)
        except ValueError:
            return message
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("name") == device:
            return str(entry.get("result", ""))
    return ""
