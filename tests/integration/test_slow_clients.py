"""Clients that hold connections or send too much cannot exhaust the server: real sockets against a
real `meterline serve` on 127.0.0.1, with short timeouts set through the environment.

- thousands of stalled connections (no bytes, half-sent headers, idle keep-alives) are closed
  after the header or keep-alive timeout, and ordinary requests are served meanwhile, also when
  the stalled ones outnumber the connection cap;
- a body must arrive in time, and is bounded by the bytes actually read, chunked or not, on
  every route;
- a client that disconnects mid-upload is not an error, and a 500 keeps the connection open.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server

STALLED = 2000
HEADER_TIMEOUT_S = 1.5
MAX_CONNECTIONS = 500
MAX_BODY_BYTES = 1_048_576


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with short connection limits; the connections are under test, not the engine's
    processes, so the engine runs as threads."""
    workdir: Path = tmp_path_factory.mktemp("slow-clients")
    running = start_server(
        f"sqlite:///{workdir / 'meterline.db'}",
        workdir,
        **ENGINE_IN_THREADS,
        METERLINE_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        METERLINE_KEEPALIVE_TIMEOUT_S="1",
        METERLINE_BODY_TIMEOUT_S="1.5",
        METERLINE_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        METERLINE_LOG_LEVEL="info",
    )
    try:
        yield running
    finally:
        running.stop()


def _port(server: RunningServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@contextlib.contextmanager
def stalled_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections on loopback: a third send nothing, a third half a request line and
    headers, a third a complete request and then sit idle on the kept-alive connection."""
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 3 == 1:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            elif i % 3 == 2:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Whether the server ends the connection (EOF or reset) within the time, answers read past."""
    sock.settimeout(within_s)
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def test_stalled_connections_are_closed_and_ordinary_requests_are_served(guarded: RunningServer) -> None:
    # A connection per request: a kept-alive one idle past the 1 s keep-alive timeout (a busy
    # machine) may be closed by the server just as the next request goes out on it.
    fresh_connections = httpx.Limits(max_keepalive_connections=0)
    with (
        stalled_sockets(_port(guarded), STALLED) as socks,
        httpx.Client(timeout=10, limits=fresh_connections) as client,
    ):
        # Served while more stalled connections are open than the cap allows.
        for _ in range(20):
            assert client.get(f"{guarded.base_url}/health").status_code == 200
            assert (
                client.get(f"{guarded.base_url}/v1/customers", headers=guarded.headers()).status_code == 200
            )
        deadline_s = HEADER_TIMEOUT_S + 5
        still_open = [sock for sock in socks if not _closed_by_server(sock, deadline_s)]
        assert still_open == []


def test_a_body_that_trickles_is_refused_with_408(guarded: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", _port(guarded)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + guarded.token.encode()
            + b"\r\nContent-Length: 100\r\n\r\n{"
        )
        answer = b""
        while chunk := sock.recv(65536):  # headers and body may come in separate segments
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"must arrive within" in answer  # the server closed the connection after it


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/alerts/create", "/v1/ingest", "/v1/usage"])
def test_chunked_bodies_over_the_limit_are_refused_on_every_route(guarded: RunningServer, path: str) -> None:
    sent = {"bytes": 0}

    def chunks() -> Iterator[bytes]:
        # Up to 64 MiB, stopped early if the server answers and closes (as it should at 1 MiB).
        for _ in range(1024):
            sent["bytes"] += 65536
            yield b" " * 65536

    with httpx.Client(timeout=30, headers=guarded.headers()) as client:
        try:
            response = client.post(f"{guarded.base_url}{path}", content=chunks())
        except httpx.TransportError:
            # The server answered 413 and closed while the client was still sending; read it raw.
            response = None
    if response is not None:
        assert response.status_code == 413, response.text
        assert response.json() == {"message": f"body: must be at most {MAX_BODY_BYTES} bytes"}
    assert sent["bytes"] < 64 * MAX_BODY_BYTES


def test_a_client_leaving_mid_upload_is_not_an_error(guarded: RunningServer) -> None:
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", _port(guarded)), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + guarded.token.encode()
                + b'\r\nContent-Length: 1000\r\n\r\n{"name": '
            )
            time.sleep(0.05)
    time.sleep(0.5)
    log = guarded.log_path.read_text()
    assert "unhandled_error" not in log and "Traceback" not in log
    assert '"status": 499' in log
