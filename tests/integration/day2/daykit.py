"""Helpers for the day-2 tests: renewed certificates, site variants per device, lab request windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
from ruamel.yaml import YAML

from fortiauto.certs import load_certificate
from fortiauto.desired import certificate_name
from fortiauto.journal import read_journal
from tests.fixtures.make_certs import issue, new_ca, write_leaf

# Short probe budgets keep the failing cases quick; the lab's own site file uses 5 s.
FAST = {"timeout": 1.5, "retries": 2, "retry_delay": 0.1}


def lab_ca(state_dir: Path) -> trustme.CA:
    """The CA that signed the lab's mail certificates (a renewal by the same issuer uses it)."""
    return trustme.CA.from_pem((state_dir / "ca.pem").read_bytes(), (state_dir / "ca.key").read_bytes())


def renewed_certificate(
    state_dir: Path,
    stem: str,
    *,
    days: int = 90,
    sans: tuple[str, ...] = ("mx1.example.test",),
    issuer: trustme.CA | None = None,
) -> dict[str, str]:
    """A new key and certificate beside the lab's (what certbot leaves after a renewal).

    Signed by the lab's own CA, as an ordinary renewal by the same issuer, unless ``issuer``.
    """
    now = datetime.now(UTC)
    cert, key = write_leaf(
        state_dir / "certs",
        stem,
        sans=sans,
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=days),
        issuer=issuer or lab_ca(state_dir),
    )
    return {"cert": str(cert.relative_to(state_dir)), "key": str(key.relative_to(state_dir))}


def renewed_by_another_ca(
    state_dir: Path, stem: str, *, sans: tuple[str, ...] = ("mx1.example.test",)
) -> tuple[dict[str, str], Path]:
    """A renewal by another CA: leaf + its intermediate in the file (a fullchain), and the new root.

    Returns the site's certificate entry and the new root's PEM file (for a trust bundle).
    """
    root = new_ca()
    intermediate = root.create_child_ca()
    now = datetime.now(UTC)
    leaf = issue(intermediate, sans, not_before=now - timedelta(hours=1), not_after=now + timedelta(days=90))
    certs = state_dir / "certs"
    cert, key, root_file = certs / f"{stem}.pem", certs / f"{stem}.key", certs / f"{stem}-root.pem"
    cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))  # leaf, then intermediate
    key.write_bytes(leaf.private_key_pem.bytes())
    root_file.write_bytes(root.cert_pem.bytes())
    return {"cert": str(cert.relative_to(state_dir)), "key": str(key.relative_to(state_dir))}, root_file


def trust_bundle(path: Path, *cas: Path) -> Path:
    """A CA bundle file holding the given CA certificates (a site's verify_chain, or SSL_CERT_FILE)."""
    path.write_bytes(b"".join(ca.read_bytes() for ca in cas))
    return path


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
