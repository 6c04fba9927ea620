"""A request whose events the database refuses fails alone: the requests group-committed with it
are stored and acknowledged, and it gets a 4xx (retrying would not help), not a 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from meterline.domain.errors import InvalidInput
from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.engine.group_commit import GroupCommitWriter
from meterline.store import event_log
from meterline.store.db import Database
from tests.support.databases import migrated

pytestmark = pytest.mark.postgres


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    with migrated(postgres_url) as database:
        yield database


def batch(request: int, customer: str = "customer") -> list[UsageEvent]:
    return [UsageEvent(f"r{request}-e{i}", customer, "call", now_us(), {"i": i}) for i in range(5)]


def test_a_refused_request_does_not_fail_the_requests_grouped_with_it(db: Database) -> None:
    writer = GroupCommitWriter(db, max_events=10_000)
    writer.start()
    # Hold the event log's append lock, so that every request below waits in one group.
    with db.engine.connect() as blocker:
        blocker.execute(text("SELECT pg_advisory_lock(:key)"), {"key": event_log.EVENT_LOG_LOCK_KEY})

        async def run() -> list[int | BaseException]:
            requests = [
                asyncio.ensure_future(writer.append(batch(r, "x" * 300 if r in (3, 7) else "customer")))
                for r in range(10)
            ]
            await asyncio.sleep(0.3)
            blocker.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": event_log.EVENT_LOG_LOCK_KEY})
            blocker.commit()
            return await asyncio.gather(*requests, return_exceptions=True)

        outcomes = asyncio.run(run())
    writer.stop()

    for r, outcome in enumerate(outcomes):
        if r in (3, 7):
            assert isinstance(outcome, InvalidInput), outcome
            assert outcome.status_code == 400
        else:
            assert outcome == 5, outcome
    with db.log_read() as conn:
        stored = event_log.find_by_transaction_ids(conn, [f"r{r}-e{i}" for r in range(10) for i in range(5)])
    assert sorted({e.transaction_id.split("-")[0] for e in stored}) == sorted(
        f"r{r}" for r in range(10) if r not in (3, 7)
    )
