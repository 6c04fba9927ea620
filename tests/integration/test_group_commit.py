"""Concurrent ingest requests share durable commits, and each ack means the events are stored."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.engine.group_commit import GroupCommitWriter
from meterline.store import event_log
from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head


def _batch(request: int, size: int = 10) -> list[UsageEvent]:
    ts = now_us()
    return [UsageEvent(f"r{request}-e{i}", "customer", "call", ts, {"n": i}) for i in range(size)]


def test_concurrent_requests_share_commits_and_every_ack_is_stored(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gc.db'}")
    upgrade_to_head(db)
    writer = GroupCommitWriter(db, max_events=10_000)
    writer.start()
    # Another writer holds the database for a moment (as a slow disk would), so requests pile up.
    blocker = sqlite3.connect(tmp_path / "gc.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")

    async def run() -> list[int]:
        appends = [asyncio.ensure_future(writer.append(_batch(r))) for r in range(50)]
        await asyncio.sleep(0.3)
        blocker.execute("COMMIT")
        return await asyncio.gather(*appends)

    new_counts = asyncio.run(run())
    writer.stop()
    blocker.close()

    assert new_counts == [10] * 50
    assert writer.requests_committed == 50
    assert writer.commits <= 3, f"50 waiting requests took {writer.commits} commits"
    with db.log_read() as conn:
        assert event_log.last_seq(conn) == 500
    db.dispose()
