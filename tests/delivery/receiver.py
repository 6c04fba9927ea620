"""A real webhook receiver on 127.0.0.1 for tests: records every request, answers as scripted.

A threaded `http.server`, so a slow answer to one request never holds up another. `down()` closes
the listening socket (connections are refused, as with a crashed receiver); `up()` listens on
the same port again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.server import free_port
from tests.support.waiting import wait_for


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # lowercased names
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep this long before answering (a slow or hanging receiver)


Script = Callable[[Request, int], Reply]  # (request, how many came before it) -> reply


class Receiver:
    def __init__(self, script: Script | None = None) -> None:
        self.port = free_port()
        self.requests: list[Request] = []
        self.script: Script = script or (lambda _request, _index: Reply())
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._released = threading.Event()  # ends every pending delay (at shutdown)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                request = Request(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    time.monotonic(),
                )
                with receiver._lock:
                    index = len(receiver.requests)
                    receiver.requests.append(request)
                reply = receiver.script(request, index)
                if reply.delay_s:
                    receiver._released.wait(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the sender gave up (timed out) first

            def log_message(self, *_args: object) -> None:
                pass

        self._released.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="test-receiver", daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._released.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for_requests(self, count: int, timeout_s: float = 10.0) -> list[Request]:
        return wait_for(lambda: list(self.requests), lambda got: len(got) >= count, timeout_s)

    def ids(self) -> list[str]:
        return [r.webhook_id for r in list(self.requests)]
