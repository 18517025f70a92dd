"""Test helpers around a running lab: its control API, pyfortiapi as the independent checker,
and fortiauto's own pipeline run in-process (the CLI is driven by subprocess in tests/e2e)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyfortiapi
from ruamel.yaml import YAML

from fortiauto.fleet import FleetOptions, new_run_id, rollback_run, run_fleet
from fortiauto.fortios.connect import client_for
from fortiauto.probe import run_probe
from fortiauto.probe.delivery import SiteDelivery
from fortiauto.results import RunResult
from fortiauto.site.loader import load_site


class Control:
    """The lab's ``/__lab__/`` control API for one device."""

    def __init__(self, device: dict[str, Any], ca: str) -> None:
        self.device = device
        self.http = httpx.Client(
            base_url=device["url"],
            verify=ssl.create_default_context(cafile=ca),
            headers={"Authorization": f"Bearer {device['token']}"},
            timeout=10,
        )

    def state(self) -> bytes:
        response = self.http.get("/__lab__/state")
        response.raise_for_status()
        return response.content

    def requests(self) -> dict[str, Any]:
        response = self.http.get("/__lab__/requests")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def faults(self, spec: str | dict[str, Any]) -> None:
        # The control API takes a fault list ("a,b=3") or a JSON object ({} clears every fault).
        body = json.dumps(spec) if isinstance(spec, dict) else spec
        response = self.http.post("/__lab__/faults", content=body)
        response.raise_for_status()

    def messages(self) -> list[dict[str, Any]]:
        response = self.http.get("/__lab__/messages")
        response.raise_for_status()
        data = response.json()
        return list(data.get("messages", data) if isinstance(data, dict) else data)

    def reset(self) -> None:
        self.http.post("/__lab__/reset").raise_for_status()

    def close(self) -> None:
        self.http.close()


def pyfortiapi_for(device: dict[str, Any], ca: str, monkeypatch: Any) -> pyfortiapi.FortiGate:
    """An independent, third-party client logged in with the admin password (not fortiauto's).

    pyfortiapi passes ``verify`` to its login only; requests' REQUESTS_CA_BUNDLE is the one seam
    that makes its later calls trust the lab CA too.
    """
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    url = urlsplit(device["url"])
    return pyfortiapi.FortiGate(
        ipaddr=url.hostname,
        username=device["username"],
        password=device["password"],
        port=str(url.port),
        verify=ca,
    )


def cmdb(fgt: pyfortiapi.FortiGate, path: str) -> Any:
    return fgt.get(fgt.urlbase + "api/v2/cmdb/" + path)


async def apply(site_path: Path, journal_dir: Path, **options: Any) -> RunResult:
    site = load_site(site_path)
    return await run_fleet(
        site,
        options=FleetOptions(run_id=new_run_id(), journal_dir=journal_dir, **options),
        client_factory=client_for,
        prober=run_probe,
        delivery=SiteDelivery(),
    )


async def rollback_last(journal_dir: Path) -> RunResult:
    return await rollback_run(journal_dir, client_factory=client_for)


def site_variant(site: Path, name: str, *, probe: dict[str, Any] | None = None, **mail_server: Any) -> Path:
    """A copy of the lab's site file beside it (relative paths keep working) with mail-server keys changed.

    A value of None removes the key (e.g. ``fallback=None``).
    """
    yaml = YAML()
    data = yaml.load(site.read_text())
    for device in data["devices"]:
        for ms in device["mail_servers"]:
            ms["probe"].update(probe or {})
            for key, value in mail_server.items():
                if value is None:
                    ms.pop(key, None)
                else:
                    ms[key] = value
    out = site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out
