"""Group commit for reservations: concurrent reserve and release requests share one durable
transaction.

Each request hands its ask to the writer thread and waits. The writer takes every ask waiting
(up to `max_batch`), decides them in the order they came in one write transaction
(`services.reservations.decide_all`), commits once, then answers every waiter. A grant is
therefore answered only once it is durable, as before, and the commit's disk flush, most of a
reservation's time when each was a transaction of its own, is paid once a batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from meterline.domain.errors import MeterlineError, Unavailable
from meterline.domain.timeutil import now_us
from meterline.logging import get_logger
from meterline.metrics import RESERVATION_BATCH
from meterline.services.reservations import Outcome, Request, decide_all
from meterline.store.db import Database

log = get_logger("meterline.reservations")
MAX_BATCH = 256


@dataclass(slots=True)
class _Pending:
    request: Request
    done: Future[Outcome]


class ReservationWriter:
    def __init__(self, db: Database, open_horizon_us: int, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.open_horizon_us = open_horizon_us
        self.max_batch = max_batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="meterline-reservations", daemon=True)
        self._running = False
        # Observable effect of grouping: requests answered per durable commit.
        self.received = 0
        self.commits = 0
        self.requests_committed = 0

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._queue.put(None)
            self._thread.join(10)

    async def submit(self, request: Request) -> Outcome:
        """The request's outcome, once what it changed is committed (a refusal is an outcome too)."""
        if not self._running:
            raise Unavailable("reservations are shutting down; retry the request")
        pending = _Pending(request, Future())
        self.received += 1
        self._queue.put(pending)
        return await asyncio.wrap_future(pending.done)

    def decide_alone(self, request: Request) -> Outcome:
        """Decide one request in the caller's transaction (a request with an `Idempotency-Key`,
        whose answer commits with what it changed), on the caller's thread."""
        with self.db.write() as conn:
            [outcome] = decide_all(conn, [request], now_us(), self.open_horizon_us)
            if isinstance(outcome, MeterlineError):
                raise outcome  # roll back what deciding it closed, as any refused request does
        return outcome

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: Sequence[_Pending]) -> None:
        try:
            with self.db.write() as conn:
                outcomes = decide_all(conn, [p.request for p in group], now_us(), self.open_horizon_us)
        except Exception as error:
            if len(group) > 1:
                # Decide each alone, so that one request the database refuses cannot fail the
                # others it happened to be grouped with.
                log.warning("reservation_batch_failed_retrying_alone", requests=len(group), error=str(error))
                for pending in group:
                    self._commit([pending])
                return
            log.exception("reservation_commit_failed")
            group[0].done.set_exception(
                Unavailable(f"the reservation could not be stored: {type(error).__name__}")
            )
            return
        self.commits += 1
        self.requests_committed += len(group)
        RESERVATION_BATCH.observe(len(group))
        for pending, outcome in zip(group, outcomes, strict=True):
            pending.done.set_result(outcome)
