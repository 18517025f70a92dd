"""A TCP proxy in front of one lab device that can hold requests in transit: a slow write that still lands.

The lab's ``api-latency`` sleeps before it reads a request, so a write whose client gave up
vanishes with the connection. A real FortiGate (or a congested path) can also take the write
after the client's timeout. ``SlowLink`` models that: while armed, bytes from fortiauto to the
device are held for ``delay`` seconds and then delivered even if fortiauto has closed its end;
the device's answer is read and dropped. TLS passes through untouched (the proxy sees records,
not requests), so ``armed`` is switched by the client seam right before the write in question.
"""

from __future__ import annotations

import asyncio
import contextlib


class SlowLink:
    """``async with SlowLink(port) as link:`` then point the site's device URL at ``link.port``."""

    def __init__(self, target_port: int, *, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.armed = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> SlowLink:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        # Let held requests land (that is the point), bounded.
        if self._pumps:
            await asyncio.wait(self._pumps, timeout=self.delay + 5)
        for task in self._pumps:
            task.cancel()
        await self._server.wait_closed()

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pumps.add(task)
        answered = asyncio.Event()
        answered.set()
        try:
            device_r, device_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            back = asyncio.create_task(self._answers(device_r, client_w, answered))
            await self._requests(client_r, device_w, answered)
            # The client may be gone: keep the device's end open until it has answered what it
            # received late (closing it first would abort the request on the device).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), timeout=self.delay + 5)
            back.cancel()
            device_w.close()
        finally:
            client_w.close()
            self._pumps.discard(task)

    async def _requests(
        self, client_r: asyncio.StreamReader, device_w: asyncio.StreamWriter, answered: asyncio.Event
    ) -> None:
        while True:
            try:
                data = await client_r.read(65536)
            except ConnectionError:
                return
            if not data:
                return
            if self.armed:
                await asyncio.sleep(self.delay)
                answered.clear()
            device_w.write(data)
            with contextlib.suppress(ConnectionError):
                await device_w.drain()

    @staticmethod
    async def _answers(
        device_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, answered: asyncio.Event
    ) -> None:
        while True:
            try:
                data = await device_r.read(65536)
            except ConnectionError:
                return
            if not data:
                answered.set()
                return
            answered.set()
            if not client_w.is_closing():
                client_w.write(data)
                with contextlib.suppress(ConnectionError):
                    await client_w.drain()
