"""SQLite's write-ahead log is copied into the database file by a thread of the database's own,
never by a writer's commit (`store.wal_checkpoints`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from meterline.store.db import Database
from tests.support.waiting import wait_for


def _log_state(path: Path) -> tuple[int, int]:
    """(pages in the log, pages of it already copied into the file), as SQLite reports them."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_autocheckpoint=0")  # this probe copies nothing itself
        _busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()
    return pages, copied


def test_a_commit_leaves_the_log_to_the_checkpointing_thread_which_copies_it_soon(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
        with db.write() as conn:
            # About 2,500 pages: past the 1,000 at which a committing writer would checkpoint.
            for k in range(2_500):
                conn.execute(text("INSERT INTO t VALUES (:k, :v)"), {"k": k, "v": "x" * 3_000})
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        pages, _copied = _log_state(path)
        assert pages >= 2_500
        wait_for(lambda: _log_state(path), lambda state: state[1] == state[0])
    finally:
        db.dispose()
