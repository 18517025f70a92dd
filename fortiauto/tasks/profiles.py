"""The three profile tasks: protocol options, SSL/SSH inspection profile, email filter profile.

Each is a named CMDB object the policy binds; the templates decide the fields per FortiOS
release, the tasks only create or update them key by key (see ``base.CmdbObjectTask``).
"""

from __future__ import annotations

from fortiauto.tasks.base import CmdbObjectTask

__all__ = ["EmailFilterTask", "ProtocolOptionsTask", "SslProfileTask"]


class ProtocolOptionsTask(CmdbObjectTask, name="protocol_options"):
    path = "firewall/profile-protocol-options"
    label = "protocol options"


class SslProfileTask(CmdbObjectTask, name="ssl_profile"):
    path = "firewall/ssl-ssh-profile"
    label = "ssl-ssh-profile"
    # Factory profiles are read-only on FortiOS (fortios-objects.md, Gotchas 8).
    read_only = frozenset({"certificate-inspection", "deep-inspection", "no-inspection"})


class EmailFilterTask(CmdbObjectTask, name="emailfilter"):
    path = "emailfilter/profile"
    label = "emailfilter profile"
