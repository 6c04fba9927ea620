"""On SQLite the event log lives in a file of its own beside the database, so ingest and the
evaluator each hold their own write lock; a database from the single-file layout moves there."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.store import event_log
from meterline.store.db import Database, event_log_url
from meterline.store.migrate import upgrade_to_head
from meterline.store.tables import event_dedup, events


def usage_event(n: int) -> UsageEvent:
    return UsageEvent(f"tx-{n}", "customer-a", "api_call", now_us() - 60_000_000, {"n": n})


def count(conn: object, table: object) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar())  # type: ignore[attr-defined]


def test_the_event_log_file_sits_beside_the_database(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/billing.db")
    upgrade_to_head(db)
    with db.log_write() as log:
        assert event_log.append(log, [usage_event(1), usage_event(2)], now_us()) == 2
    db.dispose()
    assert (tmp_path / "billing.events.db").exists()
    assert event_log_url(f"sqlite:///{tmp_path}/billing.db") == f"sqlite:///{tmp_path}/billing.events.db"
    assert event_log_url("postgresql+psycopg://postgres@127.0.0.1/x") is None
    assert event_log_url("sqlite://") is None


def test_events_of_the_single_file_layout_move_to_the_log_file_once(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/billing.db")
    upgrade_to_head(db)
    # As an earlier version left them: appended to the main file.
    with db.engine.begin() as main:
        event_log.append(main, [usage_event(n) for n in range(3)], now_us())
    db.dispose()
    for leftover in tmp_path.glob("billing.events.db*"):
        leftover.unlink()

    db = Database(f"sqlite:///{tmp_path}/billing.db")
    upgrade_to_head(db)
    upgrade_to_head(db)  # a second start moves nothing twice
    with db.read() as main:
        assert (count(main, events), count(main, event_dedup)) == (0, 0)
    with db.log_write() as log:
        assert [e.transaction_id for e in event_log.read_after(log, 0, 10)] == ["tx-0", "tx-1", "tx-2"]
        # Still deduplicated after the move, and numbered after them.
        assert event_log.append(log, [usage_event(1), usage_event(7)], now_us()) == 1
        assert event_log.last_seq(log) == 4
    db.dispose()
