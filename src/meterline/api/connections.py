"""Connections the server holds: bounded in number, in time to send headers, and in header bytes.

uvicorn closes a keep-alive connection idle after a response, but nothing bounds a connection
that never finishes its headers (slowloris) or never sends a byte at all, and nothing bounds how
many there are: tens of thousands of stalled sockets use up every file descriptor, and then the
database's own files cannot be opened. This protocol (uvicorn's httptools one, extended):

- gives each request `header_timeout_s` from its first byte (or from the connection's start) to
  complete its headers, and `max_header_bytes` of them; then the connection is closed;
- keeps at most `max_connections` open: when a new one would pass the cap, the connection that
  has waited longest without a request in progress (stalled in its headers, or idle between
  requests) is closed to make room; only when every connection is mid-request is the new one
  refused. So stalled clients cannot lock ordinary ones out, however many they open.

`serve` also raises the process's descriptor limit to its hard limit and keeps
`descriptor_reserve` of them out of the cap, for the database, the log and the engine's pipes.
"""

from __future__ import annotations

import asyncio
import resource
import threading
from collections import OrderedDict
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from meterline.logging import get_logger

log = get_logger("meterline.connections")


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0
    max_header_bytes: int = 65_536
    max_connections: int = 4096
    # Connections with no request in progress, oldest first (one event loop per server process).
    _waiting: ClassVar[OrderedDict[GuardedHttpProtocol, None]] = OrderedDict()
    closed_stalled: ClassVar[int] = 0  # connections closed for their headers' time or size (for /metrics)
    evicted: ClassVar[int] = 0  # connections closed to make room under the cap

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_one():
            transport.abort()
            return
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._await_headers()  # the first bytes of the next request on a kept-alive connection
        waiting = self._header_deadline is not None
        super().data_received(data)
        # Still in the headers after this read (on_headers_complete stops the wait): count it.
        if waiting and self._header_deadline is not None:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._close_stalled()

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._waiting[self] = None  # idle until its next request; uvicorn's keep-alive timeout runs

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: requests in progress finish, idle connections close. A
        stream of access decisions never finishes by itself: it ends once it sees `draining()`."""
        _DRAINING.set()
        super().shutdown()

    def _await_headers(self) -> None:
        self._waiting[self] = None
        self._waiting.move_to_end(self)
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._close_stalled)

    def _stop_waiting(self) -> None:
        self._waiting.pop(self, None)
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        self._header_bytes = 0

    def _close_stalled(self) -> None:
        self._stop_waiting()
        type(self).closed_stalled += 1
        if not self.transport.is_closing():
            self.transport.abort()

    def _evict_one(self) -> bool:
        """Close the connection waiting longest without a request in progress; False if none is."""
        while self._waiting:
            victim, _ = self._waiting.popitem(last=False)
            if victim is self or victim.transport.is_closing():
                continue
            victim._stop_waiting()
            type(self).evicted += 1
            victim.transport.abort()
            return True
        return False


_DRAINING = threading.Event()


def draining() -> bool:
    """Whether the server has begun its graceful shutdown (long-lived responses should end)."""
    return _DRAINING.is_set()


def guarded_protocol(
    header_timeout_s: float, max_header_bytes: int, max_connections: int
) -> type[GuardedHttpProtocol]:
    """The protocol class `serve` hands uvicorn, with these bounds."""
    return type(
        "MeterlineHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "max_header_bytes": max_header_bytes,
            "max_connections": max_connections,
            "_waiting": OrderedDict(),
        },
    )


def connection_cap(max_connections: int, descriptor_reserve: int) -> int:
    """Raise the soft descriptor limit to the hard one; the cap leaves `descriptor_reserve` free."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    cap = min(max_connections, soft - descriptor_reserve)
    if cap < max_connections:
        log.warning(
            "connection_cap_lowered", max_connections=cap, descriptor_limit=soft, reserve=descriptor_reserve
        )
    return max(cap, 1)
