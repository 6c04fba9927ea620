"""The floor: the same JSON bodies parsed and appended durably to the same kind of database, with
the same dedup index, and nothing else (no HTTP, no evaluator), in this process.

Bodies are grouped per transaction as the server's group commit groups concurrent requests: as
many per commit as the load generator keeps in flight.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from meterline.api.ingest_parsing import parse_batch
from meterline.domain.events import IngestLimits
from meterline.domain.timeutil import now_us
from meterline.store import event_log
from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head


@dataclass(frozen=True)
class FloorResult:
    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def floor(database_url: str, bodies: Sequence[bytes], *, group: int, seconds: float) -> FloorResult:
    """Append the bodies to a fresh database `group` per commit, for at most `seconds`."""
    db = Database(database_url)
    try:
        upgrade_to_head(db)
        limits = IngestLimits()
        done = 0
        started = time.perf_counter()
        for start in range(0, len(bodies), group):
            received = now_us()
            with db.log_write() as conn:  # where and as the server's group commit appends
                batches = [parse_batch(body, received, limits) for body in bodies[start : start + group]]
                done += sum(event_log.append_batches(conn, batches, received))
            if time.perf_counter() - started > seconds:
                break
        return FloorResult(done, time.perf_counter() - started)
    finally:
        db.dispose()
