"""The programmatic API: one device's transaction as plain data in and out, for orchestrators.

The Ansible collection (``fortiauto.fortigate.smtp_inspection``) is the first caller;
AWX job templates or Nornir tasks would call the same three functions. Module-style arguments
(or a site file plus a device name) become a validated ``Device`` through the same loader as
``site.yml`` (``resolve_device``); ``run_device_once`` runs ``transaction.DeviceTransaction``
for it (no fleet rollout: the orchestrator schedules hosts) under the same device lock as the
CLI, and ``undo_device_run`` undoes one device's writes of a run from the journal with the
same undo. Results are the per-device JSON of docs/design.md plus what an orchestrator shows:
run id, per-task summary, every probe stage, and before/after per object for a diff view.
Nothing returned holds a secret. A run that writes nothing leaves no journal file behind: the
file is opened at the first write's ``pre`` line.

A site file's device with a ``fortimanager:`` route is run and undone as ``fortiauto apply`` and
``fortiauto rollback`` do it: through FortiManager (``fortimanager.connect.connect_for``: ADOM
and package objects written there, then installed to the unit, whose REST API is only read).
The journal's run header names the route, and an undo goes back the way the run went or is
refused. Argument-mode devices have no route (no FortiManager arguments): their REST client.

Credentials the orchestrator's way: argument-mode devices without ``token``, ``token_file`` or
``username`` take them from the environment (``FORTIAUTO_TOKEN_<DEVICE>``, a ``<DEVICE>=token``
line of the file ``FORTIAUTO_TOKENS_FILE``, ``FORTIAUTO_USERNAME_<DEVICE>`` +
``FORTIAUTO_PASSWORD_<DEVICE>``, then the same without the device suffix; ``<DEVICE>`` is the
name upper-cased with every other character as ``_``), which is how an AWX credential type
injects them (``awx/credential-type.yml``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fortiauto.errors import InputError, LockHeld, SiteInvalid
from fortiauto.events import Events, NullReporter
from fortiauto.fleet import check_window, device_lock, new_run_id, rollback_device, site_lock
from fortiauto.fleet.run import device_header
from fortiauto.journal import ENV_VAR, Journal, journal_dir, pending_undos, read_journal, unfinished_runs
from fortiauto.results import Change, DeviceResult, ProbeResult
from fortiauto.site import Device, Site
from fortiauto.site.loader import load_site, load_site_data
from fortiauto.tasks import ORDER
from fortiauto.transaction import ClientFactory, DeviceTransaction, Ending, TransactionOptions, conclude

__all__ = ["DeviceSource", "check_run_id", "env_key", "resolve_device", "run_device_once", "undo_device_run"]

# Arguments that describe a device directly; a site file replaces all of them.
DEVICE_ARGS = (
    "url",
    "token",
    "token_file",
    "username",
    "password",
    "vdom",
    "verify_tls",
    "timeout",
    "allow_insecure_http",
    "allow_fortimanager_managed",
    "allow_newer_fortios",
    "mail_servers",
)
_PLAIN_KEYS = (
    "url",
    "username",
    "vdom",
    "timeout",
    "allow_insecure_http",
    "allow_fortimanager_managed",
    "allow_newer_fortios",
)
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
# A run id names the journal file ``<run id>.jsonl``: a plain file name, never a path.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_ENV_TOKEN, _ENV_USER, _ENV_PASSWORD = "FORTIAUTO_TOKEN", "FORTIAUTO_USERNAME", "FORTIAUTO_PASSWORD"
_ENV_TOKENS_FILE = "FORTIAUTO_TOKENS_FILE"
_LOCK_LOOKS, _LOCK_LOOK_PAUSE = 10, 0.02  # a holder writes its note right after taking the lock


@dataclass(frozen=True)
class DeviceSource:
    """A validated device, where its journal lives, and the site file it came from (if any)."""

    device: Device
    journal_dir: Path
    templates: Path | None = None
    site: Site | None = None

    @property
    def routed_site(self) -> Site | None:
        """The site file, when the device is changed through its FortiManager (``fortimanager:`` route)."""
        site = self.site
        if site is None or site.fortimanager is None or self.device.fortimanager is None:
            return None
        return site

    def route(self) -> dict[str, Any] | None:
        """Where the device lives in FortiManager (the journal's record of it), or None when direct."""
        site = self.routed_site
        if site is None or site.fortimanager is None:
            return None
        from fortiauto.fortimanager.connect import route_for  # noqa: PLC0415 - only for a routed device

        return route_for(self.device, site.fortimanager).to_json()


def resolve_device(params: Mapping[str, Any], *, cwd: Path | None = None) -> DeviceSource:
    """A validated device from module-style arguments: ``site`` + ``device``, or the device's own keys.

    Relative paths (certificates, token file, CA bundle, templates) are relative to ``cwd``
    (default: the working directory), or to the site file's folder for a site file. The journal
    goes to ``journal_dir`` when given, else where the CLI would put it (``FORTIAUTO_JOURNAL_DIR``,
    else ``.fortiauto/journal`` beside the site file, or in ``cwd``).

    Raises:
        InputError: a site file together with device arguments, an unknown device, or any problem
            the site loader finds (``SiteInvalid``), named by argument path.
    """
    base = (cwd or Path.cwd()).absolute()
    explicit = Path(params["journal_dir"]) if params.get("journal_dir") else None
    if explicit is not None and not explicit.is_absolute():
        explicit = base / explicit
    if params.get("site"):
        return _from_site(params, base, explicit)
    device = _device_data(params, os.environ)
    data: dict[str, Any] = {"version": 1, "devices": [device]}
    if params.get("templates"):
        data["templates"] = str(params["templates"])
    try:
        site = load_site_data(data, base_dir=base, source=f"<arguments for {params['device']}>")
    except SiteInvalid as exc:
        raise InputError(_argument_problems(exc, base)) from None
    directory = explicit or (
        Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else base / ".fortiauto" / "journal"
    )
    return DeviceSource(_with_mail_servers(site.devices[0], "mail_servers"), directory, site.templates)


def _argument_problems(exc: SiteInvalid, base: Path) -> str:
    """The loader's problems named by argument (``mail_servers[0].probe.host``), paths against ``base``."""
    lines = []
    for problem in exc.problems:
        key = re.sub(r"^devices\[0\]\.?", "", problem.key)
        message = problem.message.replace("relative to the site file", f"relative to {base}")
        lines.append(f"argument {key}: {message}" if key else message)
    return "; ".join(lines)


def _with_mail_servers(device: Device, where: str) -> Device:
    """A device without a mail server would be "compliant" with nothing checked: that is an error."""
    if not device.mail_servers:
        raise InputError(
            f"no mail servers configured for device {device.name} ({where} is empty or missing); "
            "nothing could be checked or changed"
        )
    return device


def _from_site(params: Mapping[str, Any], base: Path, explicit: Path | None) -> DeviceSource:
    given = [key for key in DEVICE_ARGS if params.get(key) is not None]
    if given:
        raise InputError(
            f"site {params['site']} already describes device {params['device']}; "
            f"drop the device arguments ({', '.join(given)}) or the site"
        )
    path = Path(params["site"])
    site = load_site(path if path.is_absolute() else base / path)
    try:
        device = site.device(params["device"])
    except KeyError:
        raise InputError(f"{params['site']}: no device named {params['device']!r}") from None
    device = _with_mail_servers(device, f"its mail_servers in {params['site']}")
    return DeviceSource(device, journal_dir(site.path, explicit), site.templates, site)


def env_key(device: str) -> str:
    """``fgt-branch-1`` -> ``FGT_BRANCH_1``: the suffix of a device's credential variables."""
    return re.sub(r"[^A-Z0-9]", "_", device.upper())


def _env_credentials(device: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Token, else username + password, from the environment: the device's own first, then the shared ones."""
    own = _file_token(device, environ.get(_ENV_TOKENS_FILE))
    for suffix in (f"_{env_key(device)}", ""):
        if environ.get(_ENV_TOKEN + suffix):
            return {"token": environ[_ENV_TOKEN + suffix]}
        if suffix and own:
            return {"token": own}
        if environ.get(_ENV_USER + suffix):
            return {
                "username": environ[_ENV_USER + suffix],
                "password": environ.get(_ENV_PASSWORD + suffix, ""),
            }
    return {}


def _file_token(device: str, path: str | None) -> str | None:
    """This device's line ``<DEVICE>=token`` (or ``<name>=token``) of a per-device tokens file."""
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"{_ENV_TOKENS_FILE} {path} cannot be read: {exc.strerror or exc}") from None
    for line in text.splitlines():
        key, sep, token = line.partition("=")
        if sep and env_key(key.strip()) == env_key(device) and token.strip():
            return token.strip()
    return None


def _device_data(params: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The site-file shape of a device from its arguments; unset (None) arguments are left out."""
    device: dict[str, Any] = {"name": params["device"]}
    device.update({key: params[key] for key in _PLAIN_KEYS if params.get(key) is not None})
    if params.get("verify_tls") is not None:
        device["verify_tls"] = _verify_value(params["verify_tls"])
    if params.get("token") and params.get("token_file"):
        raise InputError("give token or token_file, not both")
    if params.get("token"):
        device["token"] = params["token"]
    elif params.get("token_file"):
        # A file reference keeps the token itself out of the arguments and out of any log.
        device["token"] = "${file:" + str(Path(params["token_file"]).absolute()) + "}"
    if params.get("password") is not None:
        device["password"] = params["password"]
    if not any(params.get(key) for key in ("token", "token_file", "username")):
        device.update(_env_credentials(params["device"], environ))
    device["mail_servers"] = _pruned(params.get("mail_servers") or [])
    return device


def check_run_id(run_id: str) -> str:
    """``run_id`` if it can name a journal file (letters, digits, ``-``, ``_``, ``.``; no path)."""
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise InputError(
            f"run id {run_id!r} is not a plain name (letters, digits, '-', '_', '.'; at most 80 characters)"
        )
    return run_id


def _verify_value(value: Any) -> Any:
    # Older ansible-core renders a templated boolean as the string "True"; a CA bundle is a path.
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    return value


def _pruned(value: Any) -> Any:
    """Drop None values: Ansible fills every unset sub-option with None, the site loader wants them absent."""
    if isinstance(value, Mapping):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_pruned(v) for v in value]
    return value


class _Recorder(NullReporter):
    """Keeps every probe stage (baseline, after, delivery, confirm) for the orchestrator's result."""

    def __init__(self) -> None:
        self.probes: list[dict[str, Any]] = []

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None:
        self.probes.append(
            {
                "stage": stage,
                "passed": result.passed,
                "failure_class": result.failure_class,
                "attempts": result.attempts,
            }
        )


async def _refuse_if_locked(directory: Path) -> None:
    """A CLI run (``fortiauto apply``/``rollback``) on the same journal holds its lock: do not race it.

    The module only reads the journal lock (parallel Ansible forks of one run must not exclude
    each other); each fork takes its own device's lock, as the CLI does. Reading it briefly
    takes it, so a fork may see another fork's look as a holder without a note: look again.
    """
    lock = site_lock(directory)
    holder: dict[str, Any] = {}
    for _ in range(_LOCK_LOOKS):
        found = lock.holder()
        if found is None:
            return
        holder = found
        if holder:
            break
        await asyncio.sleep(_LOCK_LOOK_PAUSE)
    raise LockHeld(
        f"another run holds the lock {lock.path}: run {holder.get('run_id')} "
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
    )


class _DeferredJournal(Journal):
    """A journal whose file is created at the run's first ``pre`` line, headed by its ``run`` line.

    Lines before the first write are kept back and an ``end`` of a device that wrote nothing is
    dropped: a run with no ``pre`` line needs no journal (nothing to undo, no undo hint). From the
    first ``pre`` on, every line goes to an ordinary ``Journal`` (durable before the write it
    guards). It wraps one rather than extending its internals, which are the journal's own.
    """

    def __init__(self, directory: Path, run_id: str, header: dict[str, Any]) -> None:
        self.path = directory / f"{run_id}.jsonl"
        self.run_id = run_id
        self._directory = directory
        self._header = header
        self._inner: Journal | None = None

    @property
    def opened(self) -> bool:
        return self._inner is not None

    def _journal_for(self, kind: str) -> Journal | None:
        if self._inner is None and kind == "pre":
            self._inner = Journal(self._directory, self.run_id)
            self._inner.record("run", **self._header)
        return self._inner

    def record(self, kind: str, **fields: Any) -> None:
        journal = self._journal_for(kind)
        if journal is not None:
            journal.record(kind, **fields)

    async def record_durable(self, kind: str, **fields: Any) -> None:
        journal = self._journal_for(kind)
        if journal is not None:
            await journal.record_durable(kind, **fields)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def _check_journal_dir(directory: Path) -> None:
    """Fail before the device is touched when ``directory`` cannot hold a journal (it is opened later)."""
    try:
        if not directory.is_dir():  # an existing directory keeps its mode: it may be shared
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(prefix=".fortiauto-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(
            f"journal directory {directory} cannot hold the journal: {exc.strerror or exc}"
        ) from None


async def run_device_once(
    source: DeviceSource,
    *,
    run_id: str | None = None,
    check: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Run one device's transaction; journal under ``run_id`` unless in check mode.

    Check mode reads only (the plan): no writes, no probes, no journal. A site's change
    window applies as in the CLI (``force`` overrides it and a failing baseline probe). As in
    ``fortiauto apply``, the device is refused (status ``refused``) while another run holds its
    machine-wide lock, or while a run in the same journal wrote to it and never finished.

    Raises:
        WindowClosed: outside the site's change window, without ``force``.
        LockHeld: a CLI run holds the journal directory's lock.
        InputError: ``run_id`` is not a plain name, or the journal directory cannot hold a journal.
    """
    from fortiauto.probe import run_probe  # noqa: PLC0415 - keeps argument errors fast
    from fortiauto.probe.delivery import SiteDelivery  # noqa: PLC0415

    run_id = check_run_id(run_id) if run_id else new_run_id()
    notes: list[str] = []
    if source.site is not None and not check:
        notes.extend(
            n for n in [check_window(source.site.change_window, datetime.now(UTC), ignore=force)] if n
        )
    device = source.device
    journal: _DeferredJournal | None = None
    lock = device_lock(device.url, device.name)
    if not check:
        await _refuse_if_locked(source.journal_dir)
        _check_journal_dir(source.journal_dir)
        try:
            lock.acquire(run_id, device=device.name)
        except LockHeld as exc:
            refused = conclude(device.name, Ending.REFUSED, f"refused: {exc}", error=exc)
            return _result_json(refused, run_id, None) | {"notes": notes}
    recorder = _Recorder()
    try:
        unfinished = _unfinished(source, run_id)
        if unfinished and not check:
            refused = conclude(device.name, Ending.REFUSED, f"refused: {unfinished}")
            return _result_json(refused, run_id, None) | {"notes": notes}
        if not check:
            journal = _DeferredJournal(source.journal_dir, run_id, _journal_header(source))
        async with _connections(source, writing=not check) as client_factory:
            result = await DeviceTransaction(
                device,
                options=TransactionOptions(
                    run_id=run_id,
                    check=check,
                    probe=not check,
                    force_baseline=force,
                    templates=source.templates,
                    notes=(unfinished,) if unfinished else (),
                ),
                client_factory=client_factory,
                prober=run_probe,
                journal=journal,
                events=Events([recorder]),
                delivery=SiteDelivery(),
            ).run()
    finally:
        lock.release()
        if journal is not None:
            journal.close()
    written = journal.path if journal is not None and journal.path.is_file() else None
    return _result_json(result, run_id, written) | {"probes": recorder.probes, "notes": notes}


@contextlib.asynccontextmanager
async def _connections(source: DeviceSource, *, writing: bool) -> AsyncIterator[ClientFactory]:
    """The run's client factory: FortiManager's path for a routed device (its session ended after), else REST.

    ``writing`` is False for check mode: FortiManager is then only read (no workspace lock either).
    """
    site = source.routed_site
    if site is None:
        from fortiauto.fortios.connect import client_for  # noqa: PLC0415 - keeps argument errors fast

        yield client_for
        return
    from fortiauto.fortimanager.connect import connect_for  # noqa: PLC0415

    async with connect_for(site, writing=writing) as factory:
        yield factory


def _unfinished(source: DeviceSource, run_id: str) -> str | None:
    """A run of this journal that wrote to the device and never ended blocks it until undone."""
    name = source.device.name
    runs = unfinished_runs(source.journal_dir, exclude=run_id).get(name)
    if not runs:
        return None
    return (
        f"run {runs[-1]} wrote to {name} and never finished (killed or crashed); nothing more is "
        f"changed on it until that run is undone (state=rolled_back run_id={runs[-1]}, journal "
        f"{source.journal_dir})"
    )


def _journal_header(source: DeviceSource) -> dict[str, Any]:
    # A site-file run can also be undone with `fortiauto rollback --run` (it needs the site for
    # URLs and credentials); argument runs are undone with the module's state=rolled_back.
    fields: dict[str, Any] = {
        "command": "ansible",
        "devices": [source.device.name],
        "reach": [device_header(source.device, None if source.site is None else source.site.fortimanager)],
    }
    if source.site is not None:
        fields["site"] = str(source.site.path.resolve())
    return fields


def _result_json(
    result: DeviceResult, run_id: str, journal: Path | None, *, undo: bool = False
) -> dict[str, Any]:
    """The device's JSON for an orchestrator; ``journal`` is None when the run wrote no journal."""
    return result.to_json() | {
        "run_id": run_id,
        "journal": None if journal is None else str(journal),
        "tasks": _per_task(result),
        "diff": [_object_diff(change, undo=undo) for change in result.changes],
    }


def _per_task(result: DeviceResult) -> dict[str, dict[str, Any]]:
    """Per task (in apply order): the objects it changed and, when it changed nothing, why."""
    tasks: dict[str, dict[str, Any]] = {
        name: {"changed": False, "objects": [], "reasons": []} for name in ORDER
    }
    for change in result.changes:
        entry = tasks[change.task]
        entry["changed"] = True
        entry["objects"].append(f"{change.action} {change.path}/{change.mkey} (vdom {change.vdom})")
    noop = result.plan.noop_reasons if result.plan is not None else {}
    for label, why in noop.items():
        task = label.rsplit("/", 1)[-1]
        if task in tasks:
            tasks[task]["reasons"].append(f"{label}: {why}")
    return tasks


def _object_diff(change: Change, *, undo: bool = False) -> dict[str, Any]:
    """One object's managed keys before and after, shaped like Ansible's diff entries.

    An undo goes the other way: from the change's ``after`` back to its ``before``.
    """
    header = f"{change.path}/{change.mkey} (vdom {change.vdom}, {'undo ' if undo else ''}{change.action})"
    before, after = (change.after, change.before) if undo else (change.before, change.after)
    return {"before_header": header, "after_header": header, "before": before or {}, "after": after or {}}


async def undo_device_run(source: DeviceSource, run_id: str, *, check: bool = False) -> dict[str, Any]:
    """Undo this device's writes of ``run_id`` that are still pending in the journal; idempotent.

    Check mode lists what would be undone and touches nothing. The undo goes the way the run
    went: through FortiManager (and installed) when the journal names the device's route.

    Raises:
        InputError: there is no journal for ``run_id``, or the run reached the device another
            way than ``source`` does (through FortiManager or directly, or another route).
        LockHeld: a CLI run holds the journal directory's lock.
    """
    path = source.journal_dir / f"{check_run_id(run_id)}.jsonl"
    name = source.device.name
    entries = read_journal(path)
    pending = pending_undos(entries).get(name, [])
    if pending:
        _check_same_route(source, run_id, entries)
    if check or not pending:
        changes = tuple(entry.change for entry in pending)
        result = (
            conclude(name, Ending.RESTORED, f"{len(pending)} write(s) to undo", changes=changes)
            if pending
            else conclude(name, Ending.NOTHING_TO_UNDO, "nothing left to undo")
        )
        return _result_json(result, run_id, path, undo=True)
    await _refuse_if_locked(source.journal_dir)
    with device_lock(source.device.url, name) as lock, Journal(source.journal_dir, run_id) as journal:
        lock.acquire(f"rollback-{run_id}", device=name)
        async with _connections(source, writing=True) as client_factory:
            result = await rollback_device(
                source.device, pending, client_factory=client_factory, journal=journal
            )
    return _result_json(result, run_id, path, undo=True)


def _check_same_route(source: DeviceSource, run_id: str, entries: list[dict[str, Any]]) -> None:
    """Refuse an undo that would write the run's pre-images somewhere the run did not write them."""
    from fortiauto.fortimanager.connect import route_change  # noqa: PLC0415 - only for an undo with writes

    site = source.site
    why = route_change(entries, source.device, None if site is None else site.fortimanager)
    if why is None:
        return
    if source.route() is None:
        hint = (
            "give the module the site file that routes it (site=...), or run fortiauto rollback "
            f"--run {run_id} --journal-dir {source.journal_dir}"
        )
    else:
        hint = "undo it with the settings the run used"
    raise InputError(f"run {run_id} cannot be undone with these settings: {why}; {hint}")
