"""Checkpoints of SQLite's write-ahead log, off the writers' path.

By default the connection whose commit takes the log past 1,000 pages copies the whole log into
the database file, and waits for the disk, before its commit returns. For the engine, whose batch
over customers spread across a large database dirties thousands of pages, that was nine tenths of
the commit (`bench/evaluator_cost.py` over 1,000,000 customers: 0.09 of 0.1 s a batch); for ingest
it is a pause on some request's path. Here no writer checkpoints (`wal_autocheckpoint=0` on every
connection); a thread of the database's own does, PASSIVE (it neither waits for readers and
writers nor blocks them), a few times a second while there are commits, so a page dirtied again
before the next checkpoint is copied once.
"""

from __future__ import annotations

import sqlite3
import threading

from meterline.logging import get_logger

log = get_logger("meterline.store")

INTERVAL_S = 0.25
# A log this long (about 1 GB) is truncated, waiting up to a second for readers: PASSIVE
# checkpoints cannot restart a log that readers never leave.
TRUNCATE_PAGES = 250_000
TRUNCATE_WAIT_MS = 1_000


class WalCheckpointer:
    """Checkpoints one SQLite file's log from a thread started at the first commit seen."""

    def __init__(self, path: str, interval_s: float | None = None) -> None:
        self.path = path
        self.interval_s = INTERVAL_S if interval_s is None else interval_s
        self._committed = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def committed(self) -> None:
        """A transaction committed to the file: its pages are to be checkpointed."""
        self._committed.set()
        if self._thread is None:
            with self._starting:
                if self._thread is None and not self._stopped.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="meterline-wal-checkpoints", daemon=True
                    )
                    self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._committed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopped.is_set():
                self._committed.wait()
                self._committed.clear()
                if self._stopped.wait(self.interval_s):
                    break
                self._checkpoint(conn)
        finally:
            conn.close()  # the last connection to close checkpoints what is left

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _busy, log_pages, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if log_pages >= TRUNCATE_PAGES:
                conn.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error as error:  # the next commit's checkpoint tries again
            log.warning("wal_checkpoint_failed", path=self.path, error=str(error))
