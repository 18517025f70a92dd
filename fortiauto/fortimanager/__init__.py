"""FortiManager: the async JSON-RPC client and what it reports (devices, tasks, revisions, locks).

The FortiManager transaction of a managed FortiGate goes through ``FortiManagerClient``; errors
are ``fortiauto.errors.FortiManagerError`` and kin, mapped at one boundary (``errormap.py``).
"""

from fortiauto.fortimanager.client import FortiManagerClient, RequestCounts
from fortiauto.fortimanager.models import HaMember, LockInfo, ManagedDevice, Revision, Task
from fortiauto.fortimanager.shapes import like_fortios, to_fmg

__all__ = [
    "FortiManagerClient",
    "HaMember",
    "LockInfo",
    "ManagedDevice",
    "RequestCounts",
    "Revision",
    "Task",
    "like_fortios",
    "to_fmg",
]
