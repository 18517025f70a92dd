"""Bad device state: a clear error and nothing written, or everything undone."""

from __future__ import annotations

import shutil
from pathlib import Path

from ruamel.yaml import YAML

from fortiauto.desired import templates_dir
from tests.integration.engine.labkit import apply, site_variant

FAST = {"timeout": 1.5, "retries": 1, "retry_delay": 0.1}


async def test_unknown_vdom_is_refused_with_zero_writes(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    control = lab.control()
    writes = control.requests()["writes"]
    run = await apply(site_variant(lab.site, "badvdom", vdom="nope", probe=FAST), tmp_path / "j")
    device = run.devices[0]
    assert device.status == "failed"
    assert run.exit_code == 2
    assert "nope" in device.reason
    assert control.requests()["writes"] == writes


async def test_missing_vip_is_refused_with_zero_writes(lab_factory, tmp_path):
    lab = lab_factory("7.2")
    control = lab.control()
    writes = control.requests()["writes"]
    site = site_variant(lab.site, "novip", policy={"vip": "vip-missing"}, probe=FAST)
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "failed"
    assert run.exit_code == 2
    assert "no accept policy to VIP 'vip-missing'" in device.reason
    assert control.requests()["writes"] == writes


async def test_fortios_rejecting_a_value_rolls_back_and_shows_cli_error(lab_factory, tmp_path):
    lab = lab_factory("7.4")
    control = lab.control()
    pristine = control.state()
    custom = tmp_path / "templates"
    shutil.copytree(templates_dir(), custom)
    desired = custom / "desired" / "recommended.yaml.j2"
    desired.write_text(desired.read_text().replace("spam-log: enable", "spam-log: sometimes"))
    yaml = YAML()
    site_file = Path(site_variant(lab.site, "badvalue", probe=FAST))
    data = yaml.load(site_file.read_text())
    data["templates"] = str(custom)
    with site_file.open("w") as handle:
        yaml.dump(data, handle)
    run = await apply(site_file, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "rolled_back", device.reason
    assert run.exit_code == 3
    assert "cli_error" in device.reason
    assert "spam-log" in device.reason
    assert control.state() == pristine
