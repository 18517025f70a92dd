#!/usr/bin/python
# Copyright: fortiauto developers
# Apache License 2.0 (see the fortiauto repository's LICENSE)
"""Ansible module: run the fortiauto engine for one FortiGate (check mode = plan, --diff = before/after).

Its action plugin of the same name runs it inside the controller's Ansible process; this file
holds the documentation and, should it ever run as a module, the same code path.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: smtp_inspection
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
    (the task fails, nothing changed) unless O(force=true).
  - The device and mail server settings come from module arguments (so inventory host and group
    vars can hold them), or from a fortiauto site file plus O(device).
  - A device of a site file that is routed through FortiManager (the site's C(fortimanager) block
    and the device's C(fortimanager) entry) is changed through FortiManager, as by C(fortiauto apply) -
    the objects are written in its ADOM and policy package (under the workspace lock when workspace
    mode is on), the package is installed to that one unit and read back there, then the probe runs;
    a failing probe undoes the objects in FortiManager and installs again. The unit's own REST API is
    only read (facts, the email filter log for the proof). Check mode plans against FortiManager's
    objects and only reads them - no FortiManager write, no workspace lock, no install - and
    C(--diff) shows their before and after. The result's RV(requests) holds what FortiManager
    received (C(requests.fortimanager) - requests, writes, installs, install task ids, the install
    preview). The journal names the route, so that O(state=rolled_back) and
    C(fortiauto rollback --run ID) undo through FortiManager and install again.
  - Module arguments cannot describe a FortiManager route (there are no FortiManager options);
    a FortiManager-managed unit given by arguments is refused before any write unless
    O(allow_fortimanager_managed=true) changes it locally, knowingly (FortiManager may overwrite it).
  - Runs on the controller, inside Ansible's own process (an action plugin), so that a fleet
    costs no Python process per host; the Python that runs Ansible needs fortiauto installed.
    Host connection variables are not used.
  - The task fails exactly when C(fortiauto apply) would end non-zero for the device - refused
    (FortiManager-managed, HA secondary, read-only token, another run holds the device's lock),
    skipped (mail already broken, outside the change window), rolled back, a fallback rung or an
    unproven effect, unreachable - so that a job never ends green while the fix is not in place.
  - The fleet settings of a site file (C(rollout) canary, batches) do not apply; use the play's
    C(serial) and C(max_fail_percentage). Its C(change_window) does apply.
options:
  state:
    description:
      - V(present) applies the change.
      - V(rolled_back) undoes this device's writes of run O(run_id) that are still pending in the journal.
      - The undo goes the way the run went - through FortiManager (then installed) when the journal
        names the device's FortiManager route, else directly; settings that would reach the device
        the other way (or by another route) are refused before any write.
    type: str
    choices: [present, rolled_back]
    default: present
  site:
    description:
      - A fortiauto site file; O(device) names the device in it.
      - Mutually exclusive with every device argument (O(url), O(token), O(token_file), O(username),
        O(password), O(vdom), O(verify_tls), O(timeout), O(allow_insecure_http),
        O(allow_fortimanager_managed), O(allow_newer_fortios), O(mail_servers)).
      - A device changed through FortiManager (the site's C(fortimanager) block and the device's
        C(fortimanager) entry) needs a site file; the run then goes through FortiManager.
    type: path
  device:
    description: The device name (in the site file, or the name to report and journal under).
    type: str
    required: true
  url:
    description: The FortiGate's HTTPS API URL, for example C(https://fgt1.example.net:8443).
    type: str
  token:
    description:
      - REST API token (sent as a Bearer header). Prefer O(token_file).
      - Without O(token), O(token_file) and O(username), the credentials come from the controller's
        environment - E(FORTIAUTO_TOKEN_<DEVICE>), else E(FORTIAUTO_USERNAME_<DEVICE>) and
        E(FORTIAUTO_PASSWORD_<DEVICE>), else the same without the suffix (E(FORTIAUTO_TOKEN) ...).
        C(<DEVICE>) is O(device) upper-cased with every other character as C(_)
        (C(fgt-001) - C(FGT_001)). An AWX credential type injects them (see the collection's README).
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
  allow_newer_fortios:
    description:
      - On a FortiOS family newer than the supported ones, try the newest known desired state
        (verified by reading it back) instead of refusing.
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
          profile_group:
            description:
              - When the policy applies a profile group (profile-type group), whose profiles act instead
                of the policy's own - V(refuse) (fortiauto's default) names the group and writes nothing;
                V(edit) sets the group's email filter, SSL/SSH and protocol options profiles to
                fortiauto's (its other profiles stay), which changes every policy applying the group
                too (the plan names them).
            type: str
            choices: [refuse, edit]
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
      spam_checks:
        description:
          - Anti-spam checks an email filter profile fortiauto creates performs (an existing profile
            is never changed here). fortiauto's default is FortiGuard IP, URL and checksum.
        type: list
        elements: str
        choices:
          [spamfsip, spamfsurl, spamfschksum, spamfsphish, spamfssubmit,
           spamhelodns, spamraddrdns, spamrbl, spamhdrcheck]
      allow_any_policy:
        description:
          - Change the named policy even when it does not look like the inbound mail policy.
        type: bool
      previous:
        description:
          - The policy's bindings before fortiauto, for C(fortiauto remove) (it restores exactly these).
        type: dict
        suboptions:
          ssl_profile:
            description: The policy's SSL/SSH inspection profile before fortiauto.
            type: str
            required: true
          emailfilter_profile:
            description: The policy's email filter profile before fortiauto (empty for none).
            type: str
            required: true
          protocol_options:
            description: The policy's protocol options profile before fortiauto.
            type: str
            required: true
          inspection_mode:
            description: The policy's inspection mode before fortiauto.
            type: str
            required: true
            choices: [flow, proxy]
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
          verify_chain:
            description:
              - Also verify the served certificate chain as strict senders do - V(true) (system trust
                store), V(false), or the path of a CA bundle. Needs O(mail_servers[].probe.server_name).
            type: raw
          via:
            description: Where the probe connects from - an SSH host or a SOCKS5 proxy (default this machine).
            type: dict
            suboptions:
              ssh:
                description: C(user@host[:port]) of an SSH host that opens the probe's connection.
                type: str
              socks5:
                description: C(host[:port]) of a SOCKS5 proxy (no authentication) that opens it.
                type: str
              key:
                description: SSH private key file.
                type: path
              known_hosts:
                description: File with the SSH host's key.
                type: path
              passphrase:
                description: Passphrase of the SSH key.
                type: str
          confirm_delivery:
            description:
              - Who confirms the probe message reached the mailbox - an installed confirmer's name
                (the built-in lab's is V(lab)), or a dict C(imap) with C(url), C(username), C(password),
                C(mailbox), C(timeout) and C(verify_tls).
              - Give the IMAP password as C(${env:NAME}) or C(${file:PATH}) - this option is not
                masked as a secret.
            type: raw
  run_id:
    description:
      - Run id to journal under (a plain name - letters, digits, C(-), C(_), C(.)).
      - Required with O(state=rolled_back).
      - When omitted, one id for the whole C(ansible-playbook) run is derived on the controller,
        the same for every host, batch (C(serial)) and C(--limit) - from AWX's job id
        (C(awx_job_id) or C(tower_job_id)) when present, else from the C(ansible-playbook) process.
    type: str
  journal_dir:
    description:
      - Where the journal is written (and read for O(state=rolled_back)).
      - Default as in the CLI - E(FORTIAUTO_JOURNAL_DIR), else C(.fortiauto/journal) beside the site
        file, or in the working directory.
      - An apply refuses to start unless the location is persistent - given on purpose (this
        option or E(FORTIAUTO_JOURNAL_DIR)) and outside the project checkout that AWX makes afresh
        for every job - or O(journal_ephemeral_ok=true).
      - The journal and the device locks' holder notes are the only files written; a run that
        changes nothing writes no journal.
    type: path
  journal_ephemeral_ok:
    description:
      - Apply even though the journal location is not known to outlive the job (a later rollback
        job may not find the run).
    type: bool
    default: false
  force:
    description: Change the device even when its baseline probe fails, or outside the site's change window.
    type: bool
    default: false
  templates:
    description: A folder with your own copy of fortiauto's desired-state templates.
    type: path
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads the device and returns the plan; zero writes, no probes, no journal.
      - For a device routed through FortiManager, FortiManager is only read too (no write, no
        lock, no install).
  diff_mode:
    description:
      Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Before and after of the managed keys of every object the run changes (or would change).
  action:
    description:
      Indicates this has a corresponding action plugin so some parts can be executed on the controller.
    support: full
    details: The whole module runs on the controller, inside Ansible's process.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: fortios
notes:
  - Ctrl-C or an AWX job cancel (Ansible stops its workers with SIGTERM) cancels each device in
    flight once; it rolls back what it wrote and ends its journal before its worker stops.
  - Enable the collection's callback C(fortiauto.fortigate.summary) for the run summary (status per
    device, the run id and the undo command), printed whatever happened to the play.
  - A site-file run can also be undone with C(fortiauto rollback --run ID) (through FortiManager for
    a device the run changed there).
seealso:
  - plugin: fortiauto.fortigate.summary
    plugin_type: callback
  - plugin: fortiauto.fortigate.site
    plugin_type: inventory
requirements:
  - fortiauto (Python package) in the Python that runs Ansible on the controller
author:
  - fortiauto developers (@fortiauto)
"""

EXAMPLES = r"""
- name: Log and inspect inbound mail (settings from inventory vars)
  fortiauto.fortigate.smtp_inspection:
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
  fortiauto.fortigate.smtp_inspection:
    site: site.yml
    device: fgt-edge-1

- name: A device routed through FortiManager in the site file (its fortimanager entry)
  fortiauto.fortigate.smtp_inspection:
    site: site.yml
    device: fgt-managed-1

- name: Plan only (what would change, with --diff the before/after)
  fortiauto.fortigate.smtp_inspection:
    site: site.yml
    device: fgt-edge-1
  check_mode: true
  register: fortiauto_plan

- name: Undo run 20261124T221503Z-1a2b3c on this device
  fortiauto.fortigate.smtp_inspection:
    state: rolled_back
    device: "{{ inventory_hostname }}"
    url: "{{ fortiauto_url }}"
    token_file: "{{ fortiauto_token_file }}"
    verify_tls: "{{ fortiauto_ca }}"
    run_id: 20261124T221503Z-1a2b3c
"""

RETURN = r"""
name:
  description: The device's name.
  returned: always
  type: str
  sample: fgt-003
policy_name:
  description: The name of the inbound policy the run found (or changed), when it has one.
  returned: when the engine ran
  type: str
config_revision:
  description:
    - The configuration revision saved on the unit before the first write (the run id is its
      comment), to restore with FortiOS's own tools; null when nothing was written.
  returned: when the engine ran
  type: str
evidence:
  description: The email filter log entry that proved the effect, or null.
  returned: when the engine ran
  type: dict
exit_code:
  description: What C(fortiauto apply) would exit with for this device alone; the task fails when it is not 0.
  returned: always
  type: int
  sample: 0
forced:
  description: True when O(force=true) let the change go ahead over a failing baseline probe.
  returned: when the engine ran
  type: bool
failure:
  description: The first failing probe after the change (stage and outcome), or null.
  returned: when the engine ran
  type: dict
timeline:
  description: The phases the device went through, with milliseconds each.
  returned: when the engine ran
  type: list
  elements: dict
msg:
  description: One line saying what happened (for a failure, why, and that the rollback is done).
  returned: always
  type: str
  sample: >-
    fgt-003: probe failed after change (full: F4 banner-timeout); rolled back, pre-change state verified
status:
  description:
    - fortiauto's device status - unchanged, changed, unproven, fallback, rolled_back, refused,
      skipped or failed.
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
  returned: when the engine ran
  type: list
  elements: dict
  sample: [{"task": "emailfilter", "path": "emailfilter/profile", "mkey": "mail-inbound", "vdom": "root",
            "action": "create", "diff": {"feature-set": {"before": null, "after": "proxy"}}}]
tasks:
  description: Per task, in apply order - whether it changed, which objects, and why not when it did not.
  returned: when the engine ran
  type: dict
  sample: {"policy": {"changed": false, "objects": [], "reasons": ["mx1/policy: already compliant"]}}
probe:
  description: The deciding SMTP probe (passed, mode, failure_class, attempts, steps with timings).
  returned: when the engine ran
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
  returned: when the engine ran
  type: str
  sample: certificate-inspection
effect:
  description: V(logged) when the probe's message reached the email filter log, V(not_logged), or V(unknown).
  returned: when the engine ran
  type: str
run_id:
  description: The journal run id.
  returned: always
  type: str
  sample: 20261124T221503Z-1a2b3c
journal:
  description: The journal file of the run; null when the run wrote nothing (no journal, nothing to undo).
  returned: always
  type: str
requests:
  description:
    - API requests made to the unit (total and writes).
    - For a device routed through FortiManager also C(fortimanager) - the route (url, adom, device,
      package, vdom), FortiManager's requests, writes, object changes, installs, install task ids
      and the install preview (secrets masked); the unit's own C(writes) stays 0.
  returned: when the engine ran
  type: dict
  sample: {"total": 14, "writes": 5}
noop_reasons:
  description: Per mail server and task that needs no change, why.
  returned: when the engine ran
  type: dict
plan_warnings:
  description: Warnings of the plan (also shown as Ansible warnings).
  returned: when the engine ran
  type: list
  elements: str
mttr_ms:
  description: Milliseconds from the first write until mail flowed again, after a rollback.
  returned: when the engine ran
  type: float
left_over:
  description: For a failed rollback, exactly what could not be restored (a human must look).
  returned: when the engine ran
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fortiauto.fortigate.plugins.module_utils.smtp_inspection import (
    ARGUMENT_RULES,
    ARGUMENT_SPEC,
    NOT_INSTALLED,
    ansible_result,
    error_result,
    journal_problem,
    run_engine,
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, **ARGUMENT_RULES)
    params = module.params
    try:
        from fortiauto.errors import FortiautoError
    except ImportError:
        module.fail_json(msg=NOT_INSTALLED)
    problem = None if module.check_mode else journal_problem(params)
    if problem:
        module.fail_json(msg=f"{params['device']}: {problem}; nothing was written", status="failed")
    try:
        result = run_engine(params, check=module.check_mode)
    except FortiautoError as exc:
        module.fail_json(**error_result(params["device"], exc, params["run_id"]))
    payload = ansible_result(params, result, check=module.check_mode, diff=module._diff)
    for warning in payload.pop("warnings", []):
        module.warn(warning)
    if payload["failed"]:
        module.fail_json(**payload)
    module.exit_json(**payload)


if __name__ == "__main__":
    main()
