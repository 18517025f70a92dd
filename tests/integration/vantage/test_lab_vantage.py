"""A full apply against the lab with ``defaults.probe.via``: every probe of the run goes through a real sshd.

The lab's data plane is the SMTP side (its VIP listener, proxy behaviour and backend); the
proof is sshd's own log of direct-tcpip channels to the VIP's port, and the lab's mailbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fortiauto.site import load_site
from fortiauto_lab.server import LabThread
from tests.integration.engine.labkit import Control, apply
from tests.integration.vantage.openssh import Sshd, needs_openssh

pytestmark = needs_openssh


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    thread = LabThread(tmp_path_factory.mktemp("lab"), devices=1, version="7.0")
    state = Path(thread.__enter__().state_dir)
    info: dict[str, Any] = json.loads((state / "lab.json").read_text())
    info["state_dir"] = state
    try:
        yield info
    finally:
        thread.__exit__(None, None, None)


def site_with_vantage(lab: dict[str, Any], sshd: Sshd) -> Path:
    yaml = YAML()
    site = lab["state_dir"] / "site.yml"
    data = yaml.load(site.read_text())
    data.setdefault("defaults", {})["probe"] = {
        "via": {"ssh": sshd.ssh, "key": str(sshd.user_key), "known_hosts": str(sshd.known_hosts)}
    }
    out = site.with_name("site-vantage.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


async def test_apply_probes_every_stage_from_the_ssh_host(lab, sshd: Sshd, tmp_path) -> None:
    device = lab["devices"][0]
    control = Control(device, str(lab["state_dir"] / "ca.pem"))
    control.reset()
    vip_ports = {s["port"] for s in device["smtp"]}
    try:
        site = site_with_vantage(lab, sshd)
        run = await apply(site, tmp_path / "journal")
        delivered = control.messages()
    finally:
        control.close()

    result = run.devices[0]
    assert result.status == "changed", result.reason
    data = run.to_json()["devices"][0]
    label = f"ssh {sshd.user}@127.0.0.1:{sshd.port}"
    assert data["probe"]["vantage"] == label
    forwarded = [to for _, _, _, to in sshd.forwarded()]
    probe_port = load_site(site).devices[0].mail_servers[0].probe.port
    assert probe_port in vip_ports
    assert [p["stage"] for p in data["probes"]] == ["baseline", "after"]
    assert all(p["vantage"] == label for p in data["probes"])
    # Every attempt of every stage went through its own channel from the SSH host to the VIP.
    assert forwarded == [probe_port] * sum(p["attempts"] for p in data["probes"])
    assert result.probe is not None
    assert result.probe.message_id
    assert any(m.get("message_id") == result.probe.message_id for m in delivered)
