"""The engine for one device as plain data in and out: what the Ansible module (and other
orchestrators such as AWX job templates or Nornir tasks) call.

Arguments shaped like a site file's device become a validated ``Device`` through the same
loader as ``site.yml``; the result is the DESIGN.md per-device JSON plus the run id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fortiauto.engine import DeviceRun, EngineOptions, rollback_device
from fortiauto.journal import Journal, pending_undos, read_journal
from fortiauto.rollout import new_run_id
from fortiauto.site import Device, load_site, load_site_data

__all__ = ["device_from_args", "run_device_once", "undo_device_run"]

_DEVICE_KEYS = ("url", "username", "vdom", "verify_tls", "timeout", "mail_servers")


def device_from_args(params: dict[str, Any]) -> tuple[Device, Path | None]:
    """A validated device (and the site's templates folder) from module-style arguments."""
    if params.get("site"):
        site = load_site(Path(params["site"]))
        try:
            return site.device(params["device"]), site.templates
        except KeyError:
            from fortiauto.errors import InputError  # noqa: PLC0415

            raise InputError(f"{params['site']}: no device named {params['device']!r}") from None
    device: dict[str, Any] = {"name": params["device"]}
    device.update({k: params[k] for k in _DEVICE_KEYS if params.get(k) is not None})
    if params.get("token"):
        device["token"] = params["token"]
    elif params.get("token_file"):
        device["token"] = "${file:" + str(Path(params["token_file"]).resolve()) + "}"
    if params.get("password"):
        device["password"] = params["password"]
    data: dict[str, Any] = {"version": 1, "devices": [device]}
    if params.get("templates"):
        data["templates"] = str(params["templates"])
    site = load_site_data(data, base_dir=Path.cwd(), source=f"<arguments for {params['device']}>")
    return site.devices[0], site.templates


def _client_factory() -> Any:
    from fortiauto.connect import client_for  # noqa: PLC0415

    return client_for


async def run_device_once(
    device: Device,
    *,
    journal_dir: Path,
    run_id: str | None = None,
    check: bool = False,
    force: bool = False,
    templates: Path | None = None,
) -> dict[str, Any]:
    """Run the transaction for one device; journal under ``run_id`` unless in check mode."""
    from fortiauto.probe import run_probe  # noqa: PLC0415
    from fortiauto.probe.delivery import LabDelivery  # noqa: PLC0415

    run_id = run_id or new_run_id()
    options = EngineOptions(run_id=run_id, check=check, probe=not check, force=force, templates=templates)
    journal = None if check else Journal(journal_dir, run_id)
    try:
        if journal is not None:
            journal.record("device", device=device.name)
        result = await DeviceRun(
            device,
            options=options,
            client_factory=_client_factory(),
            prober=run_probe,
            journal=journal,
            delivery=LabDelivery(),
        ).run()
    finally:
        if journal is not None:
            journal.close()
    return result.to_json() | {"run_id": run_id}


async def undo_device_run(
    device: Device, journal_dir: Path, run_id: str, *, check: bool = False
) -> dict[str, Any]:
    """Undo this device's pending writes of ``run_id`` from the journal."""
    path = journal_dir / f"{run_id}.jsonl"
    pending = pending_undos(read_journal(path)).get(device.name, [])
    if check:
        status = "rolled_back" if pending else "unchanged"
        return {
            "name": device.name,
            "status": status,
            "reason": f"{len(pending)} write(s) to undo",
            "changes": [e.change.to_json() for e in pending],
            "run_id": run_id,
        }
    with Journal(journal_dir, run_id) as journal:
        result = await rollback_device(device, pending, client_factory=_client_factory(), journal=journal)
    return result.to_json() | {"run_id": run_id}
