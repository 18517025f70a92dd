"""The tasks in the order they run: everything the policy references exists before it is bound.

Rollback runs this order backwards (un-bind first, then delete what this run created). A
certificate a rebind retires is deleted after all of them, once the probe has passed
(``fortiauto.rotation`` decides which, ``transaction.retire`` deletes it).
"""

from fortiauto.tasks.base import REGISTRY, CmdbObjectTask, Diff, Target, Task
from fortiauto.tasks.certificate import CaCertificateTask, CertificateTask
from fortiauto.tasks.policy import PolicyTask, find_policy
from fortiauto.tasks.profile_group import ProfileGroupTask
from fortiauto.tasks.profiles import EmailFilterTask, ProtocolOptionsTask, SslProfileTask

__all__ = [
    "ORDER",
    "REGISTRY",
    "CaCertificateTask",
    "CertificateTask",
    "CmdbObjectTask",
    "Diff",
    "EmailFilterTask",
    "PolicyTask",
    "ProfileGroupTask",
    "ProtocolOptionsTask",
    "SslProfileTask",
    "Target",
    "Task",
    "find_policy",
]

ORDER: tuple[str, ...] = (
    "ca_certificate",  # only when the mail server's certificate file carries a chain
    "certificate",
    "protocol_options",
    "ssl_profile",
    "emailfilter",
    "profile_group",  # only with policy.profile_group: edit, on a policy with profile-type group
    "policy",
)
