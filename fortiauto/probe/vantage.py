"""Where the probe's TCP connection starts: this machine, an SSH host, or a SOCKS5 proxy.

Mail reaches a VIP from outside, through the FortiGate's inbound policy; a probe sent from
inside may match another policy (hairpin) and pass while outside mail fails. ``probe.via``
moves the probe's start to a host outside (``site.ProbeVia``). ``probe/smtp.py`` asks
``open_vantage`` for one, calls ``reach`` (the ``vantage`` step), then ``open`` (the
``connect`` step) and gets back a plain connected socket, so STARTTLS, SMTPS, pins and
timings work exactly as on a direct connection.

- ssh (``probe/vantage_ssh.py``): asyncssh logs in with the site's key, accepts only a
  host key in the site's ``known_hosts`` (no agent, no ``~/.ssh/config``), then opens a
  ``direct-tcpip`` channel (RFC 4254 §7.2) to the mail server: the SSH host makes the TCP
  connection. The channel is bridged to a private socket pair, never a listening port.
- socks5 (``probe/vantage_socks.py``): python-socks sends CONNECT with the name (remote DNS,
  RFC 1928 ATYP 3), so the proxy resolves the mail server's name as an outside sender would.

A vantage that cannot be reached raises ``VantageFailed`` (failure class F0, not a mail
outage); a mail server the vantage cannot reach raises the ``OSError`` a direct connect
would (refused, unreachable), so the probe names it F2 as usual.
"""

from __future__ import annotations

import socket
from typing import Protocol

from fortiauto.site.models import ProbeVia

__all__ = ["Vantage", "VantageFailed", "open_vantage"]


class VantageFailed(Exception):
    """The vantage itself failed (cannot connect, host key, login, forwarding forbidden).

    ``permanent``: another attempt two seconds later cannot change it (a host key, a key
    file, a refused login or forwarding); an unreachable vantage may be a flap and is retried.
    """

    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


class Vantage(Protocol):
    """One probe attempt's path from the vantage; ``close`` or ``abort`` ends it."""

    @property
    def label(self) -> str: ...

    async def reach(self) -> str | None:
        """Get to the vantage; returns the ``vantage`` step's detail, ``None`` if it has no step."""
        ...

    async def open(self, host: str, port: int) -> socket.socket:
        """A connected socket to ``host:port`` from the vantage (the probe's ``connect`` step)."""
        ...

    async def close(self) -> None: ...

    def abort(self) -> None: ...


def open_vantage(via: ProbeVia) -> Vantage:
    """The vantage ``via`` names; nothing is contacted until ``reach``."""
    # asyncssh takes 0.2-0.9 s to import: only runs whose site names a vantage pay for it.
    if via.ssh is not None:
        from fortiauto.probe.vantage_ssh import SshVantage  # noqa: PLC0415 - import cost, see above

        return SshVantage(via)
    from fortiauto.probe.vantage_socks import Socks5Vantage  # noqa: PLC0415 - import cost, see above

    return Socks5Vantage(via)
