# Copyright: fortiauto developers
# Apache License 2.0 (see the fortiauto repository's LICENSE)
"""Action plugin: runs ``fortiauto.fortigate.smtp_inspection`` inside the controller's Ansible process.

No module is shipped to a host and no Python starts per host: Ansible forks its worker for the
task (already holding fortiauto, imported here when the strategy first loads this plugin) and
the worker runs the device's transaction on its own event loop. Check mode, diff, per-host
results, ``serial``, ``max_fail_percentage`` and ``--limit`` are Ansible's as for any task.

One run id per ``ansible-playbook`` run: given (``run_id``), else derived on the controller
(``run_id.py``), so every host, batch and ``--limit`` of one job journals under the same id.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.fortiauto.fortigate.plugins.module_utils.smtp_inspection import (
    ARGUMENT_RULES,
    ARGUMENT_SPEC,
    NOT_INSTALLED,
    ansible_result,
    error_result,
    journal_problem,
    run_engine,
)
from ansible_collections.fortiauto.fortigate.plugins.plugin_utils.run_id import controller_run_id

try:  # loaded once in the controller's main process, so that every forked worker has it already
    import fortiauto.api
    import fortiauto.fortimanager.device_api  # a site file's devices routed through FortiManager
    import fortiauto.fortios.client  # httpx and the client: imported lazily by connect otherwise
    import fortiauto.fortios.connect
    import fortiauto.probe
    import fortiauto.probe.delivery
    from fortiauto.errors import FortiautoError, InputError
except ImportError:
    FortiautoError = None  # type: ignore[assignment,misc]


def _preload() -> None:
    """Import here, once, what a device's run would import in every worker: httpx's transport
    stack (imported at the first request) and the installed delivery confirmers."""
    import importlib
    from importlib.metadata import entry_points

    for name in ("httpcore", "h11", "anyio", "anyio._backends._asyncio", "anyio.streams.tls"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue

    for entry in entry_points(group="fortiauto.delivery"):
        try:
            entry.load()
        except Exception:
            continue


if FortiautoError is not None:
    _preload()
if multiprocessing.parent_process() is None:
    # The controller's main process, before it forks a worker per host: move what is loaded now
    # (Ansible, fortiauto, the plugins) out of the garbage collector's walks, so that neither the
    # main process nor a forked worker (copy-on-write) walks and copies that heap again and again.
    # Measured on 30 lab devices in check mode: 10-15% less CPU for the whole run.
    gc.freeze()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # nothing runs on the host: the device is reached over HTTPS
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        super().run(tmp, task_vars)
        device = str(self._task.args.get("device") or task_vars.get("inventory_hostname"))
        try:
            validation, params = self.validate_argument_spec(ARGUMENT_SPEC, **ARGUMENT_RULES)
        except AnsibleActionFail as exc:
            # The module's own words, once with the device in front ("argument errors" are ours).
            return _not_run(device, str(exc))
        hidden = validation._no_log_values
        invocation = {"module_args": remove_values(params, hidden)}
        if FortiautoError is None:
            return _not_run(device, NOT_INSTALLED)
        check = bool(self._play_context.check_mode)
        params["run_id"] = params["run_id"] or controller_run_id(task_vars)
        project = _project_dir(task_vars) if _under_awx(task_vars) else None
        problem = None if check else journal_problem(params, project)
        if problem:
            return error_result(device, InputError(problem), params["run_id"]) | {"invocation": invocation}
        try:
            result = run_engine(params, check=check)
        except FortiautoError as exc:
            return error_result(params["device"], exc, params["run_id"]) | {"invocation": invocation}
        payload = ansible_result(params, result, check=check, diff=bool(self._play_context.diff))
        payload["invocation"] = invocation
        if not payload["failed"]:
            # An AWX artifact (set_stats): a workflow's rollback node can take the run id from here.
            payload["ansible_stats"] = {"data": {"fortiauto_run_id": params["run_id"]}, "per_host": False}
        return payload


def _not_run(device: str, why: str) -> dict[str, Any]:
    """Arguments Ansible's validator refuses, or no fortiauto: nothing ran, nothing was written."""
    return {
        "failed": True,
        "changed": False,
        "name": device,
        "status": "failed",
        "reason": why,
        "exit_code": 2,
        "run_id": None,
        "journal": None,
        "msg": f"{device}: {why}",
    }


def _under_awx(task_vars: dict[str, Any]) -> bool:
    # AWX (and Automation Controller) make the project checkout afresh for every job.
    return any(task_vars.get(name) for name in ("awx_job_id", "tower_job_id"))


def _project_dir(task_vars: dict[str, Any]) -> str | None:
    """The checkout holding the playbook: its folder or the parent, whichever is the repository root."""
    playbook_dir = task_vars.get("playbook_dir")
    if not playbook_dir:
        return None
    parent = os.path.dirname(os.path.abspath(playbook_dir))
    for marker in (".git", "ansible.cfg"):
        for candidate in (parent, playbook_dir):
            if os.path.exists(os.path.join(candidate, marker)):
                return candidate
    return playbook_dir
