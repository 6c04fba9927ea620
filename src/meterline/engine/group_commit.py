"""Group commit: concurrent ingest requests share one durable transaction.

Each request hands its validated batch to the writer thread and waits. The writer takes every
batch waiting, appends them all in one transaction, commits once, then answers every waiter. An
ack therefore always means "committed", and throughput is not capped by commits per second.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.exc import DataError, IntegrityError

from meterline.domain.errors import InvalidInput, Unavailable
from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.logging import get_logger
from meterline.store import event_log
from meterline.store.db import Database

log = get_logger("meterline.ingest")


@dataclass(slots=True)
class _Pending:
    events: Sequence[UsageEvent]
    done: Future[int]


class GroupCommitWriter:
    def __init__(self, db: Database, *, max_events: int, on_commit: Callable[[], None] = lambda: None):
        self.db = db
        self.max_events = max_events
        self.on_commit = on_commit
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="meterline-group-commit", daemon=True)
        self._running = False
        # Observable effect of grouping: requests answered per durable commit.
        self.commits = 0
        self.requests_committed = 0
        # When the last commit failed, None once one succeeds after it (the /health database check).
        self.last_failure_monotonic: float | None = None

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._queue.put(None)
            self._thread.join(10)

    async def append(self, events: Sequence[UsageEvent]) -> int:
        """Wait until the events are durable; returns how many were new (not duplicates)."""
        if not self._running:
            raise Unavailable("ingest is shutting down; retry the request")
        pending = _Pending(events, Future())
        self._queue.put(pending)
        return await asyncio.wrap_future(pending.done)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            size = len(first.events)
            while size < self.max_events:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                group.append(item)
                size += len(item.events)
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        try:
            received = now_us()
            counts: list[int] = []
            with self.db.log_write() as conn:
                for pending in group:
                    counts.append(event_log.append(conn, pending.events, received))
        except (DataError, IntegrityError) as error:
            if len(group) > 1:
                # The database refused some request's events: commit each request alone, so one
                # bad request cannot fail the others it happened to be grouped with.
                log.warning("ingest_group_refused_retrying_alone", requests=len(group))
                for pending in group:
                    self._commit([pending])
                return
            log.warning("ingest_request_refused", error=str(error.orig))
            # Not retryable: the same events would be refused again.
            group[0].done.set_exception(InvalidInput(f"body: events could not be stored ({error.orig})"))
            return
        except Exception as error:
            log.exception("ingest_commit_failed", requests=len(group))
            self.last_failure_monotonic = time.monotonic()
            for pending in group:
                pending.done.set_exception(Unavailable(f"events could not be stored: {type(error).__name__}"))
            return
        self.commits += 1
        self.requests_committed += len(group)
        self.last_failure_monotonic = None
        for pending, count in zip(group, counts, strict=True):
            pending.done.set_result(count)
        self.on_commit()
