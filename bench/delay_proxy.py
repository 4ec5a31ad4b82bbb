"""A delaying TCP proxy for the benchmark's "real link" (g): 127.0.0.1 only, bench-only.

This kernel has no `netem` qdisc, so a round trip is made by hand: every chunk read from one
side is written to the other `delay` seconds after it arrived, in both directions, order kept.
Each direction has a queue of (arrival time, chunk); its writer waits until a chunk is due,
so back-to-back chunks are delayed once each, not by the sum of sleeps. Reads stop while a
direction holds more than MAX_QUEUED bytes (bounded memory), like a full socket buffer.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

MAX_QUEUED = 8 * 1024 * 1024  # bytes in flight per direction


class DelayProxy:
    """Listen on 127.0.0.1:<free port>, forward each connection to 127.0.0.1:`target`."""

    def __init__(self, target: int, delay: float = 0.020) -> None:
        self.target, self.delay = target, delay
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay proxy did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._connection, sock=self._sock)
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    async def _connection(self, client_r, client_w) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_w.close()
            return
        for w in (client_w, server_w):
            w.transport.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        try:
            await asyncio.gather(
                self._pipe(client_r, server_w), self._pipe(server_r, client_w),
                return_exceptions=True,
            )  # fmt: skip
        except asyncio.CancelledError:  # stop(): end quietly (asyncio logs a cancelled handler)
            pass
        for w in (client_w, server_w):
            w.close()

    async def _pipe(self, reader, writer) -> None:
        """One direction: read chunks, hand each on `delay` after its arrival, in order."""
        queue: asyncio.Queue = asyncio.Queue()
        room = asyncio.Condition()
        queued = [0]

        async def send() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:  # EOF, after everything before it
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()
                async with room:
                    queued[0] -= len(chunk)
                    room.notify_all()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                chunk = await reader.read(65536)
                await queue.put((time.monotonic() + self.delay, chunk))
                if not chunk:
                    break
                async with room:
                    queued[0] += len(chunk)
                    await room.wait_for(lambda: queued[0] <= MAX_QUEUED)
            await sender
        finally:
            sender.cancel()

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
