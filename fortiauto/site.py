"""The site file: pydantic v2 models of ``site.yml`` and the loader that validates it.

First stage of the pipeline (site -> plan -> apply -> probe -> commit/rollback -> report).
``load_site(path)`` reads YAML with line numbers, resolves ``${env:X}`` / ``${file:P}``
references into secret strings, merges ``defaults`` into every device, validates, and
checks certificate files (PEM parses, key matches, passphrase opens it, not expired).
Every problem becomes a ``Problem`` (file, line, key path, one-line message) collected
into one ``SiteInvalid``; nothing is contacted.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "CertificateSpec",
    "ChangeWindow",
    "Device",
    "MailServer",
    "PolicyRef",
    "ProbeSpec",
    "ProbeTransaction",
    "Rollout",
    "Site",
]

ProbeMode = Literal["plain", "starttls", "smtps", "opportunistic"]
FallbackRung = Literal["certificate-inspection"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeTransaction(_Strict):
    mail_from: str
    rcpt_to: str


class ProbeSpec(_Strict):
    host: str
    port: int = Field(25, ge=1, le=65535)
    mode: ProbeMode = "starttls"
    server_name: str | None = None
    timeout: float = Field(10.0, gt=0)
    retries: int = Field(3, ge=1, le=10)
    retry_delay: float = Field(2.0, ge=0)
    ehlo: str = "probe.fortiauto.invalid"
    transaction: ProbeTransaction | None = None
    username: str | None = None
    password: SecretStr | None = None


class CertificateSpec(_Strict):
    """Where the mail server's certificate and key are; the loaded material sits beside it."""

    cert: Path
    key: Path
    passphrase: SecretStr | None = None
    # Filled by the loader after the files are checked (never from YAML):
    cert_pem: str = ""
    key_pem: SecretStr = SecretStr("")
    fingerprint_sha256: str = ""  # lowercase hex, of the leaf certificate's DER
    not_after: datetime | None = None
    sans: tuple[str, ...] = ()


class PolicyRef(_Strict):
    """Exactly one of ``id``, ``name`` or ``vip`` (the policy whose dstaddr holds that VIP)."""

    id: int | None = Field(None, ge=0)
    name: str | None = None
    vip: str | None = None


class MailServer(_Strict):
    name: str
    policy: PolicyRef
    certificate: CertificateSpec
    emailfilter_profile: str
    ssl_profile: str
    protocol_options: str
    probe: ProbeSpec
    fallback: tuple[FallbackRung, ...] = ()
    vdom: str | None = None  # overrides the device's vdom for this mail server


class Device(_Strict):
    """One FortiGate, with the site's ``defaults`` already merged in."""

    name: str
    url: str
    vdom: str = "root"
    verify_tls: bool | Path = True
    timeout: float = Field(10.0, gt=0)
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    allow_insecure_http: bool = False
    allow_fortimanager_managed: bool = False
    mail_servers: tuple[MailServer, ...] = ()


class ChangeWindow(_Strict):
    start: datetime
    end: datetime


class Rollout(_Strict):
    canary: int = Field(1, ge=0)
    batch_size: int = Field(10, ge=1)
    concurrency: int = Field(10, ge=1)
    max_failures: int | str = 1  # a count, or a percentage such as "10%"


class Site(_Strict):
    version: Literal[1]
    devices: tuple[Device, ...]
    change_window: ChangeWindow | None = None
    rollout: Rollout = Rollout()
    templates: Path | None = None
    # Filled by the loader:
    path: Path = Path("site.yml")

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def device(self, name: str) -> Device:
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)
