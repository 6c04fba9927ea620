"""The engine process: the evaluator and the webhook dispatcher, beside the API server's process.

Python runs one thread at a time per process, so an evaluator thread inside the server would
share one core with parsing and acknowledging requests. The server therefore starts the engine
in a process of its own (both cores work) and wakes it through a pipe, right after each commit
that gives it work: one byte, `e` for the evaluator (events or billing requests landed), `d` for
the dispatcher (a request itself wrote notifications). The engine stops when the pipe closes,
which is also what happens if the server dies, so it never outlives the server; the server
restarts the engine if it dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from meterline.api.webhook_setup import dispatcher_from_settings, secret_box
from meterline.engine.evaluator import evaluator_from_settings
from meterline.logging import configure_logging, get_logger
from meterline.settings import Settings
from meterline.store.db import Database

WAKE_EVALUATOR = b"e"
WAKE_DISPATCHER = b"d"
RESTART_DELAY_S = 1.0
log = get_logger("meterline.worker")


class WakePipe:
    """The server's end of the pipe; safe from any thread, never blocks."""

    def __init__(self) -> None:
        self._fd = -1
        self._lock = threading.Lock()  # so no write reaches a closed (and perhaps reused) fd

    def attach(self, fd: int) -> None:
        os.set_blocking(fd, False)
        with self._lock:
            self._fd = fd

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = -1

    def send(self, signal_byte: bytes) -> None:
        with self._lock:
            if self._fd < 0:
                return  # the engine is restarting: it catches up on its own when it starts
            # Full pipe: a wake is already pending, which is all a wake needs to say.
            with contextlib.suppress(BlockingIOError):
                os.write(self._fd, signal_byte)


@dataclass(frozen=True, slots=True)
class Waker:
    """Wakes one part of the engine process."""

    pipe: WakePipe
    signal_byte: bytes

    def notify(self) -> None:
        self.pipe.send(self.signal_byte)


class EngineProcess:
    """Starts, supervises and stops the engine process for the server."""

    def __init__(self, settings: Settings, *, evaluator: bool, webhooks: bool):
        self.settings = settings
        self.run_evaluator = evaluator
        self.run_webhooks = webhooks
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._pipe = WakePipe()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.evaluator = Waker(self._pipe, WAKE_EVALUATOR)
        self.dispatcher = Waker(self._pipe, WAKE_DISPATCHER)

    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(
            target=self._supervise, name="meterline-engine-watch", daemon=True
        )
        self._supervisor.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping.set()
        self._pipe.close()  # the engine finishes its batch and exits
        if self._process is not None:
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)

    def _spawn(self) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=run_engine,
            args=(self.settings, reader, self.run_evaluator, self.run_webhooks),
            name="meterline-engine",
            daemon=True,
        )
        self._process.start()
        reader.close()
        self._pipe.attach(os.dup(writer.fileno()))
        writer.close()
        log.info("engine_started", pid=self._process.pid)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            assert self._process is not None
            self._process.join(0.5)
            if self._process.is_alive() or self._stopping.is_set():
                continue
            log.error("engine_died", exitcode=self._process.exitcode)
            self._pipe.close()
            time.sleep(RESTART_DELAY_S)
            if not self._stopping.is_set():
                self._spawn()


def run_engine(settings: Settings, wake: Connection, evaluator_on: bool, webhooks_on: bool) -> None:
    """The engine process's main: runs until the server closes the pipe."""
    # Ctrl-C in a terminal reaches the whole process group: let the server decide when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_format)
    db = Database(settings.database_url)
    box = secret_box(settings) if webhooks_on else None
    dispatcher = dispatcher_from_settings(db, settings, box) if box is not None else None
    evaluator = (
        evaluator_from_settings(db, settings, dispatcher.notify if dispatcher else None, dispatcher)
        if evaluator_on
        else None
    )
    for part in (evaluator, dispatcher):
        if part is not None:
            part.start()
    try:
        _follow_wakes(
            wake, evaluator.notify if evaluator else None, dispatcher.notify if dispatcher else None
        )
    finally:
        for part in (evaluator, dispatcher):
            if part is not None:
                part.stop()
        db.dispose()


def _follow_wakes(
    wake: Connection, evaluator: Callable[[], None] | None, dispatcher: Callable[[], None] | None
) -> None:
    fd = wake.fileno()
    while data := os.read(fd, 4096):
        if WAKE_EVALUATOR in data and evaluator is not None:
            evaluator()
        if WAKE_DISPATCHER in data and dispatcher is not None:
            dispatcher()
