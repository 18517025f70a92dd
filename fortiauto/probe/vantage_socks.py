"""The SOCKS5 vantage: python-socks asks the proxy to CONNECT to the mail server by name (RFC 1928).

See ``probe/vantage.py``. The name is sent as a domain (ATYP 3) for the proxy to resolve; the
proxy's reply code tells a refused or unreachable mail server (the mail path, F2) from a
proxy that cannot be used (F0).
"""

from __future__ import annotations

import errno
import socket

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks._errors import IncompleteReadError  # not re-exported; the cause of a hang-up
from python_socks.async_.asyncio import Proxy

from fortiauto.probe.vantage import VantageFailed
from fortiauto.site.models import ProbeVia, parse_endpoint

__all__ = ["Socks5Vantage"]

# RFC 1928 §6 reply codes that describe the destination, not the proxy.
_SOCKS_REFUSED = 5
_SOCKS_UNREACHABLE = (3, 4)  # network, host unreachable
_SOCKS_TTL_EXPIRED = 6


class Socks5Vantage:
    def __init__(self, via: ProbeVia) -> None:
        _, host, port = parse_endpoint(via.socks5 or "", 1080)
        self.label = via.label
        self._host, self._port = host, port

    async def reach(self) -> None:
        # The proxy is reached inside CONNECT, so its failures are told apart there.
        return None

    async def open(self, host: str, port: int) -> socket.socket:
        proxy = Proxy(ProxyType.SOCKS5, self._host, self._port, rdns=True)
        try:
            # The library's own timeout is a backstop; the probe's step budget decides first.
            sock = await proxy.connect(host, port, timeout=3600)
        except ProxyConnectionError as exc:
            raise VantageFailed(f"{self.label}: cannot connect: {exc.strerror or exc}") from None
        except ProxyTimeoutError:
            raise TimeoutError from None
        except ProxyError as exc:
            if exc.error_code == _SOCKS_REFUSED:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "connection refused") from None
            if exc.error_code in _SOCKS_UNREACHABLE:
                raise OSError(errno.EHOSTUNREACH, f"{exc} (reported by {self.label})") from None
            if exc.error_code == _SOCKS_TTL_EXPIRED:
                raise TimeoutError from None
            if exc.error_code is None and isinstance(exc.__cause__, IncompleteReadError):
                # No reply at all: OpenSSH's SOCKS server (ssh -D) hangs up this way when it
                # cannot reach the destination, as a sender behind it would see.
                raise ConnectionRefusedError(
                    errno.ECONNREFUSED,
                    f"{self.label} hung up without a SOCKS reply (destination unreachable?)",
                ) from None
            raise VantageFailed(f"{self.label}: {exc}") from None
        return sock

    async def close(self) -> None:
        # The socket belongs to the probe's transport from ``open`` on: nothing else is held.
        return None

    def abort(self) -> None:
        return None
