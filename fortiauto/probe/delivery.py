"""End-to-end delivery check (F17): did the probe's message reach the mail server behind the VIP?

A 250 after the final dot only says the FortiGate (or whatever answered) took the message.
Where the backend can confirm receipt, the engine asks it. The only confirmer today is the
built-in lab's mailbox (``GET /__lab__/messages`` on the device's port, same token); a site
opts in with ``probe: {confirm_delivery: lab}``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol

import httpx

from fortiauto.site import Device, MailServer

__all__ = ["DeliveryCheck", "LabDelivery"]


class DeliveryCheck(Protocol):
    async def __call__(self, device: Device, mail_server: MailServer, message_id: str) -> bool | None:
        """True: delivered; False: not delivered in time; None: cannot tell."""
        ...


class LabDelivery:
    """Asks the lab device's control API whether the backend recorded the message."""

    def __init__(self, *, polls: int = 10, delay: float = 0.2) -> None:
        self.polls = polls
        self.delay = delay

    async def __call__(self, device: Device, mail_server: MailServer, message_id: str) -> bool | None:
        if mail_server.probe.confirm_delivery != "lab" or device.token is None:
            return None
        verify: bool | ssl.SSLContext = (
            device.verify_tls
            if isinstance(device.verify_tls, bool)
            else (ssl.create_default_context(cafile=str(device.verify_tls)))
        )
        headers = {"Authorization": f"Bearer {device.token.get_secret_value()}"}
        async with httpx.AsyncClient(base_url=device.url, verify=verify, timeout=device.timeout) as http:
            for attempt in range(self.polls):
                try:
                    response = await http.get("/__lab__/messages", headers=headers)
                    response.raise_for_status()
                    messages = response.json()
                except (httpx.HTTPError, ValueError):
                    return None
                items = messages.get("messages", messages) if isinstance(messages, dict) else messages
                if any(isinstance(m, dict) and m.get("message_id") == message_id for m in items):
                    return True
                if attempt + 1 < self.polls:
                    await asyncio.sleep(self.delay)
        return False
