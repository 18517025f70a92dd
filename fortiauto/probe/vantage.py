"""Where the probe's TCP connection starts: this machine, an SSH host, or a SOCKS5 proxy.

Mail reaches a VIP from outside, through the FortiGate's inbound policy; a probe sent from
inside may match another policy (hairpin) and pass while outside mail fails. ``probe.via``
moves the probe's start to a host outside (``site.ProbeVia``). ``probe/smtp.py`` asks
``open_vantage`` for one, calls ``reach`` (the ``vantage`` step), then ``open`` (the
``connect`` step) and gets back a plain connected socket, so STARTTLS, SMTPS, pins and
timings work exactly as on a direct connection.

- ssh: asyncssh logs in with the site's key and checks the host key against the site's
  ``known_hosts`` only (no agent, no ``~/.ssh/config``, nothing auto-accepted), then opens a
  ``direct-tcpip`` channel (RFC 4254 §7.2) to the mail server: the SSH host makes the TCP
  connection. The channel is bridged to a private socket pair, never a listening port.
- socks5: python-socks sends CONNECT with the name (remote DNS, RFC 1928 ATYP 3), so the
  proxy resolves the mail server's name as an outside sender would.

A vantage that cannot be reached raises ``VantageFailed`` (failure class F0, not a mail
outage); a mail server the vantage cannot reach raises the ``OSError`` a direct connect
would (refused, unreachable), so the probe names it F2 as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from pathlib import Path
from typing import Protocol

import asyncssh
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks._errors import IncompleteReadError  # not re-exported; the cause of a hang-up
from python_socks.async_.asyncio import Proxy

from fortiauto.site.models import ProbeVia, parse_endpoint

__all__ = ["Vantage", "VantageFailed", "open_vantage"]

_CHUNK = 65536

# RFC 1928 §6 reply codes that describe the destination, not the proxy.
_SOCKS_REFUSED = 5
_SOCKS_UNREACHABLE = (3, 4)  # network, host unreachable
_SOCKS_TTL_EXPIRED = 6


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
    if via.ssh is not None:
        return _SshVantage(via)
    return _Socks5Vantage(via)


class _SshVantage:
    def __init__(self, via: ProbeVia) -> None:
        user, host, port = parse_endpoint(via.ssh or "", 22)
        assert user is not None, "ProbeVia checked it"
        assert via.key is not None, "ProbeVia checked it"
        assert via.known_hosts is not None, "ProbeVia checked it"
        self.label = via.label
        self._user, self._host, self._port = user, host, port
        self._key = str(via.key)
        self._known_hosts = str(via.known_hosts)
        self._passphrase = via.passphrase.get_secret_value() if via.passphrase is not None else None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._ends: list[asyncio.StreamWriter | asyncssh.SSHWriter[bytes]] = []

    async def _client_key(self) -> asyncssh.SSHKey:
        loop = asyncio.get_running_loop()
        try:
            # An encrypted key's bcrypt KDF takes CPU time: off the loop the other probes share.
            return await loop.run_in_executor(None, asyncssh.read_private_key, self._key, self._passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise VantageFailed(
                f"{self.label}: cannot use the key {self._key}: {exc}", permanent=True
            ) from None
        except OSError as exc:
            raise VantageFailed(
                f"{self.label}: cannot read the key {self._key}: {exc.strerror or exc}", permanent=True
            ) from None

    async def reach(self) -> str:
        key = await self._client_key()
        if not Path(self._known_hosts).is_file():
            # Checked here so that a missing file is not reported as an unreachable host.
            raise VantageFailed(
                f"{self.label}: known_hosts file {self._known_hosts} not found", permanent=True
            )
        try:
            self._conn = await asyncssh.connect(
                self._host,
                self._port,
                username=self._user,
                client_keys=[key],
                known_hosts=self._known_hosts,
                # Only what the site file says: no agent, no ~/.ssh/config, no other auth.
                agent_path=None,
                config=None,
                x509_trusted_certs=None,
                preferred_auth="publickey",
                password_auth=False,
                kbdint_auth=False,
                gss_auth=False,
                host_based_auth=False,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise VantageFailed(
                f"{self.label}: host key not accepted ({exc.reason}); it must be in {self._known_hosts}",
                permanent=True,
            ) from None
        except asyncssh.PermissionDenied:
            raise VantageFailed(
                f"{self.label}: login refused for the key {self._key}", permanent=True
            ) from None
        except asyncssh.Error as exc:
            raise VantageFailed(f"{self.label}: {type(exc).__name__}: {exc.reason}") from None
        except OSError as exc:  # refused, unreachable, or known_hosts unreadable
            raise VantageFailed(f"{self.label}: cannot connect: {exc.strerror or exc}") from None
        server_key = self._conn.get_server_host_key()
        shown = f"{server_key.get_algorithm()} {server_key.get_fingerprint()}" if server_key else "?"
        return f"{self.label}: host key {shown} in known_hosts; logged in with publickey"

    async def open(self, host: str, port: int) -> socket.socket:
        assert self._conn is not None, "reach() first"
        try:
            remote_reader, remote_writer = await self._conn.open_connection(host, port, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            if exc.code == asyncssh.OPEN_CONNECT_FAILED:
                # The SSH host tried and the mail server (or the path to it) said no.
                raise _connect_error(exc.reason) from None
            raise VantageFailed(
                f"{self.label} will not forward to {host}:{port}: {exc.reason}", permanent=True
            ) from None
        except asyncssh.Error as exc:
            raise VantageFailed(f"{self.label}: {type(exc).__name__}: {exc.reason}") from None
        probe_end, bridge_end = socket.socketpair()
        probe_end.setblocking(False)
        bridge_reader, bridge_writer = await asyncio.open_connection(sock=bridge_end)
        self._ends += [bridge_writer, remote_writer]
        self._pumps += [
            asyncio.create_task(_pump(remote_reader, bridge_writer)),
            asyncio.create_task(_pump(bridge_reader, remote_writer)),
        ]
        return probe_end

    async def close(self) -> None:
        self.abort()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        for end in self._ends:
            if isinstance(end, asyncio.StreamWriter):
                with contextlib.suppress(OSError):
                    await end.wait_closed()
        if self._conn is not None:
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                async with asyncio.timeout(1.0):
                    await self._conn.wait_closed()

    def abort(self) -> None:
        for task in self._pumps:
            task.cancel()
        for end in self._ends:
            end.close()
        if self._conn is not None:
            self._conn.close()


class _Reader(Protocol):
    async def read(self, n: int = -1, /) -> bytes: ...


class _Writer(Protocol):
    def write(self, data: bytes, /) -> None: ...

    def write_eof(self) -> None: ...

    async def drain(self) -> None: ...


async def _pump(source: _Reader, sink: _Writer) -> None:
    """Copy bytes until end of file, then pass the end of file on (a half-close, like TCP's FIN)."""
    with contextlib.suppress(OSError, asyncssh.Error, asyncio.IncompleteReadError):
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
        sink.write_eof()


class _Socks5Vantage:
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


def _connect_error(reason: str) -> OSError:
    if "refused" in reason.lower():
        return ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")
    return OSError(errno.EHOSTUNREACH, reason or "connect failed")
