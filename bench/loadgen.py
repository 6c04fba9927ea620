"""The load generator: pre-encoded HTTP/1.1 requests posted over keep-alive connections (asyncio
streams, uvloop when installed), from its own process so that it never shares the interpreter
with whatever it measures.

Closed loop (`rate_per_s=None`): each connection sends its next request as soon as the previous one
is answered. Open loop: request k is due at start + k / rate, whatever the answers; when every
connection is busy it waits for one. Each request's acknowledgement time (`time.time_ns()` when
a 200 is read) is written into a shared array the caller can read while the load runs.

Its own ceiling: `python -m bench.loadgen` posts the same kind of requests to a sink that
answers 200 `{}` at once, and reports events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from rich.console import Console

from bench.bodies import EVENTS_PER_BATCH, throughput_batches
from bench.httpserver import content_length, new_event_loop
from bench.receiver import Sink

HOST = "127.0.0.1"


def encode_request(port: int, path: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {HOST}:{port}\r\nauthorization: Bearer {token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class LoadResult:
    started_ns: int
    finished_ns: int
    sent: int = 0
    acked: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    first_failure: str | None = None
    # Per connection, the index of its last acknowledged request: the highest sequence numbers
    # of the run are in these, since a connection's requests are committed one after the other.
    last_acked: list[int] = field(default_factory=list)


@dataclass
class _State:
    requests: Sequence[bytes]
    limit: float
    duration_s: float | None
    rate_per_s: float | None
    ack_ns: Any
    result: LoadResult
    server_ms: Any = None
    next_index: int = 0
    started: float = 0.0
    deadline: float = float("inf")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = content_length(head)
    body = await reader.readexactly(length) if length else b""
    return int(head[9:12]), head, body


def server_timing_ms(head: bytes) -> float:
    """The `Server-Timing: app;dur=` of a response's head (-1 without one)."""
    at = head.lower().find(b"server-timing: app;dur=")
    if at < 0:
        return -1.0
    start = at + len(b"server-timing: app;dur=")
    return float(head[start : head.index(b"\r\n", start)])


async def _connection(state: _State, port: int, slot: int) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    count = len(state.requests)
    result = state.result
    while True:
        k = state.next_index
        if k >= state.limit or time.monotonic() >= state.deadline:
            break
        state.next_index += 1
        if state.rate_per_s is not None:
            delay = state.started + k / state.rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        writer.write(state.requests[k % count])
        result.sent += 1
        try:
            status, head, body = await _read_response(reader)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            result.failures[type(error).__name__] += 1
            result.first_failure = result.first_failure or repr(error)
            writer.close()
            reader, writer = await asyncio.open_connection(HOST, port)
            continue
        if status == 200:
            result.acked += 1
            result.last_acked[slot] = k
            if state.ack_ns is not None:
                state.ack_ns[k] = time.time_ns()
            if state.server_ms is not None:
                state.server_ms[k] = server_timing_ms(head)
        else:
            result.failures[str(status)] += 1
            result.first_failure = result.first_failure or f"{status}: {body[:300].decode(errors='replace')}"
    writer.close()


async def _run(state: _State, port: int, connections: int) -> None:
    state.started = time.monotonic()
    if state.duration_s is not None:
        state.deadline = state.started + state.duration_s
    state.result.started_ns = time.time_ns()
    await asyncio.gather(*(_connection(state, port, slot) for slot in range(connections)))
    state.result.finished_ns = time.time_ns()


def run_load(
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int,
    duration_s: float | None,
    rate_per_s: float | None = None,
    cycle: bool = False,
    ack_ns: Any = None,
    server_ms: Any = None,
) -> LoadResult:
    """Post the requests (in order; again from the start if `cycle`) until they run out or the
    duration ends; `ack_ns[k]` receives request k's acknowledgement time, and `server_ms[k]` its
    answer's Server-Timing."""
    result = LoadResult(0, 0, last_acked=[-1] * connections)
    state = _State(
        requests=requests,
        limit=float("inf") if cycle else len(requests),
        duration_s=duration_s,
        rate_per_s=rate_per_s,
        ack_ns=ack_ns,
        result=result,
        server_ms=server_ms,
    )
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_run(state, port, connections))
    return result


def _child(
    pipe: Connection,
    port: int,
    requests: Sequence[bytes],
    options: dict[str, Any],
    ack_ns: Any,
    server_ms: Any,
) -> None:
    try:
        pipe.send(run_load(port, requests, ack_ns=ack_ns, server_ms=server_ms, **options))
    except Exception as error:
        pipe.send(f"the load generator failed: {error!r}")


class LoadProcess:
    """`run_load` in a forked process (the requests are inherited, not copied through a pipe)."""

    def __init__(
        self,
        port: int,
        requests: Sequence[bytes],
        *,
        connections: int,
        duration_s: float | None,
        rate_per_s: float | None = None,
        cycle: bool = False,
        track_acks: bool = True,
        track_server_timing: bool = False,
    ):
        context = multiprocessing.get_context("fork")
        self.ack_ns: Any = context.RawArray(ctypes.c_int64, len(requests)) if track_acks else None
        self.server_ms: Any = (
            context.RawArray(ctypes.c_double, len(requests)) if track_server_timing else None
        )
        self._pipe, child = context.Pipe(duplex=False)
        options = {
            "connections": connections,
            "duration_s": duration_s,
            "rate_per_s": rate_per_s,
            "cycle": cycle,
        }
        self.process = context.Process(
            target=_child, args=(child, port, requests, options, self.ack_ns, self.server_ms), daemon=True
        )
        self.process.start()
        self._result: LoadResult | None = None

    def done(self) -> bool:
        return self._result is not None or self._pipe.poll() or not self.process.is_alive()

    def result(self) -> LoadResult:
        if self._result is None:
            if not self._pipe.poll(10):
                raise RuntimeError(f"the load generator exited with {self.process.exitcode}")
            answer: LoadResult | str = self._pipe.recv()
            self.process.join(10)
            if isinstance(answer, str):
                raise RuntimeError(answer)
            self._result = answer
        return self._result


def ceiling(requests: Sequence[bytes], *, connections: int, seconds: float) -> float:
    """Events/s the generator posts to a sink that answers at once: its own ceiling."""
    sink = Sink()
    try:
        sink_requests = [_retarget(r, sink.port) for r in requests]
        load = LoadProcess(
            sink.port,
            sink_requests,
            connections=connections,
            duration_s=seconds,
            cycle=True,
            track_acks=False,
        )
        result = load.result()
    finally:
        sink.stop()
    elapsed_s = (result.finished_ns - result.started_ns) / 1e9
    return result.acked * EVENTS_PER_BATCH / elapsed_s


def _retarget(request: bytes, port: int) -> bytes:
    """The same request with the sink's port in its Host header (the length does not matter)."""
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [
        line if not line.startswith(b"host:") else f"host: {HOST}:{port}".encode()
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="Measure the load generator's own ceiling against a sink that answers 200 {} at once.",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to post (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument(
        "--customers", type=int, default=1000, help="customers the events name (default 1000)"
    )
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    with console.status("building 500 request bodies"):
        batches = throughput_batches(args.customers, 500 * EVENTS_PER_BATCH, random.Random(1))
        requests = [encode_request(0, "/v1/ingest", "token", b.body) for b in batches]
    with console.status(f"posting to a sink for {args.seconds:.0f}s over {args.connections} connections"):
        rate = ceiling(requests, connections=args.connections, seconds=args.seconds)
    console.print(f"generator ceiling: {rate:,.0f} events/s")
    print(round(rate))


if __name__ == "__main__":
    main()
