"""SQLite writers queue on a file lock beside the database: one at a time across threads and
processes, a waiting writer goes once the holder commits, and a write transaction opened
inside another on the same thread fails at once instead of waiting for itself."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'meterline.db'}")
    upgrade_to_head(database)
    return database


def test_writers_take_turns(db: Database) -> None:
    order: list[str] = []
    holding = threading.Event()

    def hold() -> None:
        with db.write() as conn:
            conn.execute(text("SELECT 1"))
            holding.set()
            time.sleep(0.3)
            order.append("first committed")

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    with db.write():
        order.append("second began")
    holder.join()
    assert order == ["first committed", "second began"]
    assert (Path(str(db.engine.url.database)).parent / "meterline.db-writelock").exists()


def test_a_write_inside_a_write_on_the_same_thread_fails_at_once(db: Database) -> None:
    with db.write(), pytest.raises(RuntimeError, match="already open on this thread"), db.write():
        pass
    with db.write(), db.log_write():  # the event log is another file, with a lock of its own
        pass
