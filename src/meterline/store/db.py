"""Engines for SQLite (embedded default) and PostgreSQL, and the transactions callers own.

On SQLite every write transaction starts with BEGIN IMMEDIATE: it takes the write lock up front,
so two writers queue instead of failing when a read lock cannot be upgraded. They queue on a file
lock (flock) beside the database, not on SQLite's `busy_timeout`: SQLite's busy handler polls with
sleeps that grow to 100 ms, so a writer waiting in another process (webhook delivery) was starved
by one that commits and begins again at once (the evaluator under load), where the kernel wakes a
flock waiter the moment the lock is released.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and route them to psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def event_log_url(url: str) -> str | None:
    """Where an SQLite database keeps its event log: a file of its own beside it (`x.db` ->
    `x.events.db`), so that ingest and the evaluator never wait on each other's write lock.
    None: the log shares the database (PostgreSQL, whose writers do not block each other; an
    in-memory SQLite database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return parsed.set(
        database=str(path.with_name(f"{path.stem}.events{path.suffix or '.db'}"))
    ).render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = normalize_url(url)
        self.engine: Engine = _create(self.url, pool_size)
        self.dialect: str = self.engine.dialect.name
        log_url = event_log_url(self.url)
        self.log_url = log_url or self.url
        # The event log's engine: the same one unless the log lives in a file of its own.
        self.log_engine: Engine = _create(log_url, pool_size) if log_url else self.engine
        self._write_lock = _write_lock_path(self.url)
        self._log_write_lock = _write_lock_path(log_url) if log_url else self._write_lock

    @property
    def write_lock_path(self) -> str | None:
        """The file SQLite writers queue on (None on PostgreSQL or an in-memory database)."""
        return self._write_lock

    @property
    def separate_event_log(self) -> bool:
        return self.log_engine is not self.engine

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def read(self) -> AbstractContextManager[Connection]:
        return _transaction(self.engine, write=False)

    def write(self) -> AbstractContextManager[Connection]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        return _transaction(self.engine, write=True, lock_path=self._write_lock)

    def log_read(self) -> AbstractContextManager[Connection]:
        """A read transaction on the event log."""
        return _transaction(self.log_engine, write=False)

    def log_write(self) -> AbstractContextManager[Connection]:
        """A write transaction on the event log (appends, purges)."""
        return _transaction(self.log_engine, write=True, lock_path=self._log_write_lock)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.separate_event_log:
            self.log_engine.dispose()


@contextmanager
def _transaction(engine: Engine, *, write: bool, lock_path: str | None = None) -> Iterator[Connection]:
    with _exclusive(lock_path) if lock_path else nullcontext(), engine.connect() as conn:
        if write:
            conn = conn.execution_options(meterline_write=True)
        with conn.begin():
            yield conn


def _write_lock_path(url: str) -> str | None:
    """The file SQLite writers queue on (`x.db` -> `x.db-writelock`); None: no file to lock."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return f"{Path(parsed.database).expanduser().resolve()}-writelock"


_held = threading.local()


@contextmanager
def _exclusive(path: str) -> Iterator[None]:
    """Held by one writer at a time, across threads and processes (each open is its own lock).

    A write transaction opened inside another on the same thread would wait for itself forever:
    that is a bug, and it fails at once instead."""
    held: set[str] = _held.__dict__.setdefault("paths", set())
    if path in held:
        raise RuntimeError(
            f"a write transaction on {path.removesuffix('-writelock')} is already open on this thread"
        )
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(path)
        yield
    finally:
        held.discard(path)
        os.close(fd)  # releases the lock


def _create(url: str, pool_size: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            json_deserializer=_decode_json,
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        poolclass=NullPool if parsed.database in (None, "", ":memory:") else None,
        json_deserializer=_decode_json,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


# JSON columns are read on the evaluator's hot path (contracts, commits, alerts of every customer
# of a batch): msgspec decodes the same JSON to the same values several times faster.
_decode_json = msgspec.json.Decoder().decode


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event decide how a transaction starts.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged commit survives power loss, not just a process crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("meterline_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")
