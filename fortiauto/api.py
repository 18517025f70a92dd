"""The programmatic API: one device's transaction as plain data in and out, for orchestrators.

The Ansible module (``playbooks/library/fortiauto_smtp_inspection.py``) is the first caller;
AWX job templates or Nornir tasks would call the same three functions. Module-style arguments
(or a site file plus a device name) become a validated ``Device`` through the same loader as
``site.yml`` (``resolve_device``); ``run_device_once`` runs ``transaction.DeviceTransaction``
for it (no fleet rollout: the orchestrator schedules hosts) under the same device lock as the
CLI, and ``undo_device_run`` undoes one device's writes of a run from the journal with the
same undo. Results are the per-device JSON of docs/design.md plus what an orchestrator shows:
run id, per-task summary, every probe stage, and before/after per object for a diff view.
Nothing returned holds a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fortiauto.errors import InputError, LockHeld
from fortiauto.events import Events, NullReporter
from fortiauto.fleet import check_window, device_lock, new_run_id, rollback_device, site_lock
from fortiauto.fleet.run import device_header
from fortiauto.journal import ENV_VAR, Journal, journal_dir, pending_undos, read_journal
from fortiauto.results import Change, DeviceResult, ProbeResult
from fortiauto.site import Device, Site
from fortiauto.site.loader import load_site, load_site_data
from fortiauto.tasks import ORDER
from fortiauto.transaction import DeviceTransaction, Ending, TransactionOptions, conclude

__all__ = ["DeviceSource", "resolve_device", "run_device_once", "undo_device_run"]

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
    "mail_servers",
)
_PLAIN_KEYS = ("url", "username", "vdom", "timeout", "allow_insecure_http", "allow_fortimanager_managed")
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class DeviceSource:
    """A validated device, where its journal lives, and the site file it came from (if any)."""

    device: Device
    journal_dir: Path
    templates: Path | None = None
    site: Site | None = None


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
    device = _device_data(params)
    data: dict[str, Any] = {"version": 1, "devices": [device]}
    if params.get("templates"):
        data["templates"] = str(params["templates"])
    site = load_site_data(data, base_dir=base, source=f"<arguments for {params['device']}>")
    directory = explicit or (
        Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else base / ".fortiauto" / "journal"
    )
    return DeviceSource(site.devices[0], directory, site.templates)


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
    return DeviceSource(device, journal_dir(site.path, explicit), site.templates, site)


def _device_data(params: Mapping[str, Any]) -> dict[str, Any]:
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
    device["mail_servers"] = _pruned(params.get("mail_servers") or [])
    return device


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


def _refuse_if_locked(directory: Path) -> None:
    """A CLI run (``fortiauto apply``/``rollback``) on the same journal holds its lock: do not race it.

    The module only reads the journal lock (parallel Ansible forks of one run must not exclude
    each other); each fork takes its own device's lock, as the CLI does.
    """
    lock = site_lock(directory)
    holder = lock.holder()
    if holder is not None:
        raise LockHeld(
            f"another run holds the lock {lock.path}: run {holder.get('run_id')} "
            f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
        )


async def run_device_once(
    source: DeviceSource,
    *,
    run_id: str | None = None,
    check: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Run one device's transaction; journal under ``run_id`` unless in check mode.

    Check mode reads only (the plan): no writes, no probes, no journal. A site's change
    window applies as in the CLI (``force`` overrides it and a failing baseline probe).

    Raises:
        WindowClosed: outside the site's change window, without ``force``.
        LockHeld: a CLI run holds the journal directory's lock, or another run holds the device's.
    """
    from fortiauto.fortios.connect import client_for  # noqa: PLC0415 - keeps argument errors fast
    from fortiauto.probe import run_probe  # noqa: PLC0415
    from fortiauto.probe.delivery import SiteDelivery  # noqa: PLC0415

    run_id = run_id or new_run_id()
    notes: list[str] = []
    if source.site is not None and not check:
        notes.extend(
            n for n in [check_window(source.site.change_window, datetime.now(UTC), ignore=force)] if n
        )
    journal = None
    device = source.device
    lock = device_lock(device.url, device.name)
    if not check:
        _refuse_if_locked(source.journal_dir)
        lock.acquire(run_id, device=device.name)
    recorder = _Recorder()
    try:
        if not check:
            journal = Journal(source.journal_dir, run_id)
            _journal_header(journal, source)
        result = await DeviceTransaction(
            device,
            options=TransactionOptions(
                run_id=run_id, check=check, probe=not check, force_baseline=force, templates=source.templates
            ),
            client_factory=client_for,
            prober=run_probe,
            journal=journal,
            events=Events([recorder]),
            delivery=SiteDelivery(),
        ).run()
    finally:
        lock.release()
        if journal is not None:
            journal.close()
    return _result_json(result, run_id, source.journal_dir) | {"probes": recorder.probes, "notes": notes}


def _journal_header(journal: Journal, source: DeviceSource) -> None:
    # A site-file run can also be undone with `fortiauto rollback --run` (it needs the site for
    # URLs and credentials); argument runs are undone with the module's state=rolled_back.
    fields: dict[str, Any] = {
        "command": "ansible",
        "devices": [source.device.name],
        "reach": [device_header(source.device)],
    }
    if source.site is not None:
        fields["site"] = str(source.site.path.resolve())
    journal.record("run", **fields)


def _result_json(result: DeviceResult, run_id: str, directory: Path, *, undo: bool = False) -> dict[str, Any]:
    return result.to_json() | {
        "run_id": run_id,
        "journal": str(directory / f"{run_id}.jsonl"),
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

    Check mode lists what would be undone and touches nothing.

    Raises:
        InputError: there is no journal for ``run_id``.
        LockHeld: a CLI run holds the journal directory's lock.
    """
    from fortiauto.fortios.connect import client_for  # noqa: PLC0415

    path = source.journal_dir / f"{run_id}.jsonl"
    name = source.device.name
    pending = pending_undos(read_journal(path)).get(name, [])
    if check or not pending:
        changes = tuple(entry.change for entry in pending)
        result = (
            conclude(name, Ending.RESTORED, f"{len(pending)} write(s) to undo", changes=changes)
            if pending
            else conclude(name, Ending.NOTHING_TO_UNDO, "nothing left to undo")
        )
        return _result_json(result, run_id, source.journal_dir, undo=True)
    _refuse_if_locked(source.journal_dir)
    with device_lock(source.device.url, name) as lock, Journal(source.journal_dir, run_id) as journal:
        lock.acquire(f"rollback-{run_id}", device=name)
        result = await rollback_device(source.device, pending, client_factory=client_for, journal=journal)
    return _result_json(result, run_id, source.journal_dir, undo=True)
