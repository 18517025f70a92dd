#!/usr/bin/python
"""Ansible module: run the fortiauto engine for one FortiGate (check mode = plan, --diff = before/after)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fortiauto_smtp_inspection
short_description: Log and inspect inbound SMTP on a FortiGate, probed and rolled back automatically
version_added: "0.1.0"
description:
  - Applies Fortinet's recommended fix for inbound mail that is not logged or inspected by the
    email filter profile - email filter C(spam-log) and C(log-all) with C(feature-set proxy), the
    inbound VIP policy in C(inspection-mode proxy), and SSL inspection of the Protecting SSL Server
    kind with the mail server's own certificate.
  - Runs the fortiauto engine for one device - baseline SMTP probe through the VIP, plan,
    journaled writes through the FortiOS REST API, probe, and automatic rollback when mail stops
    flowing, optionally trying the next rung of C(fallback).
  - In check mode only reads (the plan) and makes zero writes; with C(--diff) returns the
    before/after of every object.
  - A probe failure is a failed task, reported after the rollback has restored the device.
  - The device and mail server settings come from module arguments (so inventory host and group
    vars can hold them), or from a fortiauto site file plus a device name.
  - Runs on the controller (C(connection: local)) with an interpreter that has fortiauto installed.
options:
  state:
    description:
      - C(present) applies the change; C(rolled_back) undoes run I(run_id) for this device from the journal.
    type: str
    choices: [present, rolled_back]
    default: present
  site:
    description: A fortiauto site file; with I(device) this replaces every device argument below.
    type: path
  device:
    description: The device name (in the site file, or the name to report and journal under).
    type: str
    required: true
  url:
    description: The FortiGate's HTTPS API URL, e.g. C(https://fgt1.example.net:8443).
    type: str
  token:
    description: REST API token (Bearer).
    type: str
  token_file:
    description: File holding the REST API token.
    type: path
  username:
    description: Admin user for session login, instead of a token.
    type: str
  password:
    description: Password for I(username).
    type: str
  vdom:
    description: Default vdom of the device's mail servers.
    type: str
    default: root
  verify_tls:
    description: C(true), C(false) or the path of a CA bundle to verify the FortiGate's certificate.
    type: raw
    default: true
  timeout:
    description: Per-request API timeout in seconds.
    type: float
    default: 10
  mail_servers:
    description:
      - Mail servers behind the device, each shaped exactly like a site file's C(mail_servers) entry
        (name, policy, certificate, emailfilter_profile, ssl_profile, protocol_options, probe, fallback).
    type: list
    elements: dict
  run_id:
    description: Run id to journal under (share one across hosts so C(fortiauto rollback --run) undoes them together).
    type: str
  journal_dir:
    description: Where the journal is written.
    type: path
    default: .fortiauto/journal
  force:
    description: Change the device even when its baseline probe fails.
    type: bool
    default: false
  templates:
    description: A folder with your own copy of fortiauto's templates.
    type: path
requirements:
  - fortiauto (Python package) in the interpreter that runs the module
author:
  - fortiauto developers
"""

EXAMPLES = r"""
- name: Log and inspect inbound mail on every FortiGate
  fortiauto_smtp_inspection:
    device: "{{ inventory_hostname }}"
    url: "{{ fortiauto_url }}"
    token_file: "{{ fortiauto_token_file }}"
    verify_tls: "{{ fortiauto_ca }}"
    run_id: "{{ fortiauto_run_id }}"
    mail_servers: "{{ fortiauto_mail_servers }}"

- name: Same, from a fortiauto site file
  fortiauto_smtp_inspection:
    site: site.yml
    device: fgt-edge-1

- name: Undo run 20261124T221503Z-1a2b3c on this device
  fortiauto_smtp_inspection:
    state: rolled_back
    device: "{{ inventory_hostname }}"
    url: "{{ fortiauto_url }}"
    token_file: "{{ fortiauto_token_file }}"
    run_id: 20261124T221503Z-1a2b3c
"""

RETURN = r"""
status:
  description: unchanged, changed, rolled_back, skipped or failed (fortiauto's device status).
  returned: always
  type: str
  sample: changed
reason:
  description: Why the device ended in that status.
  returned: always
  type: str
changes:
  description: The changes planned (check mode) or made, each with task, path, mkey, vdom, action and diff.
  returned: always
  type: list
  elements: dict
probe:
  description: The last SMTP probe (passed, mode, failure_class, attempts, steps with timings).
  returned: when a probe ran
  type: dict
rolled_back:
  description: True when the change was undone (the device is back in its pre-change state).
  returned: always
  type: bool
fallback_used:
  description: The fallback rung that stuck, or null for the full fix.
  returned: always
  type: str
effect:
  description: logged when the probe's message reached the email filter log, not_logged, or unknown.
  returned: always
  type: str
run_id:
  description: The journal run id.
  returned: always
  type: str
requests:
  description: API requests made (total and writes).
  returned: always
  type: dict
left_over:
  description: For a failed rollback, exactly what could not be restored.
  returned: on failure
  type: list
  elements: str
"""

import asyncio  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:
    from fortiauto.errors import FortiautoError
    from fortiauto.integration import device_from_args, run_device_once, undo_device_run
except ImportError:  # pragma: no cover - reported by the module
    FORTIAUTO_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    FORTIAUTO_IMPORT_ERROR = None


def _diff(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for change in result["changes"]:
        before = {k: v["before"] for k, v in change["diff"].items()}
        after = {k: v["after"] for k, v in change["diff"].items()}
        header = f"{change['path']}/{change['mkey']} (vdom {change['vdom']})"
        out.append({"before_header": header, "after_header": header, "before": before, "after": after})
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "rolled_back"], "default": "present"},
            "site": {"type": "path"},
            "device": {"type": "str", "required": True},
            "url": {"type": "str"},
            "token": {"type": "str", "no_log": True},
            "token_file": {"type": "path"},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "vdom": {"type": "str", "default": "root"},
            "verify_tls": {"type": "raw", "default": True},
            "timeout": {"type": "float", "default": 10},
            "mail_servers": {"type": "list", "elements": "dict"},
            "run_id": {"type": "str"},
            "journal_dir": {"type": "path", "default": ".fortiauto/journal"},
            "force": {"type": "bool", "default": False},
            "templates": {"type": "path"},
        },
        mutually_exclusive=[["site", "url"], ["token", "token_file", "username"]],
        required_if=[["state", "rolled_back", ["run_id"]]],
        supports_check_mode=True,
    )
    if FORTIAUTO_IMPORT_ERROR:
        module.fail_json(msg="fortiauto is not installed in this interpreter", exception=FORTIAUTO_IMPORT_ERROR)
    params = module.params
    try:
        device, templates = device_from_args(params)
        journal_dir = Path(params["journal_dir"])
        if params["state"] == "rolled_back":
            result = asyncio.run(undo_device_run(device, journal_dir, params["run_id"], check=module.check_mode))
        else:
            result = asyncio.run(
                run_device_once(
                    device,
                    journal_dir=journal_dir,
                    run_id=params["run_id"],
                    check=module.check_mode,
                    force=params["force"],
                    templates=templates,
                )
            )
    except FortiautoError as exc:
        module.fail_json(msg=str(exc), status="failed", changed=False)
    status = result["status"]
    changed = status == "changed" or (params["state"] == "rolled_back" and status == "rolled_back")
    payload = dict(result, changed=changed, rolled_back=status == "rolled_back")
    if module._diff:  # noqa: SLF001 - AnsibleModule's documented diff flag
        payload["diff"] = _diff(result)
    failed = status == "failed" or (status == "rolled_back" and params["state"] == "present")
    if failed:
        module.fail_json(msg=f"{params['device']}: {result['reason']}", **payload)
    module.exit_json(**payload)


if __name__ == "__main__":
    main()
