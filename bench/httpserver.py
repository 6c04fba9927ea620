"""A minimal HTTP/1.1 server on asyncio, run in its own process: keep-alive connections, bodies
with Content-Length, every request answered at once with 200 and `{}`.

The bench's webhook receiver and the load generator's sink both use it; what each does with a
request is a small handler called with the request's arrival time (`time.time_ns()`), head and
body. `stop()` returns what the handler recorded.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
START_TIMEOUT_S = 15.0

# (arrived_ns, head, body) -> something to record, or None
Handler = Callable[[int, bytes, bytes], Any]


def content_length(head: bytes) -> int:
    start = head.lower().find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    end = head.find(b"\r\n", start + 2)
    return int(head[start + 17 : end if end >= 0 else len(head)])


class _Connection(asyncio.Protocol):
    def __init__(self, handler: Handler, records: list[Any], received: Any):
        self.handler = handler
        self.records = records
        self.received = received
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end])
            total = end + 4 + content_length(head)
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            record = self.handler(time.time_ns(), head, body)
            if record is not None:
                self.records.append(record)
            self.received.value += 1
            assert self.transport is not None
            self.transport.write(RESPONSE)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with uvicorn[standard]), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _serve(handler: Handler, pipe: Connection, received: Any) -> None:
    records: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(handler, records, received), "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        stopped = asyncio.Event()
        loop.add_reader(pipe.fileno(), stopped.set)
        await stopped.wait()
        server.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
    os.set_blocking(pipe.fileno(), True)  # the event loop made it non-blocking
    pipe.recv()
    pipe.send(records)


class ServerProcess:
    """An HTTP server on 127.0.0.1 in its own process, with `handler` deciding what to record."""

    def __init__(self, handler: Handler):
        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self._received: Any = context.RawValue(ctypes.c_int64, 0)
        self.process = context.Process(target=_serve, args=(handler, child, self._received), daemon=True)
        self.process.start()
        if not self._pipe.poll(START_TIMEOUT_S):
            self.process.kill()
            raise RuntimeError("the bench HTTP server did not start")
        self.port: int = self._pipe.recv()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def received(self) -> int:
        """Requests answered so far (readable while it runs)."""
        return int(self._received.value)

    def stop(self) -> list[Any]:
        """Stop serving; returns everything recorded."""
        self._pipe.send("stop")
        records: list[Any] = self._pipe.recv()
        self.process.join(10)
        return records
