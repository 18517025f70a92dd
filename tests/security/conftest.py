"""A lab started the way users start it (``fortiauto lab up`` as a process) and the secret canaries.

The canaries are the secrets fortiauto handles: the device's API token, its admin password (for
session login), a private-key passphrase and the private key itself (its PEM lines and the
base64 form the certificate import sends). They are random per run, so any hit is a leak.
"""

from __future__ import annotations

import base64
import json
import secrets
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from ruamel.yaml import YAML

from tests.chaos.chaoskit import cli_command, cli_env
from tests.integration.engine.labkit import Control

_READY_TIMEOUT = 60


@dataclass
class SecLab:
    pid: int
    state_dir: Path
    info: dict[str, Any] = field(repr=False)
    control: Control = field(repr=False)

    @property
    def site(self) -> Path:
        return self.state_dir / "site.yml"

    @property
    def device(self) -> dict[str, Any]:
        return dict(self.info["devices"][0])


def _wait_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    end = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < end:
        if selector.select(timeout=0.2):
            line = process.stdout.readline()
            if line.startswith("lab ready:") or not line:
                return line
    return ""


@pytest.fixture(scope="session")
def sec_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecLab]:
    state_dir = tmp_path_factory.mktemp("sec-lab")
    process = subprocess.Popen(
        cli_command("lab", "up", "--devices", "1", "--state-dir", str(state_dir)),
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = _wait_ready(process)
        assert line.startswith("lab ready:"), f"lab did not start: {line!r}"
        info = json.loads((state_dir / "lab.json").read_text())
        control = Control(info["devices"][0], str(state_dir / "ca.pem"))
        yield SecLab(process.pid, state_dir, info, control)
        control.close()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()


@dataclass(frozen=True)
class Canaries:
    """Secret values and the files that carry them into fortiauto."""

    values: dict[str, str] = field(repr=False)
    key_path: Path
    password_file: Path

    def found_in(self, text: str) -> list[str]:
        return sorted(name for name, value in self.values.items() if value in text)


def _key_lines(pem: str) -> dict[str, str]:
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    # Any full base64 line of the key body is unique to this key; the first, a middle and the last.
    picks = {"key-pem-first": body[0], "key-pem-middle": body[len(body) // 2], "key-pem-last": body[-1]}
    return {name: line for name, line in picks.items() if len(line) >= 16}


@pytest.fixture(scope="session")
def canaries(sec_lab: SecLab, tmp_path_factory: pytest.TempPathFactory) -> Canaries:
    where = tmp_path_factory.mktemp("canaries")
    passphrase = f"pp-canary-{secrets.token_hex(8)}"
    plain = (sec_lab.state_dir / "certs" / "mx1.key").read_bytes()
    key = serialization.load_pem_private_key(plain, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    key_path = where / "mx1-encrypted.key"
    key_path.write_bytes(encrypted)
    key_path.chmod(0o600)
    password_file = where / "admin.password"
    password_file.write_text(sec_lab.device["password"])
    password_file.chmod(0o600)
    values = {
        "token": sec_lab.device["token"],
        "admin-password": sec_lab.device["password"],
        "passphrase": passphrase,
        # What the certificate import sends: base64 of the whole (encrypted) key file.
        "key-import-b64": base64.b64encode(encrypted).decode()[40:104],
        **{f"plain-{k}": v for k, v in _key_lines(plain.decode()).items()},
        **{f"encrypted-{k}": v for k, v in _key_lines(encrypted.decode()).items()},
    }
    return Canaries(values, key_path, password_file)


def site_variant(lab: SecLab, name: str, *, auth: str, canaries: Canaries, **defaults: Any) -> Path:
    """The lab's site with the encrypted key (passphrase from the environment) and token or password auth."""
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    data["defaults"].update(defaults)
    for device in data["devices"]:
        if auth == "password":
            device.pop("token")
            device["username"] = lab.device["username"]
            device["password"] = f"${{file:{canaries.password_file}}}"
        for server in device["mail_servers"]:
            server["certificate"]["key"] = str(canaries.key_path)
            server["certificate"]["passphrase"] = "${env:MX1_KEY_PASSPHRASE}"
            server["probe"].update({"timeout": 1.0, "retries": 1, "retry_delay": 0.1})
            server.pop("fallback", None)
    out = lab.site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out
