"""Certificate task: import the mail server's certificate and key as a local certificate.

The object name is derived from the certificate (``fa-<mail server>-<sha256[:8]>``), so the same
certificate already on the device is a no-op and a different one never overwrites it
(FortiOS cannot replace a certificate by import anyway: fortios-objects.md §5.1). The key is
taken from the site at write time and never enters a Change, the journal or a report.
"""

from __future__ import annotations

import base64
from typing import Any

from fortiauto.certs import pem_fingerprint
from fortiauto.desired import certificate_name
from fortiauto.errors import FortiautoError, PlanError
from fortiauto.results import Change
from fortiauto.tasks.base import Diff, FortiOSApi, Target, Task

__all__ = ["CaCertificateTask", "CertificateTask"]

IMPORT_PATH = "vpn-certificate/local/import"


def _b64(text: str) -> str:
    # FortiOS wants base64 of the whole PEM file, with no newlines (fortios-objects.md §5.1).
    return base64.b64encode(text.encode()).decode()


class CertificateTask(Task, name="certificate"):
    path = "vpn.certificate/local"
    permission = ("vpngrp", None)
    label = "certificate"

    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> str:
        cert = target.mail_server.certificate
        return certificate_name(target.mail_server.name, cert.fingerprint_sha256)

    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None:
        return await api.get_one(self.path, self.mkey(target), vdom=target.vdom)

    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff:
        name = self.mkey(target)
        wanted = target.mail_server.certificate.fingerprint_sha256
        if current is None:
            after = {"name": name, "sha256": wanted}
            return Diff((self.change(target, "import", name, None, after),))
        pem = current.get("certificate")
        if isinstance(pem, str) and pem.strip() and pem_fingerprint(pem) != wanted:
            raise PlanError(
                f"certificate {name} exists on the device with a different certificate; "
                "fortiauto never overwrites a certificate"
            )
        return Diff(noop_reason=f"certificate {name} already imported (same SHA-256)")

    async def apply(self, api: FortiOSApi, change: Change, target: Target) -> Any:
        cert = target.mail_server.certificate
        body: dict[str, Any] = {
            "type": "regular",
            "certname": change.mkey,
            "scope": "vdom",
            "file_content": _b64(cert.cert_pem),
            "key_file_content": _b64(cert.key_pem.get_secret_value()),
        }
        if cert.passphrase is not None:
            body["password"] = cert.passphrase.get_secret_value()
        return await api.monitor_post(IMPORT_PATH, body, vdom=change.vdom)


class CaCertificateTask(Task, name="ca_certificate"):
    """The intermediates of the mail server's chain, as CA certificates the unit presents after the leaf.

    Created through the CMDB with fortiauto's own name (``fa-ca-<sha256[:8]>``; the table
    ``vpn.certificate/ca`` with ``name`` and ``ca`` as Terraform's ``fortios_vpncertificate_ca``
    writes it) rather than ``monitor/vpn-certificate/ca/import``, which lets FortiOS pick the
    name (``CA_Cert_N``) only after the write, so a journal could not undo it. An intermediate
    already on the unit under any name (the same certificate) is left alone.
    """

    path = "vpn.certificate/ca"
    permission = ("vpngrp", None)
    label = "CA certificate"

    def mkey(self, target: Target, current: dict[str, Any] | None = None) -> str:
        return ", ".join(str(c["name"]) for c in target.desired.get("certificates", []))

    async def read(self, api: FortiOSApi, target: Target) -> dict[str, Any] | None:
        rows = await api.get(self.path, vdom=target.vdom)
        return {"q_cas": {str(r.get("name")): str(r.get("ca") or "") for r in rows}}

    def diff(self, target: Target, current: dict[str, Any] | None) -> Diff:
        on_unit = (current or {}).get("q_cas", {})
        fingerprints = {_fingerprint(pem) for pem in on_unit.values() if pem}
        changes = []
        for wanted in target.desired.get("certificates", []):
            name, pem = str(wanted["name"]), str(wanted["ca"])
            if _fingerprint(pem) in fingerprints:
                continue
            if name in on_unit:
                raise PlanError(
                    f"CA certificate {name} exists on the device with another certificate; "
                    "fortiauto never overwrites a certificate"
                )
            after = {"name": name, "ca": pem, "range": "vdom"}
            changes.append(self.change(target, "create", name, None, after))
        if not changes:
            return Diff(
                noop_reason=f"CA certificates of the chain already on the device ({self.mkey(target)})"
            )
        return Diff(tuple(changes))

    async def apply(self, api: FortiOSApi, change: Change, target: Target) -> Any:
        return await api.create(change.path, change.after or {}, vdom=change.vdom, mkey=change.mkey)


def _fingerprint(pem: str) -> str | None:
    try:
        return pem_fingerprint(pem)
    except (ValueError, FortiautoError):
        return None
