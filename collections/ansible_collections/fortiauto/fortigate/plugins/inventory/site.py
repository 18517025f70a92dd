# Copyright: fortiauto developers
# Apache License 2.0 (see the fortiauto repository's LICENSE)
"""Inventory plugin: a fortiauto site file as Ansible hosts, so one file serves the CLI and Ansible.

Each device of the site becomes a host of ``group`` whose variables point the collection's
module at the same site file (``fortiauto_site``, ``fortiauto_device``): URLs, credentials and
mail servers are read from the site file at run time and never copied into the inventory.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: site
short_description: Hosts from a fortiauto site file
version_added: "0.1.0"
description:
  - Reads a fortiauto site file and adds one host per device, in O(group), with the variables
    the collection's playbooks need - C(fortiauto_site) (the site file's absolute path) and
    C(fortiauto_device) - so that C(fortiauto.fortigate.smtp_inspection) takes URL, credentials
    and mail servers from the site file itself. One source of truth for C(fortiauto apply) and Ansible.
  - Adds C(fortiauto_site_device) per host for conditions and grouping (name, url, vdom, the mail
    servers' names; never a credential).
  - The configuration file's name must end in C(fortiauto.yml) or C(fortiauto.yaml).
author:
  - fortiauto developers (@fortiauto)
requirements:
  - fortiauto (Python package) in the Python that runs Ansible on the controller
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin; it makes the file a configuration of this plugin.
    type: str
    required: true
    choices: [fortiauto.fortigate.site]
  site:
    description: The fortiauto site file, relative to this configuration file.
    type: str
    required: true
  group:
    description: The group the devices join.
    type: str
    default: fortigates
  journal_dir:
    description:
      - Sets C(fortiauto_journal_dir) for every host (a persistent location, e.g. an AWX volume),
        relative to this configuration file.
      - Unset, the module's rules apply (E(FORTIAUTO_JOURNAL_DIR), else beside the site file).
    type: str
  validate:
    description:
      - V(true) loads the site file as C(fortiauto validate) does (every reference resolved, so
        token files and E(${env:...}) credentials must be there when the inventory is read).
      - V(false) only reads the device list, for an inventory sync that has no credentials.
    type: bool
    default: true
"""

EXAMPLES = r"""
# inventory/lab.fortiauto.yml
plugin: fortiauto.fortigate.site
site: ../lab-state/site.yml
journal_dir: /var/lib/fortiauto/journal
keyed_groups:
  - key: fortiauto_site_device.vdom
    prefix: vdom
"""

import os
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "fortiauto.fortigate.site"
    trusted_by_default = True  # names and paths from the operator's own site file, not from a remote source

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("fortiauto.yml", "fortiauto.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        here = os.path.dirname(os.path.abspath(path))
        site = os.path.join(here, os.path.expanduser(self.get_option("site")))
        devices = _validated(site) if self.get_option("validate") else _listed(site)
        group = self.inventory.add_group(self.get_option("group"))
        strict = self.get_option("strict")
        for device in devices:
            host = self.inventory.add_host(device["name"], group=group)
            facts = {
                "fortiauto_site": os.path.realpath(site),
                "fortiauto_device": device["name"],
                "fortiauto_site_device": device,
                "ansible_connection": "local",  # nothing runs on the host; the device is reached over HTTPS
            }
            if self.get_option("journal_dir"):
                facts["fortiauto_journal_dir"] = os.path.join(
                    here, os.path.expanduser(self.get_option("journal_dir"))
                )
            for key, value in facts.items():
                self.inventory.set_variable(host, key, value)
            self._set_composite_vars(self.get_option("compose"), facts, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), facts, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), facts, host, strict=strict)


def _validated(site: str) -> list[dict[str, Any]]:
    try:
        from fortiauto.errors import InputError
        from fortiauto.site.loader import load_site
    except ImportError as exc:
        raise AnsibleParserError(
            f"fortiauto is not installed in the Python that runs Ansible: {exc}"
        ) from None
    try:
        loaded = load_site(site)
    except InputError as exc:
        raise AnsibleParserError(f"fortiauto site file {site} is invalid:\n{exc}") from None
    return [
        {"name": d.name, "url": d.url, "vdom": d.vdom, "mail_servers": [ms.name for ms in d.mail_servers]}
        for d in loaded.devices
    ]


def _listed(site: str) -> list[dict[str, Any]]:
    import yaml

    try:
        with open(site, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise AnsibleParserError(f"cannot read fortiauto site file {site}: {exc}") from None
    devices = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(devices, list) or not all(isinstance(d, dict) and d.get("name") for d in devices):
        raise AnsibleParserError(f"fortiauto site file {site}: devices must be a list of named devices")
    defaults = data.get("defaults") or {}
    return [
        {
            "name": str(d["name"]),
            "url": str(d.get("url", "")),
            "vdom": str(d.get("vdom", defaults.get("vdom", "root"))),
            "mail_servers": [
                str(ms.get("name")) for ms in d.get("mail_servers") or [] if isinstance(ms, dict)
            ],
        }
        for d in devices
    ]
