"""Concurrent reads of one device share one keep-alive connection (no handshake per read).

The engine reads several objects at once (plan, read-back, log settings); each new connection
costs both sides a TLS handshake. A real socket server counts the connections it accepts and
answers every request on the connection it came in on, as FortiOS does with keep-alive.
"""

from __future__ import annotations

import asyncio
import json

from fortiauto.fortios.client import FortiOSClient
from tests.unit.fortios.conftest import envelope


class _CountingServer:
    """A minimal HTTP/1.1 keep-alive server on 127.0.0.1:0 answering a FortiOS envelope."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                await asyncio.sleep(0.01)  # the others are in flight meanwhile
                body = json.dumps(envelope(results=[{"policyid": 1}])).encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                writer.write(head.encode() + b"\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_concurrent_reads_of_one_device_share_one_connection():
    server = _CountingServer()
    port = await server.start()
    try:
        async with FortiOSClient(f"http://127.0.0.1:{port}", name="fgt-1") as api:
            answers = await asyncio.gather(*(api.get("firewall/policy") for _ in range(5)))
    finally:
        await server.stop()
    assert answers == [[{"policyid": 1}]] * 5
    assert (server.requests, server.connections) == (5, 1)
