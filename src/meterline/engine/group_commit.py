"""Group commit: concurrent ingest requests share one durable transaction.

Each request hands its validated batch to the writer thread and waits. The writer takes every
batch waiting, appends them all in one transaction, commits once, then answers every waiter. An
ack therefore always means "committed", and throughput is not capped by commits per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy.exc import DataError, IntegrityError

from meterline.domain.errors import InvalidInput, Unavailable
from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.logging import get_logger
from meterline.store import event_log
from meterline.store.db import Database
from meterline.store.write_batches import BatchingWriter, Pending

log = get_logger("meterline.ingest")


class GroupCommitWriter(BatchingWriter[Sequence[UsageEvent], int]):
    def __init__(self, db: Database, *, max_events: int, on_commit: Callable[[], None] = lambda: None):
        super().__init__("meterline-group-commit", max_events, weight=len)
        self.db = db
        self.max_events = max_events
        self.on_commit = on_commit
        # When the last commit failed, None once one succeeds after it (the /health database check).
        self.last_failure_monotonic: float | None = None

    async def append(self, events: Sequence[UsageEvent]) -> int:
        """Wait until the events are durable; returns how many were new (not duplicates)."""
        return await self._submit(events, "ingest is shutting down; retry the request")

    def _commit(self, group: list[Pending[Sequence[UsageEvent], int]]) -> None:
        try:
            received = now_us()
            with self.db.log_write() as conn:
                counts = event_log.append_batches(conn, [pending.item for pending in group], received)
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
