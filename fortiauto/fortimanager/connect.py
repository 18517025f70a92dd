"""Build the FortiManager client for a site's ``fortimanager:`` block: where its settings become options."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fortiauto.fortimanager.client import FortiManagerClient
    from fortiauto.site.models import FortiManagerSpec

__all__ = ["client_for_fortimanager", "workspace_setting"]


def client_for_fortimanager(spec: FortiManagerSpec, *, name: str = "fortimanager") -> FortiManagerClient:
    """A client with the block's auth, ADOM, TLS verification and timeout (not yet opened)."""
    from fortiauto.fortimanager.client import FortiManagerClient  # noqa: PLC0415 - keeps `fortiauto --help` light

    return FortiManagerClient(
        spec.url,
        adom=spec.adom,
        token=spec.token,
        username=spec.username,
        password=spec.password,
        verify=spec.verify_tls,
        timeout=spec.timeout,
        name=name,
        allow_insecure_http=spec.allow_insecure_http,
    )


def workspace_setting(spec: FortiManagerSpec) -> bool | None:
    """``FortiManagerClient.workspace(enabled=...)`` for the block's ``workspace``: auto asks FortiManager."""
    return {"auto": None, "lock": True, "off": False}[spec.workspace]
