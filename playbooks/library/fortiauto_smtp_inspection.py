#!/usr/bin/python
"""Ansible module: run the fortiauto engine for one FortiGate (check mode = plan, --diff = before/after).

The module is a thin shell around ``fortiauto.api``: it turns Ansible arguments into
that module's calls and its result into an Ansible result (``changed``, ``failed``, ``skipped``,
``diff``). The engine itself (plan, journaled writes, probe, rollback) never knows it runs under
Ansible. It runs on the controller (``connection: local``) with an interpreter that has
fortiauto installed.
"""

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
    flowing, optionally trying the next rung of O(mail_servers[].fallback).
  - A probe failure is a failed task, reported after the rollback has restored the device and a
    confirming probe has run. A device whose mail is already broken before the change is skipped
    (the task reports C(skipped)) unless O(force=true).
  - The device and mail server settings come from module arguments (so inventory host and group
    vars can hold them), or from a fortiauto site file plus O(device).
  - "Runs on the controller (C(connection: local)) with an interpreter that has fortiauto installed."
  - The fleet settings of a site file (C(rollout) canary, batches) do not apply; use the play's
    C(serial) and C(max_fail_percentage). Its C(change_window) does apply.
options:
  state:
    description:
      - V(present) applies the change.
      - V(rolled_back) undoes this device's writes of run O(run_id) that are still pending in the journal.
    type: str
    choices: [present, rolled_back]
    default: present
  site:
    description:
      - A fortiauto site file; O(device) names the device in it.
      - Mutually exclusive with every device argument (O(url), O(token), O(token_file), O(username),
        O(password), O(vdom), O(verify_tls), O(timeout), O(allow_insecure_http),
        O(allow_fortimanager_managed), O(mail_servers)).
    type: path
  device:
    description: The device name (in the site file, or the name to report and journal under).
    type: str
    required: true
  url:
    description: The FortiGate's HTTPS API URL, for example C(https://fgt1.example.net:8443).
    type: str
  token:
    description: REST API token (sent as a Bearer header). Prefer O(token_file).
    type: str
  token_file:
    description: File holding the REST API token.
    type: path
  username:
    description: Admin user for session login, instead of a token.
    type: str
  password:
    description: Password for O(username).
    type: str
  vdom:
    description: Default vdom of the device's mail servers (fortiauto's default is C(root)).
    type: str
  verify_tls:
    description:
      - V(true), V(false) or the path of a CA bundle to verify the FortiGate's certificate.
      - fortiauto's default is V(true).
    type: raw
  timeout:
    description: Per-request API timeout in seconds (fortiauto's default is 10).
    type: float
  allow_insecure_http:
    description: Allow an C(http://) O(url) (credentials in clear text); for labs only.
    type: bool
  allow_fortimanager_managed:
    description:
      - Change the device even though FortiManager manages it (FortiManager may overwrite the change).
    type: bool
  mail_servers:
    description:
      - Mail servers behind the device, each shaped like a site file's C(mail_servers) entry.
      - Unset sub-options take the site file's defaults.
    type: list
    elements: dict
    suboptions:
      name:
        description: The mail server's name (certificate names are derived from it).
        type: str
        required: true
      policy:
        description: The inbound policy, by exactly one of C(id), C(name) or C(vip).
        type: dict
        required: true
        suboptions:
          id:
            description: Policy id.
            type: int
          name:
            description: Policy name.
            type: str
          vip:
            description: The VIP in the policy's destination addresses.
            type: str
      certificate:
        description: The mail server's own certificate and key (imported for Protecting SSL Server).
        type: dict
        required: true
        suboptions:
          cert:
            description: PEM certificate (chain) file.
            type: path
            required: true
          key:
            description: PEM private key file. The key never enters a result, a log or the journal.
            type: path
            required: true
          passphrase:
            description: Passphrase of an encrypted key.
            type: str
      emailfilter_profile:
        description: Email filter profile to create or update.
        type: str
        required: true
      ssl_profile:
        description: SSL/SSH inspection profile (Protecting SSL Server) to create or update.
        type: str
        required: true
      protocol_options:
        description: Protocol options profile to create or update.
        type: str
        required: true
      vdom:
        description: This mail server's vdom, instead of the device's.
        type: str
      fallback:
        description:
          - Less intrusive rungs to try, in order, when the probe fails after the full change.
          - An empty list means roll back and fail.
        type: list
        elements: str
      probe:
        description: How to reach the mail server through the VIP, and what a passing probe is.
        type: dict
        required: true
        suboptions:
          host:
            description: Where the VIP answers (IP or DNS name).
            type: str
            required: true
          port:
            description: SMTP port (fortiauto's default is 25).
            type: int
          mode:
            description: How the probe speaks (fortiauto's default is V(starttls)).
            type: str
            choices: [plain, starttls, smtps, opportunistic]
          server_name:
            description: TLS server name (SNI) and the name the certificate must carry.
            type: str
          timeout:
            description: Seconds per probe step (fortiauto's default is 10).
            type: float
          retries:
            description: Attempts before the probe fails (fortiauto's default is 3).
            type: int
          retry_delay:
            description: Seconds between attempts (fortiauto's default is 2).
            type: float
          ehlo:
            description: The EHLO name the probe sends.
            type: str
          transaction:
            description: A test message sent through the VIP; without it the probe stops after EHLO/TLS.
            type: dict
            suboptions:
              mail_from:
                description: MAIL FROM address.
                type: str
                required: true
              rcpt_to:
                description: RCPT TO address.
                type: str
                required: true
          username:
            description: SMTP AUTH user.
            type: str
          password:
            description: SMTP AUTH password.
            type: str
          confirm_delivery:
            description: Who confirms the probe message reached the mail server (only the built-in lab can).
            type: str
            choices: [lab]
  run_id:
    description:
      - Run id to journal under; share one across the hosts of a play so that they can be undone
        together (C(playbooks/site.yml) does).
      - Required with O(state=rolled_back). A new id is made when omitted.
    type: str
  journal_dir:
    description:
      - Where the journal is written (and read for O(state=rolled_back)).
      - Default as in the CLI - E(FORTIAUTO_JOURNAL_DIR), else C(.fortiauto/journal) beside the site
        file, or in the working directory.
    type: path
  force:
    description: Change the device even when its baseline probe fails, or outside the site's change window.
    type: bool
    default: false
  templates:
    description: A folder with your own copy of fortiauto's desired-state templates.
    type: path
attributes:
  check_mode:
    support: full
    details: Reads the device and returns the plan; zero writes, no probes, no journal.
  diff_mode:
    support: full
    details: Before and after of the managed keys of every object the run changes (or would change).
notes:
  - "Run with C(connection: local) and an C(ansible_python_interpreter) that has fortiauto installed."
  - A site-file run can also be undone with C(fortiauto rollback --run ID).
requirements:
  - fortiauto (Python package) in the interpreter that runs the module
author:
  - fortiauto developers
"""

EXAMPLES = r"""
- name: Log and inspect inbound mail (settings from inventory vars)
  fortiauto_smtp_inspection:
    device: "{{ inventory_hostname }}"
    url: "{{ fortiauto_url }}"
    token_file: "{{ fortiauto_token_file }}"
    verify_tls: "{{ fortiauto_ca }}"
    run_id: "{{ fortiauto_run_id }}"
    mail_servers:
      - name: mx1
        policy: {vip: vip-mx1}
        certificate: {cert: certs/mx1.pem, key: certs/mx1.key}
        emailfilter_profile: mail-inbound
        ssl_profile: protect-mx1
        protocol_options: smtp-inbound
        probe:
          host: mx1.example.net
          port: 25
          mode: starttls
          server_name: mx1.example.net
          transaction: {mail_from: probe@example.net, rcpt_to: postmaster@example.net}
        fallback: [certificate-inspection]

- name: Same, from a fortiauto site file
  fortiauto_smtp_inspection:
    site: site.yml
    device: fgt-edge-1

- name: Plan only (what would change, with --diff the before/after)
  fortiauto_smtp_inspection:
    site: site.yml
    device: fgt-edge-1
  check_mode: true
  register: fortiauto_plan

- name: Undo run 20261124T221503Z-1a2b3c on this device
  fortiauto_smtp_inspection:
    state: rolled_back
    device: "{{ inventory_hostname }}"
    url: "{{ fortiauto_url }}"
    token_file: "{{ fortiauto_token_file }}"
    verify_tls: "{{ fortiauto_ca }}"
    run_id: 20261124T221503Z-1a2b3c
"""

RETURN = r"""
msg:
  description: One line saying what happened (for a failure, why, and that the rollback is done).
  returned: always
  type: str
  sample: "fgt-003: probe failed after change (full: F4 banner-timeout); rolled back, pre-change state verified"
status:
  description: fortiauto's device status - unchanged, changed, rolled_back, skipped or failed.
  returned: always
  type: str
  sample: changed
reason:
  description: Why the device ended in that status.
  returned: always
  type: str
  sample: applied and probe passed
changes:
  description:
    - The changes planned (check mode), made, or undone - each with task, path, mkey, vdom, action,
      and diff (per changed key, before and after).
  returned: always
  type: list
  elements: dict
  sample: [{"task": "emailfilter", "path": "emailfilter/profile", "mkey": "mail-inbound", "vdom": "root",
            "action": "create", "diff": {"feature-set": {"before": null, "after": "proxy"}}}]
tasks:
  description: Per task, in apply order - whether it changed, which objects, and why not when it did not.
  returned: always
  type: dict
  sample: {"policy": {"changed": false, "objects": [], "reasons": ["mx1/policy: already compliant"]}}
probe:
  description: The deciding SMTP probe (passed, mode, failure_class, attempts, steps with timings).
  returned: always
  type: dict
probes:
  description: Every probe stage that ran (baseline, after, delivery, confirm) with its outcome.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{"stage": "after", "passed": false, "failure_class": "F4 banner-timeout", "attempts": 2}]
rolled_back:
  description: True when the change was undone (the device is back in its pre-change state).
  returned: always
  type: bool
fallback_used:
  description: The fallback rung that stuck, or null for the full fix.
  returned: always
  type: str
  sample: certificate-inspection
effect:
  description: V(logged) when the probe's message reached the email filter log, V(not_logged), or V(unknown).
  returned: always
  type: str
run_id:
  description: The journal run id.
  returned: always
  type: str
  sample: 20261124T221503Z-1a2b3c
journal:
  description: The journal file of the run.
  returned: always
  type: str
requests:
  description: API requests made (total and writes).
  returned: always
  type: dict
  sample: {"total": 14, "writes": 5}
noop_reasons:
  description: Per mail server and task that needs no change, why.
  returned: always
  type: dict
plan_warnings:
  description: Warnings of the plan (also shown as Ansible warnings).
  returned: always
  type: list
  elements: str
mttr_ms:
  description: Milliseconds from the first write until mail flowed again, after a rollback.
  returned: always
  type: float
left_over:
  description: For a failed rollback, exactly what could not be restored (a human must look).
  returned: always
  type: list
  elements: str
"""

import asyncio  # noqa: E402 - after the documentation blocks, as Ansible modules are laid out
import traceback  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:
    from fortiauto.errors import FortiautoError
    from fortiauto.api import resolve_device, run_device_once, undo_device_run
except ImportError:  # reported by main() with the interpreter's traceback
    FORTIAUTO_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    FORTIAUTO_IMPORT_ERROR = None

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
    "confirm_delivery": {"type": "str", "choices": ["lab"]},
}

_MAIL_SERVER_OPTIONS: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "policy": {
        "type": "dict",
        "required": True,
        "options": {"id": {"type": "int"}, "name": {"type": "str"}, "vip": {"type": "str"}},
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
    "mail_servers": {"type": "list", "elements": "dict", "options": _MAIL_SERVER_OPTIONS},
    "run_id": {"type": "str"},
    "journal_dir": {"type": "path"},
    "force": {"type": "bool", "default": False},
    "templates": {"type": "path"},
}


def _outcome(module: AnsibleModule, result: dict[str, Any]) -> None:
    """Exit with fortiauto's device result as an Ansible result: changed, failed or skipped."""
    params = module.params
    undoing = params["state"] == "rolled_back"
    status = result["status"]
    plan_warnings = result.pop("warnings", [])
    for warning in [*plan_warnings, *result.pop("notes", [])]:
        module.warn(f"{params['device']}: {warning}")
    diff = result.pop("diff")
    payload = dict(
        result,
        plan_warnings=plan_warnings,
        changed=status == ("rolled_back" if undoing else "changed"),
        rolled_back=status == "rolled_back",
        msg=_message(params["device"], result, check=module.check_mode),
    )
    if module._diff:  # noqa: SLF001 - AnsibleModule's own flag for --diff
        payload["diff"] = diff
    if status == "failed" or (status == "rolled_back" and not undoing):
        module.fail_json(**payload)
    if status == "skipped":
        payload["skipped"] = True
    module.exit_json(**payload)


def _message(device: str, result: dict[str, Any], *, check: bool) -> str:
    text = f"{device}: {result['reason']}"
    confirm = [p for p in result.get("probes", []) if p["stage"] == "confirm"]
    if result["status"] == "rolled_back" and confirm and all(p["passed"] for p in confirm):
        text += "; mail flows again (confirming probe passed)"
    if result.get("left_over"):
        text += f"; left over: {'; '.join(result['left_over'])}; undo with state=rolled_back run_id={result['run_id']}"
    if result["status"] == "changed" and not check:
        text += f"; effect {result['effect']}"
    return text


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[["token", "token_file"], ["token", "username"], ["token_file", "username"]],
        required_together=[["username", "password"]],
        required_if=[["state", "rolled_back", ["run_id"]]],
        supports_check_mode=True,
    )
    if FORTIAUTO_IMPORT_ERROR:
        module.fail_json(
            msg="fortiauto is not installed in the interpreter that runs this module "
            "(set ansible_python_interpreter to one that has it)",
            exception=FORTIAUTO_IMPORT_ERROR,
        )
    params = module.params
    try:
        source = resolve_device(params)
        if params["state"] == "rolled_back":
            result = asyncio.run(undo_device_run(source, params["run_id"], check=module.check_mode))
        else:
            result = asyncio.run(
                run_device_once(source, run_id=params["run_id"], check=module.check_mode, force=params["force"])
            )
    except FortiautoError as exc:
        # Nothing was written: bad arguments, a refused window or lock, a missing journal.
        module.fail_json(msg=f"{params['device']}: {exc}", status="failed", changed=False, rolled_back=False)
    _outcome(module, result)


if __name__ == "__main__":
    main()
