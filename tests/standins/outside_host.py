"""A stand-in for a host on the Internet: a SOCKS5 proxy whose connections leave from another address.

The lab's ``hairpin`` state treats one loopback address (127.0.0.2 by default) as the Internet:
only connections from it come in on a VIP's external interface. No real proxy lets a test choose
the source address of the connections it makes, so this one does: it listens on 127.0.0.1 (a
port the OS picks), speaks SOCKS5 CONNECT without authentication (RFC 1928), and opens each
connection from ``source``. It records every connection it made, so a test can assert on the
proxy's word rather than on fortiauto's.

    with OutsideHost(source="127.0.0.2") as host:
        host.address          # "127.0.0.1:<port>", for probe.via.socks5
        host.connections      # [(target host, target port, source address used)]
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import threading
from types import TracebackType

__all__ = ["OutsideHost"]

_VERSION = 5
_NO_AUTH = 0
_CONNECT = 1
_SUCCEEDED, _FAILURE, _REFUSED, _UNSUPPORTED = 0, 1, 5, 7


class OutsideHost:
    """A SOCKS5 server on its own thread and event loop (usable from synchronous tests)."""

    def __init__(self, *, source: str = "127.0.0.2") -> None:
        self.source = source
        self.connections: list[tuple[str, int, str]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="outside-host", daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> OutsideHost:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._client, "127.0.0.1", 0)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target = await self._handshake(reader, writer)
            if target is not None:
                await self._relay(reader, writer, *target)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != _VERSION or _NO_AUTH not in methods:
            writer.write(bytes([_VERSION, 0xFF]))
            return None
        writer.write(bytes([_VERSION, _NO_AUTH]))
        version, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("ascii")
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            await self._reply(writer, _UNSUPPORTED)
            return None
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != _CONNECT:
            await self._reply(writer, _UNSUPPORTED)
            return None
        return host, port

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                host, port, local_addr=(self.source, 0), family=socket.AF_INET
            )
        except ConnectionRefusedError:
            await self._reply(writer, _REFUSED)
            return
        except OSError:
            await self._reply(writer, _FAILURE)
            return
        with self._lock:
            self.connections.append((host, port, upstream_writer.get_extra_info("sockname")[0]))
        await self._reply(writer, _SUCCEEDED)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, code: int) -> None:
        writer.write(bytes([_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
