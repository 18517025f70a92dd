"""Build the FortiOS client for a site device: the one place site settings become client options."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fortiauto.site import Device

if TYPE_CHECKING:
    from fortiauto.fortios.client import FortiOSClient

__all__ = ["client_for"]


def client_for(device: Device) -> FortiOSClient:
    """A client with the device's auth, vdom, TLS verification and timeout (not yet opened)."""
    from fortiauto.fortios.client import FortiOSClient  # noqa: PLC0415 - keeps `fortiauto --help` light

    verify: bool | str = str(device.verify_tls) if isinstance(device.verify_tls, Path) else device.verify_tls
    return FortiOSClient(
        device.url,
        token=device.token,
        username=device.username,
        password=device.password,
        vdom=device.vdom,
        verify=verify,
        timeout=device.timeout,
        name=device.name,
        allow_insecure_http=device.allow_insecure_http,
    )
