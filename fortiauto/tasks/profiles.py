"""The three profile tasks: protocol options, SSL/SSH inspection profile, email filter profile.

Each is a named CMDB object the policy binds; the desired state decides the fields per FortiOS
release and model, the tasks create or update them key by key (see ``base.CmdbObjectTask``).
Two keys need more than a key-by-key comparison: the SSL/SSH profile's ``server-cert`` list
(7.x), where fortiauto adds and removes only its own entries and keeps every other certificate
of a shared profile, and an existing email filter profile that checks nothing, which the plan
reports (fortiauto enables spam checks only on a profile it creates).
"""

from __future__ import annotations

from typing import Any

from fortiauto.desired import CERT_NAME_PREFIX
from fortiauto.rotation import bound_certificates, merged_server_certs
from fortiauto.tasks.base import CmdbObjectTask, Target

__all__ = ["EmailFilterTask", "ProtocolOptionsTask", "SslProfileTask"]


class ProtocolOptionsTask(CmdbObjectTask, name="protocol_options"):
    path = "firewall/profile-protocol-options"
    permission = ("utmgrp", None)
    label = "protocol options"


class SslProfileTask(CmdbObjectTask, name="ssl_profile"):
    path = "firewall/ssl-ssh-profile"
    permission = ("utmgrp", None)
    label = "ssl-ssh-profile"
    # Factory profiles are read-only on FortiOS (fortios-objects.md, Gotchas 8).
    read_only = frozenset({"certificate-inspection", "deep-inspection", "no-inspection"})

    def wanted(self, target: Target, current: dict[str, Any] | None) -> dict[str, Any]:
        desired = super().wanted(target, current)
        certs = desired.get("server-cert")
        if current is None or not isinstance(certs, list) or current.get("server-cert-mode") != "replace":
            return desired  # outside replace mode the list is only re-sign's default: ours to set
        ours = [str(c["name"]) for c in certs if isinstance(c, dict) and c.get("name")]
        names = merged_server_certs(bound_certificates(current), ours)
        return desired | {"server-cert": [{"name": name} for name in names]}

    def notes(self, mkey: str | int, current: dict[str, Any]) -> tuple[str, ...]:
        """FortiOS 6.4 holds one ``server-cert``: replacing another site's certificate is said, loudly."""
        bound = current.get("server-cert")
        refs = current.get("q_ref")
        if (
            isinstance(bound, str)
            and bound
            and not bound.startswith(CERT_NAME_PREFIX)
            and current.get("server-cert-mode") == "replace"
            and isinstance(refs, int)
            and refs > 0
        ):
            return (
                f"{self.label} {mkey} presents certificate {bound} for {refs} object(s) now; on this "
                "release a profile holds one certificate, so fortiauto's replaces it for all of them: "
                "give the mail server its own ssl_profile if another site needs that certificate",
            )
        return ()


class EmailFilterTask(CmdbObjectTask, name="emailfilter"):
    path = "emailfilter/profile"
    permission = ("utmgrp", "emailfilter")
    label = "emailfilter profile"

    def notes(self, mkey: str | int, current: dict[str, Any]) -> tuple[str, ...]:
        checks = str(current.get("options") or "").split()
        if current.get("spam-filtering") == "enable" and checks:
            return ()
        why = "spam-filtering is disabled" if current.get("spam-filtering") != "enable" else "no options"
        return (
            f"{self.label} {mkey} performs no anti-spam check ({why}): it logs mail but inspects none; "
            "fortiauto turns checks on only in a profile it creates: enable spam filtering and the "
            "checks you want on it (e.g. spamfsip spamfsurl spamfschksum)",
        )
