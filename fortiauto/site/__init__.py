"""The site file: its models (``models.py``) and the loader that builds them from YAML (``loader.py``).

First stage of the pipeline (site -> plan -> apply -> verify -> commit | rollback -> report).
``from fortiauto.site import Device, load_site`` is the usual import; the loader is imported on
first use so that ``fortiauto --help`` does not pay for the YAML parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fortiauto.site.models import (
    CertificateSpec,
    ChangeWindow,
    Device,
    MailServer,
    PolicyRef,
    ProbeSpec,
    ProbeTransaction,
    Rollout,
    Site,
)

if TYPE_CHECKING:
    from fortiauto.site.loader import load_site, load_site_data, redacted_dump

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
    "load_site",
    "load_site_data",
    "redacted_dump",
]

_LOADER = frozenset({"load_site", "load_site_data", "redacted_dump"})


def __getattr__(name: str) -> Any:
    if name in _LOADER:
        from fortiauto.site import loader  # noqa: PLC0415 - the YAML parser only when a site is loaded

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
