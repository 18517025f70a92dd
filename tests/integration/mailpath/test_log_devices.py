"""Where the device logs: the lab's log settings per unit (``--log-device``), the log API answering
on that device's path only, and ``find_evidence`` reading the settings and finding the entry there.

The entries come from a real run: fortiauto applies the fix to a lab device, its probe goes through
the VIP, and the device logs the message wherever its settings say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fortiauto.fortios.connect import client_for
from fortiauto.probe.evidence import find_evidence, log_sources, parse_raw_log, read_log_settings
from fortiauto.site.loader import load_site
from fortiauto_lab.errors import LabInputError
from fortiauto_lab.server import LabThread, start_lab
from tests.integration.engine.labkit import apply

ON, OFF = {"status": "enable"}, {"status": "disable"}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"memory": ON, "disk": OFF, "fortianalyzer": OFF, "forticloud": OFF}, ["memory"]),
        ({"memory": OFF, "disk": ON, "fortianalyzer": OFF, "forticloud": OFF}, ["disk"]),
        ({"memory": ON, "disk": None, "fortianalyzer": ON, "forticloud": None}, ["memory", "fortianalyzer"]),
        (
            {"memory": OFF, "disk": ON, "fortianalyzer": ON, "forticloud": ON},
            ["disk", "fortianalyzer", "forticloud"],
        ),
        ({"memory": OFF, "disk": OFF, "fortianalyzer": OFF, "forticloud": OFF}, []),
        ({"memory": None, "disk": None, "fortianalyzer": None, "forticloud": None}, ["memory", "disk"]),
        ({"memory": {"status": "enable "}, "disk": {}}, []),  # only exactly "enable" counts
    ],
)
def test_log_sources(settings: dict[str, Any], expected: list[str]) -> None:
    assert log_sources(settings) == expected


def test_parse_raw_log() -> None:
    text = (
        'date=2026-12-01 time=09:50:01 logid="0508020503" policyid=7 subject="fortiauto probe a \\"b\\" c" '
        'action="log-only"\n\n'
        "date=2026-12-02 policyid=8 subject=bare\n"
    )
    first, second = parse_raw_log(text)
    assert first == {
        "date": "2026-12-01",
        "time": "09:50:01",
        "logid": "0508020503",
        "policyid": "7",
        "subject": 'fortiauto probe a "b" c',
        "action": "log-only",
    }
    assert second["subject"] == "bare"


async def test_log_device_must_be_known(tmp_path: Path) -> None:
    with pytest.raises(LabInputError, match="--log-device must be one of memory, disk, fortianalyzer"):
        await start_lab(tmp_path / "lab", log_device="syslog")


@pytest.mark.parametrize("log_device", ["memory", "disk", "fortianalyzer"])
async def test_the_fix_is_logged_where_the_device_logs(tmp_path: Path, log_device: str) -> None:
    with LabThread(tmp_path / "lab", log_device=log_device) as lab:
        site = load_site(lab.site_path)
        device = site.devices[0]
        async with client_for(device) as api:
            settings = await read_log_settings(api, "root")
            assert {name: (s or {}).get("status") for name, s in settings.items()} == {
                "disk": "enable" if log_device == "disk" else "disable",
                "memory": "enable" if log_device == "memory" else "disable",
                "fortianalyzer": "enable" if log_device == "fortianalyzer" else "disable",
                "forticloud": "disable",
            }

            run = await apply(lab.site_path, tmp_path / "journal")
            result = run.devices[0]
            # Mail flows with the fix in place; whether the engine proved it is the next test's matter.
            assert result.status in {"changed", "unproven"}, result.reason
            assert result.probe is not None
            assert result.probe.subject
            token = result.probe.subject.rsplit(maxsplit=1)[-1]

            evidence = await find_evidence(api, "root", token, polls=5, delay=0.2)
            assert evidence is not None
            assert evidence.source == log_device
            assert token in evidence.subject
            assert evidence.action == "log-only"
            assert evidence.logid == "0508020503"
            policy = (await api.get("firewall/policy", vdom="root"))[0]
            assert evidence.policy_id == policy["policyid"]
            assert evidence.time.startswith("20")

            # Every other device's path has nothing: a memory-only check would miss a disk unit's log.
            for other in ("memory", "disk", "fortianalyzer", "forticloud"):
                raw = await api.log_get(
                    f"{other}/emailfilter/raw", vdom="root", params={"filter": f"subject=@{token}"}
                )
                assert (token in str(raw)) is (other == log_device), other
                listed = await api.log_get(f"{other}/emailfilter", vdom="root")
                assert any(token in str(entry.get("subject")) for entry in listed) is (other == log_device)


async def test_switching_the_setting_moves_where_entries_show(tmp_path: Path) -> None:
    """The log API follows the unit's settings as they are now (a PUT over the REST API)."""
    with LabThread(tmp_path / "lab") as lab:
        device = load_site(lab.site_path).devices[0]
        async with client_for(device) as api:
            run = await apply(lab.site_path, tmp_path / "journal")
            assert run.devices[0].probe is not None
            token = (run.devices[0].probe.subject or "").rsplit(maxsplit=1)[-1]
            found = await find_evidence(api, "root", token, polls=5, delay=0.2)
            assert found is not None
            assert found.source == "memory"
            await api.update("log.memory/setting", "", {"status": "disable"}, vdom="root")
            assert await find_evidence(api, "root", token) is None
            assert log_sources(await read_log_settings(api, "root")) == []


@pytest.mark.parametrize("log_device", ["disk", "fortianalyzer"])
async def test_engine_proves_the_fix_where_the_unit_logs(tmp_path: Path, log_device: str) -> None:
    with LabThread(tmp_path / "lab", log_device=log_device) as lab:
        run = await apply(lab.site_path, tmp_path / "journal")
        result = run.devices[0]
        assert result.status == "changed", result.reason
        assert result.effect == "logged"
        assert result.effect_evidence is not None
        assert result.effect_evidence["source"] == log_device


async def test_engine_cannot_prove_the_fix_when_the_unit_logs_nowhere(tmp_path: Path) -> None:
    """No log device enabled: mail flows with the fix, but nothing can prove its effect."""
    with LabThread(tmp_path / "lab") as lab:
        device = load_site(lab.site_path).devices[0]
        async with client_for(device) as api:
            await api.update("log.memory/setting", "", {"status": "disable"}, vdom="root")
        run = await apply(lab.site_path, tmp_path / "journal")
        result = run.devices[0]
        assert result.effect == "unknown"
        assert result.effect_evidence is None
