"""Group commit for reservations: concurrent reserve and release requests share one durable
transaction.

Each request hands its ask to the writer thread and waits. The writer takes every ask waiting
(up to `max_batch`), decides them in the order they came in one write transaction
(`services.reservations.decide_all`), commits once, then answers every waiter. A grant is
therefore answered only once it is durable, as before, and the commit's disk flush, most of a
reservation's time when each was a transaction of its own, is paid once a batch.

With `durable=False` (`METERLINE_RESERVATION_DURABLE_COMMITS=false`) a batch's commit returns
once written to the operating system, not flushed to disk: an answered grant survives this
process being killed, not a power loss (`Database.write`). The disk's flush, whose tail is tens
of milliseconds on a busy disk, is then off every answer's path. A request with an
`Idempotency-Key` is decided in its request's own transaction, flushed either way.

On SQLite the writer decides on a connection of its own and keeps what its batches read and
decided (`services.reservations.Known`) for as long as that connection sees no other commit
(`store.db.KeptConnection`): a batch then reads only the reservation ids it is asked about and
the customers it has not seen, where it read five statements' worth every time. Reservations are
no customer state the engine's snapshots hold, so the batches leave those snapshots alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from meterline.domain.errors import MeterlineError, Unavailable
from meterline.domain.timeutil import now_us
from meterline.logging import get_logger
from meterline.metrics import RESERVATION_BATCH, RESERVATION_BATCH_PARTS
from meterline.services.reservations import Known, Outcome, Request, decide_all
from meterline.store.db import Database
from meterline.store.write_batches import BatchingWriter, Pending

log = get_logger("meterline.reservations")
MAX_BATCH = 256
# Customers whose reservations are kept between batches; past this many, forgotten at once.
MAX_KNOWN = 100_000


class ReservationWriter(BatchingWriter[Request, Outcome]):
    def __init__(
        self, db: Database, open_horizon_us: int, *, max_batch: int = MAX_BATCH, durable: bool = True
    ) -> None:
        super().__init__("meterline-reservations", max_batch)
        self.db = db
        self.durable = durable
        self.open_horizon_us = open_horizon_us
        self.received = 0
        self._kept = db.kept_connection()
        self.known = Known()
        self.batches_read_known = 0  # batches that found the database as the last one left it

    def stop(self) -> None:
        super().stop()
        if self._kept is not None:
            self._kept.close()

    async def submit(self, request: Request) -> Outcome:
        """The request's outcome, once what it changed is committed (a refusal is an outcome too)."""
        self.received += 1
        return await self._submit(request, "reservations are shutting down; retry the request")

    def decide_alone(self, request: Request) -> Outcome:
        """Decide one request in the caller's transaction (a request with an `Idempotency-Key`,
        whose answer commits with what it changed), on the caller's thread."""
        with self.db.write() as conn:
            [outcome] = decide_all(conn, [request], now_us(), self.open_horizon_us)
            if isinstance(outcome, MeterlineError):
                raise outcome  # roll back what deciding it closed, as any refused request does
        return outcome

    def _commit(self, group: list[Pending[Request, Outcome]]) -> None:
        started = time.perf_counter()
        for pending in group:
            RESERVATION_BATCH_PARTS.labels("queued").observe(started - pending.queued_at)
        try:
            with self._write() as (conn, unchanged):
                begun = time.perf_counter()
                if unchanged and len(self.known.customers) < MAX_KNOWN:
                    self.batches_read_known += 1
                else:
                    self.known.clear()
                outcomes = decide_all(
                    conn, [p.item for p in group], now_us(), self.open_horizon_us, self.known
                )
                decided = time.perf_counter()
        except Exception as error:
            self.known.clear()  # what the batch changed in it was rolled back
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
        # Where a batch's time goes, so that a reservation's tail can be told apart: waiting for
        # the write lock, the batch's own work, or the disk.
        for part, seconds in (("begin", begun - started), ("decide", decided - begun)):
            RESERVATION_BATCH_PARTS.labels(part).observe(seconds)
        RESERVATION_BATCH_PARTS.labels("commit").observe(time.perf_counter() - decided)
        for pending, outcome in zip(group, outcomes, strict=True):
            pending.done.set_result(outcome)

    @contextmanager
    def _write(self) -> Iterator[tuple[Connection, bool]]:
        """The batch's transaction, and whether the database is as the last batch left it."""
        if self._kept is not None:
            with self._kept.write(customer_state=False, durable=self.durable) as found:
                yield found
            return
        with self.db.write(customer_state=False, durable=self.durable) as conn:
            yield conn, False
