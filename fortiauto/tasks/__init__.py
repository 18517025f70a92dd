"""The tasks in the order they run: everything the policy references exists before it is bound.

Rollback runs this order backwards (un-bind first, then delete what this run created). A
certificate a rebind retires is deleted after all of them, once the probe has passed
(``rotation``).
"""

from fortiauto.tasks.base import REGISTRY, CmdbObjectTask, Diff, Target, Task, undo_change
from fortiauto.tasks.certificate import CertificateTask
from fortiauto.tasks.policy import PolicyTask, find_policy
from fortiauto.tasks.profiles import EmailFilterTask, ProtocolOptionsTask, SslProfileTask
from fortiauto.tasks.rotation import bound_certificates, expiry_warnings, retired_certificates, rotation_note

__all__ = [
    "ORDER",
    "REGISTRY",
    "CertificateTask",
    "CmdbObjectTask",
    "Diff",
    "EmailFilterTask",
    "PolicyTask",
    "ProtocolOptionsTask",
    "SslProfileTask",
    "Target",
    "Task",
    "bound_certificates",
    "expiry_warnings",
    "find_policy",
    "retired_certificates",
    "rotation_note",
    "undo_change",
]

ORDER: tuple[str, ...] = ("certificate", "protocol_options", "ssl_profile", "emailfilter", "policy")
