"""The FortiOS REST client package: client, auth flows, envelope parsing, error mapping, version facts.

The re-exports load lazily: tasks import ``fortios.normalise`` and ``fortios.version`` (no I/O),
and ``fortiauto --help`` should not pay for importing httpx through them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fortiauto.fortios.client import USE_DEFAULT, FortiOSClient
    from fortiauto.fortios.envelope import Envelope, SystemStatus

__all__ = ["USE_DEFAULT", "Envelope", "FortiOSClient", "SystemStatus"]

_HOMES = {
    "USE_DEFAULT": "fortiauto.fortios.client",
    "FortiOSClient": "fortiauto.fortios.client",
    "Envelope": "fortiauto.fortios.envelope",
    "SystemStatus": "fortiauto.fortios.envelope",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
