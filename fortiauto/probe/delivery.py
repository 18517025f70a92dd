"""End-to-end delivery check (F17): did the probe's message reach the mail server behind the VIP?

A 250 after the final dot only says the FortiGate (or whatever answered) took the message.
Where the backend can confirm receipt, the engine asks it: ``probe: {confirm_delivery:
{imap: {...}}}`` looks for the message in a real mailbox over IMAP and deletes it
(``ImapDelivery``, probe/imap.py); ``confirm_delivery: NAME`` asks the confirmer an installed
plugin registers under NAME in the ``fortiauto.delivery`` entry-point group (``delivery_for``;
the mock lab's is ``lab``, with ``fortiauto[lab]``). ``SiteDelivery`` picks the confirmer each
mail server's spec names (``delivery_for_spec``), so one check serves a whole run.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Protocol

from fortiauto.errors import InputError
from fortiauto.plugins import DELIVERY_GROUP, install_hint, plugin_names
from fortiauto.probe.imap import check_mailbox
from fortiauto.site import Device, MailServer, ProbeSpec
from fortiauto.site.models import ImapConfirm

__all__ = ["DeliveryCheck", "ImapDelivery", "SiteDelivery", "delivery_for", "delivery_for_spec"]

logger = logging.getLogger(__name__)


class DeliveryCheck(Protocol):
    async def __call__(self, device: Device, mail_server: MailServer, message_id: str) -> bool | None:
        """True: delivered; False: not delivered in time; None: cannot tell."""
        ...


class ImapDelivery:
    """Looks for the probe's message in the mailbox ``probe.confirm_delivery.imap`` names, then deletes it.

    False only when the mailbox was read and the message did not arrive within the spec's
    timeout; a mailbox that cannot be read (unreachable, TLS, login) is None, with the reason
    logged (never a secret), since it says nothing about the change.
    """

    def __init__(self, *, poll: float = 1.0) -> None:
        self.poll = poll

    async def __call__(self, device: Device, mail_server: MailServer, message_id: str) -> bool | None:
        spec = mail_server.probe.confirm_delivery
        if not isinstance(spec, ImapConfirm):
            return None
        answer = await check_mailbox(spec, message_id, poll=self.poll)
        if answer.found is None:
            logger.warning("%s/%s: delivery not confirmed: %s", device.name, mail_server.name, answer.detail)
        else:
            logger.info("%s/%s: delivery check: %s", device.name, mail_server.name, answer.detail)
        return answer.found


def delivery_for_spec(spec: ProbeSpec) -> DeliveryCheck | None:
    """The confirmer a probe spec asks for, or None when it asks for none."""
    confirm = spec.confirm_delivery
    if isinstance(confirm, ImapConfirm):
        return ImapDelivery()
    if isinstance(confirm, str):
        return delivery_for(confirm)
    return None


def delivery_for(name: str) -> DeliveryCheck:
    """The confirmer an installed plugin registers as ``name`` (entry point group ``fortiauto.delivery``).

    Raises:
        InputError: no installed plugin has that name.
    """
    found = [ep for ep in entry_points(group=DELIVERY_GROUP) if ep.name == name]
    if not found:
        installed = ", ".join(plugin_names(DELIVERY_GROUP)) or "none"
        raise InputError(
            f"no delivery confirmer {name!r} is installed (installed: {installed}){install_hint(name)}"
        )
    check: DeliveryCheck = found[0].load()()
    return check


class SiteDelivery:
    """The delivery check for a whole run: each mail server's own confirmer, made once per kind.

    Looking a plugin up scans every installed distribution's entry points (~3 ms, 8 % of a
    100-device apply's CPU when done per check), so each kind is looked up once per run.
    """

    def __init__(self) -> None:
        # Keyed by what the spec asks for: ImapConfirm (the class), a plugin name, or None.
        self._by_kind: dict[object, DeliveryCheck | None] = {}

    async def __call__(self, device: Device, mail_server: MailServer, message_id: str) -> bool | None:
        spec = mail_server.probe
        kind: object = (
            ImapConfirm if isinstance(spec.confirm_delivery, ImapConfirm) else spec.confirm_delivery
        )
        if kind not in self._by_kind:
            self._by_kind[kind] = delivery_for_spec(spec)
        check = self._by_kind[kind]
        if check is None:
            return None
        return await check(device, mail_server, message_id)
