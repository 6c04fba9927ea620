"""The engine's processes: the evaluator, and webhook delivery, each beside the API server's process.

Python runs one thread at a time per process. An evaluator thread inside the server would share
one core with parsing and acknowledging requests, and a dispatcher thread beside the evaluator
would get the interpreter only between the evaluator's time slices: a burst of threshold
crossings then waits seconds for its webhooks while the evaluator works (the delivery log of a
`make bench-quick` run showed about 500 webhooks/s sent from the evaluator's process under load). So the server
starts each part in a process of its own and wakes it through a pipe, one byte, right after each
commit that gives it work; the evaluator's process wakes the delivery process the same way after
a batch that wrote notifications.

Each part's pipe lives as long as the server: a part that dies is restarted on the same pipe, so
wakes sent meanwhile wait for it and every writer (the server, the evaluator's process) keeps a
working end. A part stops when every writer's end is closed, which is also what happens if the
server dies, so no part outlives it: the server closes its ends on stop, and the delivery process
sees the end once the evaluator's process, its other writer, has exited too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Protocol

from meterline.engine.log_listener import LogListener
from meterline.engine.membership import member_id_of
from meterline.liveness import RESTART_WINDOW_S, PartLiveness
from meterline.logging import configure_logging, get_logger
from meterline.runtime.evaluator import evaluator_from_settings
from meterline.runtime.fork_server import engine_context
from meterline.runtime.gc_tuning import tune_for_long_running
from meterline.runtime.webhooks import (
    dispatcher_from_settings,
    secret_box,
    serving_secret_box,
    webhook_delivery_on,
)
from meterline.settings import Settings
from meterline.store.db import Database

RESTART_DELAY_S = 1.0
log = get_logger("meterline.worker")


class Part(Enum):
    EVALUATOR = "evaluator"
    WEBHOOKS = "webhooks"


# What goes down a part's pipe: a wake (one byte), or a claim for the dispatcher to send (its id).
WAKE = b"w"
CLAIM = b"c"
CLAIM_END = b"\n"


class WakePipe:
    """A writer's end of a part's pipe; safe from any thread, never blocks."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._lock = threading.Lock()  # so no write reaches a closed (and perhaps reused) fd

    def notify(self) -> None:
        self._write(WAKE)

    def send_claim(self, claim_id: str) -> None:
        # One write of under PIPE_BUF bytes: atomic, never interleaved with another writer's.
        self._write(CLAIM + claim_id.encode() + CLAIM_END)

    def _write(self, message: bytes) -> None:
        with self._lock:
            if self._fd < 0:
                return
            # Full pipe: a wake is already pending, which is all a wake needs to say; a claim's
            # deliveries are sent when its lease expires.
            with contextlib.suppress(BlockingIOError):
                os.write(self._fd, message)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class PartPipe:
    """A part's pipe: the end its process reads, and a writer's end to hand to another process."""

    reader: Connection
    writer: Connection


class PartProcess:
    """Starts, supervises (restarts) and stops the process running one part of the engine."""

    def __init__(self, settings: Settings, part: Part, *, wakes: PartProcess | None = None):
        self.settings = settings
        self.part = part
        self._context = engine_context()
        reader, writer = self._context.Pipe(duplex=False)
        self._pipe = PartPipe(reader, writer)
        self._wake = WakePipe(os.dup(writer.fileno()))
        # The part this one wakes after its own commits (the evaluator wakes webhook delivery).
        self._wakes = wakes
        self._process: BaseProcess | None = None
        # The engine member a dead evaluator process was, for its successor to take over from.
        self._predecessor: str | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._deaths: deque[float] = deque(maxlen=100)  # when the part died (monotonic), for /health

    def notify(self) -> None:
        """Wake the part: there is work for it (from any thread of the server)."""
        self._wake.notify()

    def liveness(self) -> PartLiveness:
        alive = self._process is not None and self._process.is_alive()
        since = time.monotonic() - RESTART_WINDOW_S
        return PartLiveness(alive, sum(1 for died in self._deaths if died >= since))

    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"meterline-{self.part.value}-watch", daemon=True
        )
        self._supervisor.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Close the server's ends; the part finishes what it is doing and exits."""
        self._stopping.set()
        self._wake.close()
        self._pipe.writer.close()
        if self._process is not None:
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
        self._pipe.reader.close()

    def _spawn(self) -> None:
        waking = self._wakes._pipe.writer if self._wakes is not None else None
        self._process = self._context.Process(
            target=run_part,
            args=(self.settings, self.part, self._pipe.reader, waking, self._predecessor),
            name=f"meterline-{self.part.value}",
            daemon=True,
        )
        self._process.start()
        log.info("engine_part_started", part=self.part.value, pid=self._process.pid)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            assert self._process is not None
            self._process.join(0.5)
            if self._process.is_alive() or self._stopping.is_set():
                continue
            log.error("engine_part_died", part=self.part.value, exitcode=self._process.exitcode)
            # Reaped, so certainly gone: its successor need not wait for its leases to run out.
            self._predecessor = member_id_of(self._process.pid)
            self._deaths.append(time.monotonic())
            time.sleep(RESTART_DELAY_S)
            if not self._stopping.is_set():
                self._spawn()


def run_part(
    settings: Settings,
    part: Part,
    wake: Connection,
    waking: Connection | None,
    predecessor: str | None = None,
) -> None:
    """A part's process main: runs until every writer's end of its pipe is closed."""
    # Ctrl-C in a terminal reaches the whole process group: let the server decide when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_format)
    # The engine's writes are derived from the event log and replayed after a crash: its commits
    # need not wait for the disk (see `Database`).
    db = Database(settings.database_url, durable_commits=False)
    peer = WakePipe(os.dup(waking.fileno())) if waking is not None else None
    if waking is not None:
        waking.close()
    worker = _worker(db, settings, part, peer, predecessor)
    listener = LogListener(db, worker.notify) if part is Part.EVALUATOR else None
    tune_for_long_running()
    worker.start()
    if listener is not None:
        listener.start()
    try:
        from meterline.delivery.dispatcher import Dispatcher  # preloaded by the fork server

        adopt = worker.adopt if isinstance(worker, Dispatcher) else None
        _follow_pipe(wake, worker.notify, adopt)
    finally:
        if listener is not None:
            listener.stop()
        worker.stop()
        if peer is not None:
            peer.close()
        db.dispose()


class _Worker(Protocol):
    """What a part runs: the evaluator or the dispatcher, each a thread of its own."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def notify(self) -> None: ...


def _worker(
    db: Database, settings: Settings, part: Part, peer: WakePipe | None, predecessor: str | None
) -> _Worker:
    if part is Part.WEBHOOKS:
        box = secret_box(settings)
        assert box is not None  # the server starts this part only with a key
        return dispatcher_from_settings(db, settings, box)
    if peer is None:
        return evaluator_from_settings(db, settings, predecessor=predecessor)
    from meterline.delivery.handoff import RemoteOutbox  # the part's, preloaded by the fork server

    outbox = RemoteOutbox(peer, timeout_s=settings.webhook_timeout_s)
    return evaluator_from_settings(db, settings, peer.notify, outbox, predecessor=predecessor)


def run_engine(settings: Settings, stop: threading.Event) -> None:
    """`meterline engine`: the evaluator's and webhook delivery's processes without an API
    server, until `stop` is set. Any number of these may run, on any machines, beside API
    servers started with `serve --no-engine`: they share the partitions by lease, are woken by
    the log's commits (PostgreSQL's LISTEN/NOTIFY) and deliver webhooks by claim."""
    webhooks_on = webhook_delivery_on(settings, serving_secret_box(settings))  # no key: a clear exit
    delivery = PartProcess(settings, Part.WEBHOOKS) if webhooks_on else None
    evaluating = PartProcess(settings, Part.EVALUATOR, wakes=delivery)
    parts = [p for p in (evaluating, delivery) if p is not None]
    for part in parts:
        part.start()
    log.info("engine_started", webhooks=webhooks_on, parts=[p.part.value for p in parts])
    stop.wait()
    for part in parts:
        part.stop()
    log.info("engine_stopped")


def _follow_pipe(pipe: Connection, notify: Callable[[], None], adopt: Callable[[str], None] | None) -> None:
    """Act on each message until every writer's end is closed (a read returns b"")."""
    fd = pipe.fileno()
    pending = b""
    while data := os.read(fd, 65536):
        woken, claim_ids, pending = parse_messages(pending + data)
        if woken:
            notify()
        for claim_id in claim_ids:
            if adopt is not None:
                adopt(claim_id)


def parse_messages(data: bytes) -> tuple[bool, list[str], bytes]:
    """(any wake, the claim ids, an incomplete message left for the next read) of what was read."""
    woken, claim_ids, at = False, [], 0
    while at < len(data):
        kind = data[at : at + 1]
        if kind == CLAIM:
            end = data.find(CLAIM_END, at)
            if end < 0:
                break  # the rest of this claim comes with the next read
            claim_ids.append(data[at + 1 : end].decode())
            at = end + 1
        else:
            woken = woken or kind == WAKE
            at += 1
    return woken, claim_ids, data[at:]
