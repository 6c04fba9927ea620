"""Where an access check's CPU goes on its whole way through the app (`python bench/access.py
--profile`): the server's ASGI application, built as `meterline serve` builds it (its middleware,
routing, body parsing, the handler, the answer), on the bench's database, driven in this process
with the scope and messages uvicorn gives it, checks of 100 customers one at a time.

What it leaves out is uvicorn's own work on the socket (reading, httptools parsing, writing):
the bench's server-side CPU per check (from /proc) has it.

Two passes over the same requests: one plain, timing the process's CPU per check (every thread:
a route that hops to a worker thread pays for the hop there), and one under cProfile on each
thread's CPU clock (every thread that runs Python meanwhile gets a profiler of its own, merged at
the end), whose cumulative times split it into parts. The profiler inflates Python calls, so the
parts are shares of the profiled pass, then those shares of the plain pass's CPU.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import pstats
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from bench.check_profile import cumulative_seconds, top_functions
from meterline.settings import Settings

# (label, module file ending, function): each a function every check passes through.
PARTS = (
    ("edge guard (GuardMiddleware), the route inside it included", "api/middleware.py", "__call__"),
    ("  of which the token and URL rules", "api/middleware.py", "_reject"),
    ("  of which reading the body", "api/middleware.py", "_read_body"),
    ("  of which the request counter", "api/middleware.py", "_count"),
    ("routing (Router.__call__), the route included", "starlette/routing.py", "__call__"),
    ("FastAPI's request handler (parsing, validation, dependencies)", "fastapi/routing.py", "app"),
    ("  of which the JSON's parsing", "starlette/requests.py", "json"),
    (
        "  of which the dependencies and the body's model",
        "fastapi/dependencies/utils.py",
        "solve_dependencies",
    ),
    ("the fast path (FastRoute.handle)", "api/fast_route.py", "handle"),
    ("the hop to a worker thread (anyio)", "anyio/to_thread.py", "run_sync"),
    ("on the worker thread: the handler", "api/routes/access.py", "check_access"),
    ("on the worker thread: the handler (fast path)", "api/routes/access.py", "_answer"),
    ("  of which the decisions (services)", "api/access_stream.py", "decide_now"),
    ("sending the answer (Response.__call__)", "starlette/responses.py", "__call__"),
)


def profile_http(
    database_url: str, token: str, refs: Sequence[str], checks: int, seed: int = 7
) -> dict[str, Any]:
    """The CPU of a check of 100 of `refs` through the whole app, and its parts' shares."""
    rng = random.Random(seed)
    bodies = [
        json.dumps({"customer_ids": [rng.choice(refs) for _ in range(100)]}).encode() for _ in range(64)
    ]
    os.environ.setdefault("METERLINE_LOG_LEVEL", "warning")
    settings = Settings(
        database_url=database_url, evaluator_enabled=False, webhooks_enabled=False, engine_process=False
    )
    from meterline.logging import configure_logging
    from meterline.runtime.gc_tuning import tune_for_long_running
    from meterline.runtime.server import create_app

    configure_logging(settings.log_level, settings.log_format)
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
    ]
    # Each pass on an event loop (and so worker threads) and an app of its own: the profiled
    # pass's threads are all born with their profiler.
    app = create_app(settings)
    tune_for_long_running()  # as `meterline serve` does once its app is built
    pauses = _GcPauses()
    with pauses:
        plain_ms = asyncio.run(_pass(app, headers, bodies, checks, None))
    profiled = _ThreadProfiles()
    with profiled:
        asyncio.run(_pass(create_app(settings), headers, bodies, checks, profiled))
    stats = profiled.stats()
    # Every thread's own time: a part on the worker thread is no part of the loop's cumulative.
    whole = sum(entry[2] for entry in stats.values()) or 1e-9
    parts = []
    for label, path, name in PARTS:
        share = cumulative_seconds(stats, path, name) / whole
        parts.append({"part": label, "share": round(share, 3), "cpu_ms": round(share * plain_ms, 3)})
    return {
        "checks": checks,
        "cpu_ms_per_check": round(plain_ms, 3),
        "gc_pauses": pauses.summary(),
        "parts": parts,
        "top": top_functions(stats, whole, 15),
    }


async def _pass(
    app: Any,
    headers: list[tuple[bytes, bytes]],
    bodies: list[bytes],
    checks: int,
    profiled: _ThreadProfiles | None,
) -> float:
    """CPU milliseconds a check, every thread of the process, after a warm-up."""
    lifespan = _Lifespan(app)
    await lifespan.start()
    try:
        for body in bodies:  # warm: statements prepared, caches filled, worker threads started
            await _one_request(app, headers, body)
        if profiled is not None:
            profiled.clear()
        started = time.process_time()
        for index in range(checks):
            await _one_request(app, headers, bodies[index % len(bodies)])
        return (time.process_time() - started) * 1000 / checks
    finally:
        await lifespan.stop()


async def _one_request(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """One POST /v1/access/check as uvicorn hands it to the app; the answer's status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "method": "POST",
        "path": "/v1/access/check",
        "raw_path": b"/v1/access/check",
        "query_string": b"",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "state": {},
    }
    given = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # as a connection that stays open
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"the check answered {status}")
    return status


class _Lifespan:
    """The app's lifespan (writers started, as in `meterline serve`), driven by hand."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        await self.outbox.get()

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        if self.task is not None:
            await self.task


class _GcPauses:
    """The cyclic collector's runs meanwhile (a pause of the thread that triggered it): how many
    of each generation, and the longest, in milliseconds."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.pauses: list[tuple[int, float]] = []

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        elif self.started is not None:
            self.pauses.append((info["generation"], (time.perf_counter() - self.started) * 1000))

    def __enter__(self) -> None:
        gc.callbacks.append(self._callback)

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        return {
            "collections_by_generation": [sum(1 for g, _ in self.pauses if g == gen) for gen in range(3)],
            "longest_ms": round(max((ms for _, ms in self.pauses), default=0.0), 3),
            "total_ms": round(sum(ms for _, ms in self.pauses), 3),
        }


class _ThreadProfiles:
    """A cProfile on this thread's CPU clock, and one on every other thread's as it next runs
    Python (worker threads): cProfile sees only the thread that enabled it."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.lock = threading.Lock()

    def _start_here(self, *_args: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        with self.lock:
            self.profiles.append(profile)
        profile.enable()  # replaces this hook on this thread

    def __enter__(self) -> None:
        threading.setprofile(self._start_here)  # threads started from now on
        self._start_here()

    def clear(self) -> None:
        """Forget the warm-up (every other thread is idle, waiting for work)."""
        with self.lock:
            for profile in self.profiles:
                profile.clear()

    def __exit__(self, *_exc: object) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        self.profiles[0].disable()  # this thread's; the others' threads have ended with their loop

    def stats(self) -> dict[Any, Any]:
        merged = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            try:
                merged.add(profile)
            except TypeError:  # a thread's profiler that never saw a call
                continue
        return merged.stats  # type: ignore[attr-defined,no-any-return]
