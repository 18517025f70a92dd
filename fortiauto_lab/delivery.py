"""The lab's delivery confirmer: did the probe's message reach the lab's mail backend? (F17)

Registered for fortiauto as the ``lab`` entry point of the ``fortiauto.delivery`` group
(pyproject.toml); a site opts in with ``probe: {confirm_delivery: lab}``. It implements
fortiauto's ``DeliveryCheck`` protocol by shape (``async __call__(device, mail_server,
message_id) -> bool | None``) without importing fortiauto: it asks the device's control API
(``GET /__lab__/messages``, same port and token as the REST API) until the message shows up.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

__all__ = ["LabDelivery"]


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class _Device(Protocol):
    """The parts of fortiauto's ``Device`` this check reads."""

    url: str
    timeout: float

    @property
    def token(self) -> _Secret | None: ...

    @property
    def verify_tls(self) -> bool | Path | str: ...


def _pinned(url: str, pin: str) -> bool:
    """Whether the device's certificate has the SHA-256 fingerprint ``pin`` (``sha256:<hex>``)."""
    parts = urlsplit(url)
    pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 443), timeout=10)
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    return digest == pin.split(":", 1)[1].replace(":", "").lower()


def _verify(device: _Device) -> bool | ssl.SSLContext | None:
    """httpx's ``verify`` for the device's ``verify_tls``; None when a pin does not match."""
    setting = device.verify_tls
    if isinstance(setting, bool):
        return setting
    if isinstance(setting, str) and setting.lower().startswith("sha256:"):
        # The pin was checked on a connection of its own; this one only needs the channel.
        return False if _pinned(device.url, setting) else None
    return _ca_context(str(setting))


@functools.lru_cache(maxsize=32)
def _ca_context(cafile: str) -> ssl.SSLContext:
    # One per CA bundle for the whole run: building one costs ~5 ms, every device names the same.
    return ssl.create_default_context(cafile=cafile)


def _has_message(body: Any, message_id: str) -> bool:
    items = body.get("messages", body) if isinstance(body, dict) else body
    return isinstance(items, list) and any(
        isinstance(m, dict) and m.get("message_id") == message_id for m in items
    )


class LabDelivery:
    """Polls the lab device's mailbox list for the probe's ``Message-ID``."""

    def __init__(self, *, polls: int = 10, delay: float = 0.2) -> None:
        self.polls = polls
        self.delay = delay

    async def __call__(self, device: _Device, mail_server: Any, message_id: str) -> bool | None:
        """True: delivered; False: not there after ``polls``; None: the lab cannot be asked."""
        if device.token is None:
            return None
        try:
            verify = await asyncio.to_thread(_verify, device)
        except OSError:
            return None
        if verify is None:
            return None
        headers = {"Authorization": f"Bearer {device.token.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=device.url, verify=verify, timeout=device.timeout) as http:
            for attempt in range(self.polls):
                try:
                    response = await http.get("/__lab__/messages", headers=headers)
                    response.raise_for_status()
                    body = response.json()
                except (httpx.HTTPError, ValueError):
                    return None
                if _has_message(body, message_id):
                    return True
                if attempt + 1 < self.polls:
                    await asyncio.sleep(self.delay)
        return False
