"""The SSH vantage: asyncssh logs in to the site's host and opens a direct-tcpip channel to the mail server.

See ``probe/vantage.py``. The host key must be in the site's ``known_hosts`` (asyncssh's own
check, nothing auto-accepted); no agent, no ``~/.ssh/config``, public-key login only. The
channel is bridged to a private socket pair, so the probe gets a plain socket and asyncio's
own TLS (STARTTLS, SMTPS) runs over it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from pathlib import Path
from typing import Protocol

import asyncssh

from fortiauto.probe.vantage import VantageFailed
from fortiauto.site.models import ProbeVia, parse_endpoint

__all__ = ["SshVantage"]

_CHUNK = 65536


class SshVantage:
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


def _connect_error(reason: str) -> OSError:
    if "refused" in reason.lower():
        return ConnectionRefusedError(errno.ECONNREFUSED, "connection refused")
    return OSError(errno.EHOSTUNREACH, reason or "connect failed")
