"""SQLite's write-ahead log is copied into the database file by a thread of the database's own,
never by a writer's commit (`store.wal_checkpoints`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from meterline.store import wal_checkpoints
from meterline.store.db import Database
from tests.support.waiting import wait_for

ROWS = 2_500  # about 2,500 pages: past the 1,000 at which a committing writer would checkpoint


def pages_in_the_file_itself(path: Path) -> int:
    """The database file's size in pages: what checkpoints have copied out of the log."""
    return path.stat().st_size // 4096


def test_a_commit_leaves_the_log_to_the_checkpointing_thread_which_copies_it_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal_checkpoints, "INTERVAL_S", 2.0)  # time to look before it runs
    path = tmp_path / "state.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
            for k in range(ROWS):
                conn.execute(text("INSERT INTO t VALUES (:k, :v)"), {"k": k, "v": "x" * 3_000})
        assert pages_in_the_file_itself(path) < 10  # the rows are all still in the log
        wait_for(lambda: pages_in_the_file_itself(path), lambda pages: pages >= ROWS)
    finally:
        db.dispose()
