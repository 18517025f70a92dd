"""Helpers for the day-2 tests: renewed certificates, site variants per device, lab request windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from fortiauto.certs import load_certificate
from fortiauto.desired import certificate_name
from fortiauto.journal import read_journal
from tests.fixtures.make_certs import write_leaf

# Short probe budgets keep the failing cases quick; the lab's own site file uses 5 s.
FAST = {"timeout": 1.5, "retries": 2, "retry_delay": 0.1}


def renewed_certificate(
    state_dir: Path, stem: str, *, days: int = 90, sans: tuple[str, ...] = ("mx1.example.test",)
) -> dict[str, str]:
    """A new key and certificate beside the lab's (what certbot leaves after a renewal)."""
    now = datetime.now(UTC)
    cert, key = write_leaf(
        state_dir / "certs",
        stem,
        sans=sans,
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=days),
    )
    return {"cert": str(cert.relative_to(state_dir)), "key": str(key.relative_to(state_dir))}


def derived_name(state_dir: Path, cert: str, mail_server: str = "mx1") -> str:
    """The name fortiauto imports a certificate file under (``fa-<ms>-<sha256[:8]>``)."""
    info = load_certificate((state_dir / cert).read_text())
    return certificate_name(mail_server, info.fingerprint_sha256)


def fingerprint(state_dir: Path, cert: str) -> str:
    return load_certificate((state_dir / cert).read_text()).fingerprint_sha256


def site_copy(
    site: Path,
    name: str,
    *,
    device: dict[str, Any] | None = None,
    mail_server: dict[str, Any] | None = None,
    extra_servers: list[dict[str, Any]] | None = None,
) -> Path:
    """The lab's site file with device keys and first-mail-server keys changed (None removes a key)."""
    yaml = YAML()
    data = yaml.load(site.read_text())
    for dev in data["devices"]:
        _update(dev, device or {})
        _update(dev["mail_servers"][0], mail_server or {})
        dev["mail_servers"].extend(extra_servers or [])
    out = site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def _update(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key].update(value)
        else:
            target[key] = value


def journal_actions(journal_dir: Path, run_id: str) -> list[tuple[str, str, str]]:
    """(action, path, mkey) of every journaled write of a run, in order."""
    entries = read_journal(journal_dir / f"{run_id}.jsonl")
    return [
        (e["change"]["action"], e["change"]["path"], str(e["change"]["mkey"]))
        for e in entries
        if e.get("type") == "pre"
    ]


def writes_since(control: Any, mark: dict[str, Any]) -> int:
    return int(control.requests()["writes"]) - int(mark["writes"])


def as_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True)
