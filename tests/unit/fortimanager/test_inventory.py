"""The inventory's renderings, from parsed devices: table, JSON shape, and the site-file skeleton."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from fortiauto.fortimanager import ManagedDevice
from fortiauto.fortimanager.inventory import render_table, site_skeleton

CLUSTER = ManagedDevice.from_fmg(
    {
        "name": "edge-ha",
        "sn": "FG100FTK0000001",
        "platform_str": "FortiGate-100F",
        "os_ver": 7,
        "mr": 2,
        "patch": 10,
        "ip": "192.0.2.20",
        "ha_mode": "AP",
        "ha_slave": [
            {"name": "edge-a", "sn": "FG100FTK0000001", "role": "master", "prio": 200},
            {"name": "edge-b", "sn": "FG100FTK0000002", "role": "slave", "prio": 100},
        ],
        "conn_status": "up",
        "conf_status": "outofsync",
        "db_status": "mod",
        "vdom": [
            {"name": "root"},
            {"name": "mail", "assignment info": [{"name": "mail-pkg", "type": "policy"}]},
        ],
    }
)
PLAIN = ManagedDevice.from_fmg(
    {
        "name": "branch-1",
        "platform_str": "FortiGate-60F",
        "os_ver": 7,
        "mr": 4,
        "patch": 5,
        "ip": "192.0.2.30",
        "conn_status": 1,
        "conf_status": 1,
        "vdom": [{"name": "root", "assignment info": [{"name": "branches", "type": "policy"}]}],
    }
)


def test_table() -> None:
    lines = render_table([PLAIN, CLUSTER]).splitlines()
    assert lines[1].split() == [
        "branch-1",
        "FortiGate-60F",
        "7.4.5",
        "standalone",
        "up",
        "insync",
        "unknown",
        "root:branches",
    ]
    assert lines[2].split()[:4] == ["edge-ha", "FortiGate-100F", "7.2.10", "a-p"]
    assert "(edge-a:p/edge-b:s)" in lines[2]
    assert "outofsync" in lines[2]
    assert lines[-1] == "2 device(s), 1 in sync"


def test_json_shape() -> None:
    data = CLUSTER.to_json()
    assert data["ha"] == {
        "mode": "a-p",
        "members": [
            {"name": "edge-a", "serial": "FG100FTK0000001", "role": "primary", "priority": 200},
            {"name": "edge-b", "serial": "FG100FTK0000002", "role": "secondary", "priority": 100},
        ],
    }
    assert data["packages"] == {"mail": "mail-pkg"}


def test_skeleton_copies_the_block_unresolved_and_routes_each_device(tmp_path: Path) -> None:
    source = tmp_path / "fmg.yml"
    source.write_text(
        "version: 1\nfortimanager:\n  url: https://fmg.example.net\n"
        "  token: ${env:FMG_API_KEY}  # the API key\n  adom: emea\n"
    )
    text = site_skeleton([CLUSTER, PLAIN], source)
    data = YAML(typ="safe").load(text)
    assert data["fortimanager"] == {
        "url": "https://fmg.example.net",
        "token": "${env:FMG_API_KEY}",
        "adom": "emea",
    }
    assert "# the API key" in text
    branch, cluster = data["devices"]
    assert branch == {
        "name": "branch-1",
        "url": "https://192.0.2.30",
        "token": "${file:tokens/branch-1.token}",
        "fortimanager": {"device": "branch-1", "package": "branches", "vdom": "root"},
    }
    assert cluster["fortimanager"] == {"device": "edge-ha", "package": "mail-pkg", "vdom": "mail"}
    assert "- name: edge-ha  # FortiGate-100F 7.2.10; HA a-p; FortiManager: up, outofsync" in text


def test_skeleton_marks_a_device_without_a_package(tmp_path: Path) -> None:
    source = tmp_path / "fmg.yml"
    source.write_text("version: 1\nfortimanager:\n  url: https://fmg.example.net\n  token: ${env:K}\n")
    lonely = ManagedDevice.from_fmg(
        {"name": "lab-1", "conn_status": 2, "conf_status": 0, "vdom": [{"name": "root"}]}
    )
    text = site_skeleton([lonely], source)
    assert "package: CHANGE-ME" in text
    assert "FortiManager: down, unknown; no policy package assigned" in text
