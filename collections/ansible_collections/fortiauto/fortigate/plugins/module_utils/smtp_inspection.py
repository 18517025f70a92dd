# Copyright: fortiauto developers
# Apache License 2.0 (see the fortiauto repository's LICENSE)
"""What the module and its controller-side action plugin share: the argument spec, and the
one mapping from fortiauto's device result to an Ansible result.

The rule that makes Ansible tell the same truth as the CLI: a task fails exactly when
``fortiauto apply`` would end non-zero for that device (its ``exit_code`` from fortiauto's one
table of outcomes): refused, skipped (mail already broken, not started), rolled back, fallback
rung, no proof in the log, unreachable, left over. ``changed`` means writes were made and kept
(or, in check mode, would be).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Coroutine
from typing import Any

# Ctrl-C, an AWX job cancel (SIGTERM) or a closed terminal: the device's run is cancelled once and
# then rolls back to its end; further signals change nothing (as for `fortiauto apply`).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# The email filter's anti-spam checks fortiauto knows (fortiauto.site.models.SpamCheck).
SPAM_CHECKS = (
    "spamfsip", "spamfsurl", "spamfschksum", "spamfsphish", "spamfssubmit",
    "spamhelodns", "spamraddrdns", "spamrbl", "spamhdrcheck",
)  # fmt: skip

_PROBE_OPTIONS: dict[str, Any] = {
    "host": {"type": "str", "required": True},
    "port": {"type": "int"},
    "mode": {"type": "str", "choices": ["plain", "starttls", "smtps", "opportunistic"]},
    "server_name": {"type": "str"},
    "timeout": {"type": "float"},
    "retries": {"type": "int"},
    "retry_delay": {"type": "float"},
    "ehlo": {"type": "str"},
    "transaction": {
        "type": "dict",
        "options": {
            "mail_from": {"type": "str", "required": True},
            "rcpt_to": {"type": "str", "required": True},
        },
    },
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "verify_chain": {"type": "raw"},
    "via": {
        "type": "dict",
        "options": {
            "ssh": {"type": "str"},
            "socks5": {"type": "str"},
            "key": {"type": "path", "no_log": False},
            "known_hosts": {"type": "path"},
            "passphrase": {"type": "str", "no_log": True},
        },
    },
    "confirm_delivery": {"type": "raw"},
}

_MAIL_SERVER_OPTIONS: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "policy": {
        "type": "dict",
        "required": True,
        "options": {
            "id": {"type": "int"},
            "name": {"type": "str"},
            "vip": {"type": "str"},
            "profile_group": {"type": "str", "choices": ["refuse", "edit"]},
        },
    },
    "certificate": {
        "type": "dict",
        "required": True,
        "options": {
            "cert": {"type": "path", "required": True},
            "key": {"type": "path", "required": True, "no_log": False},
            "passphrase": {"type": "str", "no_log": True},
        },
    },
    "emailfilter_profile": {"type": "str", "required": True},
    "ssl_profile": {"type": "str", "required": True},
    "protocol_options": {"type": "str", "required": True},
    "vdom": {"type": "str"},
    "spam_checks": {"type": "list", "elements": "str", "choices": list(SPAM_CHECKS)},
    "allow_any_policy": {"type": "bool"},
    "previous": {
        "type": "dict",
        "options": {
            "ssl_profile": {"type": "str", "required": True},
            "emailfilter_profile": {"type": "str", "required": True},
            "protocol_options": {"type": "str", "required": True},
            "inspection_mode": {"type": "str", "required": True, "choices": ["flow", "proxy"]},
        },
    },
    "fallback": {"type": "list", "elements": "str"},
    "probe": {"type": "dict", "required": True, "options": _PROBE_OPTIONS},
}

# Defaults of device settings are left to fortiauto's loader (None = not given), so that a
# site file given together with any device argument is an error rather than silently ignored.
ARGUMENT_SPEC: dict[str, Any] = {
    "state": {"type": "str", "choices": ["present", "rolled_back"], "default": "present"},
    "site": {"type": "path"},
    "device": {"type": "str", "required": True},
    "url": {"type": "str"},
    "token": {"type": "str", "no_log": True},
    "token_file": {"type": "path"},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "vdom": {"type": "str"},
    "verify_tls": {"type": "raw"},
    "timeout": {"type": "float"},
    "allow_insecure_http": {"type": "bool"},
    "allow_fortimanager_managed": {"type": "bool"},
    "allow_newer_fortios": {"type": "bool"},
    "mail_servers": {"type": "list", "elements": "dict", "options": _MAIL_SERVER_OPTIONS},
    "run_id": {"type": "str"},
    "journal_dir": {"type": "path"},
    "journal_ephemeral_ok": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "templates": {"type": "path"},
}

ARGUMENT_RULES: dict[str, Any] = {
    "mutually_exclusive": [["token", "token_file"], ["token", "username"], ["token_file", "username"]],
    "required_together": [["username", "password"]],
    "required_if": [["state", "rolled_back", ["run_id"]]],
}

JOURNAL_ENV = "FORTIAUTO_JOURNAL_DIR"
NOT_INSTALLED = (
    "fortiauto is not installed in the Python that runs Ansible on the controller "
    "(pip install fortiauto there, or use the fortiauto execution environment)"
)


def journal_problem(params: dict[str, Any], project_dir: str | None = None) -> str | None:
    """Why this apply's journal would not outlive the job, or None when it will (or the user says so).

    Persistent means: given on purpose (``journal_dir`` or ``FORTIAUTO_JOURNAL_DIR``) and not
    inside the project checkout, which AWX makes afresh for every job. Check mode and rollbacks
    write no new journal and are never refused for this.
    """
    if params["state"] != "present" or params["journal_ephemeral_ok"]:
        return None
    given = params.get("journal_dir") or os.environ.get(JOURNAL_ENV)
    hint = (
        "set journal_dir (fortiauto_journal_dir) or FORTIAUTO_JOURNAL_DIR to a directory that "
        "outlives the job (an AWX volume), or journal_ephemeral_ok=true to accept that this run "
        "cannot be rolled back by a later job"
    )
    if not given:
        return f"no persistent journal location: {hint}"
    where = os.path.realpath(given)
    if project_dir:
        project = os.path.realpath(project_dir)
        if where == project or where.startswith(project + os.sep):
            return f"journal directory {given} is inside the project checkout {project_dir}: {hint}"
    return None


def run_engine(params: dict[str, Any], *, check: bool) -> dict[str, Any]:
    """Resolve the device and run fortiauto for it (apply or undo); raises FortiautoError before any write."""
    from fortiauto.api import resolve_device, run_device_once, undo_device_run

    source = resolve_device(params)
    if params["state"] == "rolled_back":
        return run_to_the_end(undo_device_run(source, params["run_id"], check=check))
    return run_to_the_end(
        run_device_once(source, run_id=params["run_id"], check=check, force=params["force"])
    )


def run_to_the_end(work: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` on a new event loop; a stop signal cancels it once, and it still finishes.

    Ansible stops its workers with SIGTERM (Ctrl-C, an AWX cancel), and its own handler ends the
    worker at once: between two writes, without this. Here the first stop signal cancels the
    run, fortiauto's transaction rolls back what it wrote and ends its journal; then the signal
    is delivered again to the handler it had, so the worker still stops (its result is not
    wanted any more; waiting to hand it over could block on a parent that no longer reads).
    Raises FortiautoError (an interrupt before any write) when the cancel lands outside the
    transaction.
    """
    from fortiauto.errors import Refused

    loop = asyncio.new_event_loop()
    task = loop.create_task(work)
    received: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            previous[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, _cancel_once, task, sig, received)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        raise Refused("interrupted before any write") from None
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
        loop.close()
        if received:
            signal.raise_signal(received[0])


def _cancel_once(task: asyncio.Task[Any], sig: int, received: list[int]) -> None:
    if not received:
        received.append(sig)
        task.cancel()


def error_result(device: str, exc: Exception, run_id: str | None) -> dict[str, Any]:
    """A failure before the engine ran (arguments, window, lock, journal): nothing was written."""
    from fortiauto.errors import Refused

    status = "refused" if isinstance(exc, Refused) else "failed"
    reason = strip_device(device, str(exc))
    return {
        "failed": True,
        "changed": False,
        "rolled_back": False,
        "name": device,
        "status": status,
        "reason": reason,
        "exit_code": getattr(exc, "exit_code", 1),
        "run_id": run_id,
        "journal": None,
        "msg": f"{device}: {reason}; nothing was written",
    }


def strip_device(device: str, text: str) -> str:
    """Engine reasons often start with the device name already; say it once."""
    prefix = f"{device}: "
    while text.startswith(prefix):
        text = text[len(prefix) :]
    return text


def ansible_result(
    params: dict[str, Any], result: dict[str, Any], *, check: bool, diff: bool
) -> dict[str, Any]:
    """fortiauto's device result as an Ansible task result (``failed``, ``changed``, ``diff``, warnings)."""
    undoing = params["state"] == "rolled_back"
    device = params["device"]
    status = result["status"]
    plan_warnings = result.pop("warnings", [])
    warnings = [f"{w}" for w in [*plan_warnings, *result.pop("notes", [])]]
    changes = result.pop("diff")
    kept = status in ("changed", "fallback", "unproven")
    payload = dict(
        result,
        reason=strip_device(device, result["reason"]),
        plan_warnings=plan_warnings,
        changed=status == "rolled_back" if undoing else kept,
        rolled_back=status == "rolled_back",
        failed=result.get("exit_code", 0) != 0,
        msg=message(device, result, check=check),
    )
    if warnings:
        payload["warnings"] = warnings
    if diff:
        payload["diff"] = changes
    return payload


def message(device: str, result: dict[str, Any], *, check: bool) -> str:
    text = f"{device}: {strip_device(device, result['reason'])}"
    confirm = [p for p in result.get("probes", []) if p["stage"] == "confirm"]
    if result["status"] == "rolled_back" and confirm and all(p["passed"] for p in confirm):
        text += "; mail flows again (confirming probe passed)"
    if result.get("left_over"):
        text += (
            f"; left over: {'; '.join(result['left_over'])}; "
            f"undo with state=rolled_back run_id={result['run_id']}"
        )
    if result["status"] == "changed" and not check and result.get("effect"):
        text += f"; effect {result['effect']}"
    return text
