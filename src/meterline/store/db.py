"""Engines for SQLite (embedded default) and PostgreSQL, and the transactions callers own.

On SQLite every write transaction starts with BEGIN IMMEDIATE: it takes the write lock up front,
so two writers queue instead of failing when a read lock cannot be upgraded. They queue on a file
lock (flock) beside the database, not on SQLite's `busy_timeout`: SQLite's busy handler polls with
sleeps that grow to 100 ms, so a writer waiting in another process (webhook delivery) was starved
by one that commits and begins again at once (the evaluator under load), where the kernel wakes a
flock waiter the moment the lock is released.

A request can also hold one write transaction across its whole handling (`held_write`): opened
at the request's first `read()` or `write()` on the database inside `HeldWrite.joined()`, on the
thread that asks (which holds a request-handler thread while it waits for the write lock, as any
writer does), and joined by every later one (a write block as a savepoint, so a block that raises
still undoes only its own writes); what asks to run after the commit (`after_commit`) runs once it
has committed. Idempotent requests use it to store their answer in the transaction that applied
them.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from meterline.domain.aggregation import exact_sum
from meterline.store import state_writes
from meterline.store.wal_checkpoints import WalCheckpointer

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
    """The state database and the event log, with their writers' queue on SQLite.

    `durable_commits=False` (the engine's processes) returns from a commit once it is written to
    the operating system, without waiting for the disk: a process that dies, even by `kill -9`,
    loses nothing, and only a power loss or a kernel crash can lose the last commits. That is safe
    for what the engine writes, and only for it: every engine write is derived from the event log
    (whose appends, the acknowledgements, stay fully durable) and is written again by replay,
    and webhooks are delivered at least once anyway. It keeps a disk flush off every batch's path
    from usage to webhook (milliseconds each, more on a busy disk)."""

    def __init__(self, url: str, *, pool_size: int = 8, durable_commits: bool = True) -> None:
        self.url = normalize_url(url)
        self.durable_commits = durable_commits
        self.engine: Engine = _create(self.url, pool_size, durable_commits)
        self.dialect: str = self.engine.dialect.name
        log_url = event_log_url(self.url)
        self.log_url = log_url or self.url
        # The event log's engine: the same one unless the log lives in a file of its own.
        self.log_engine: Engine = _create(log_url, pool_size, durable_commits) if log_url else self.engine
        self._write_lock = _write_lock_path(self.url)
        self._log_write_lock = _write_lock_path(log_url) if log_url else self._write_lock
        engines = [self.engine] + ([self.log_engine] if log_url else [])
        self._checkpointers = [c for c in map(_checkpointed, engines) if c is not None]

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
        joined = self._joined()
        if joined is not None:
            return nullcontext(joined)
        return _transaction(self.engine, write=False)

    def write(
        self, *, customer_state: bool = True, durable: bool = True
    ) -> AbstractContextManager[Connection]:
        """A transaction that commits when the block ends and rolls back if it raises.

        `customer_state=False`: it writes none of what the engine keeps of its customers (their
        contracts, commits, invoices, alerts and alert states, and whatever else a snapshot
        reads), so the engine's snapshots stay (`store.state_writes`). Say it only when true.

        `durable=False`: this transaction's commit returns once written to the operating system,
        as every commit of a database made with `durable_commits=False` does (see the class): it
        survives the process being killed, not a power loss. Inside a held write, the held
        transaction's commit decides."""
        joined = self._joined()
        if joined is not None:
            return _savepoint(joined)
        return _transaction(
            self.engine,
            write=True,
            lock_path=self._write_lock,
            counted=customer_state,
            # A database made with `durable_commits=False` skips the flush on every commit already.
            skip_flush=not durable and self.durable_commits,
        )

    def kept_connection(self) -> KeptConnection | None:
        """A connection of its own for one thread's write transactions, which tells whether
        anything else wrote the database since its last one; None where that cannot be told
        (PostgreSQL, an in-memory database)."""
        if self._write_lock is None:
            return None
        return KeptConnection(self.engine, self._write_lock, self.durable_commits)

    def log_read(self) -> AbstractContextManager[Connection]:
        """A read transaction on the event log."""
        return _transaction(self.log_engine, write=False)

    def single_reads(self, *, log: bool = False) -> AbstractContextManager[Any]:
        """The driver's connection to the state database (or the event log), for reads of one
        statement each: no transaction opened around them, so each statement reads a snapshot of
        its own (one statement is one snapshot on SQLite and PostgreSQL). A tenth of `read()`'s
        cost, for the reads asked most often (access checks); a read that needs one snapshot
        across statements takes `read()`. Inside a held write, its connection."""
        engine = self.log_engine if log else self.engine
        joined = self._joined() if engine is self.engine else None
        if joined is not None:
            return nullcontext(joined.connection.driver_connection)
        return _driver_connection(engine)

    def log_write(self) -> AbstractContextManager[Connection]:
        """A write transaction on the event log (appends, purges): no customer state in it."""
        return _transaction(self.log_engine, write=True, lock_path=self._log_write_lock, counted=False)

    def dispose(self) -> None:
        for checkpointer in self._checkpointers:
            checkpointer.stop()
        self.engine.dispose()
        if self.separate_event_log:
            self.log_engine.dispose()

    def held_write(self, on_open: Callable[[Connection], None] | None = None) -> HeldWrite:
        """A write transaction opened at the first read or write inside its `joined()` block and
        ended by `commit()` or `rollback()`, possibly on other threads; `on_open` runs in it first."""
        return HeldWrite(self.engine, self._write_lock, on_open)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once what this context wrote is committed: now, unless a held
        transaction joined here has been opened, then after it commits (never if it rolls back)."""
        held = _joined_transaction.get()
        if held is not None and held.engine is self.engine and held.opened:
            held.after_commit.append(callback)
        else:
            callback()

    def in_held_write(self) -> bool:
        """Whether this context's reads and writes join a held transaction (`held_write`)."""
        held = _joined_transaction.get()
        return held is not None and held.engine is self.engine

    def _joined(self) -> Connection | None:
        held = _joined_transaction.get()
        return held.connection() if held is not None and held.engine is self.engine else None


@contextmanager
def _transaction(
    engine: Engine,
    *,
    write: bool,
    lock_path: str | None = None,
    counted: bool = True,
    skip_flush: bool = False,
    kept: Connection | None = None,
) -> Iterator[Connection]:
    """`skip_flush`: a write whose commit does not wait for the disk (`Database.write`).
    `kept`: on this connection, left open after (`KeptConnection`), not one from the pool."""
    # The connection is taken once the lock is held, never before: writers queued for the lock
    # must not hold the pool's connections, which the holder may need (a keyed request commits
    # on a thread of its own).
    with (
        _exclusive(lock_path) if lock_path else nullcontext(),
        engine.connect() if kept is None else nullcontext(kept) as conn,
    ):
        if write:
            conn = conn.execution_options(meterline_write=True, meterline_counted=counted)
        on_sqlite = engine.dialect.name == "sqlite"
        with _sqlite_commits_not_flushed(conn) if skip_flush and on_sqlite else nullcontext(), conn.begin():
            if skip_flush and not on_sqlite:
                # This transaction only: the session's other commits stay synchronous.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO off")
            yield conn


class KeptConnection:
    """One SQLite connection kept open for one thread's write transactions, and whether the
    database changed since the last of them committed.

    `PRAGMA data_version` on a connection moves whenever another connection, of this process or
    any other, has committed (a checkpoint of the log moves it too), and never for the
    connection's own commits. Read once the write lock is held, when nothing else can commit
    until this transaction ends, an unchanged value on the same driver connection means the
    database is exactly as this connection's last commit left it: a writer may then decide from
    what it read and wrote before instead of reading it again (`services.reservations.Known`)."""

    def __init__(self, engine: Engine, lock_path: str, durable_commits: bool) -> None:
        self._engine = engine
        self._lock_path = lock_path
        self._durable_commits = durable_commits
        self._conn: Connection | None = None
        # The driver connection and its data_version when its last transaction committed.
        self._committed: tuple[Any, int] | None = None

    @contextmanager
    def write(
        self, *, customer_state: bool = True, durable: bool = True
    ) -> Iterator[tuple[Connection, bool]]:
        """`Database.write` on this connection; with it, whether nothing else committed since
        this connection's last transaction did (False the first time, and after one that failed)."""
        if self._conn is None or self._conn.closed:
            self._conn = self._engine.connect()
        committed, self._committed = self._committed, None
        with _transaction(
            self._engine,
            write=True,
            lock_path=self._lock_path,
            counted=customer_state,
            skip_flush=not durable and self._durable_commits,
            kept=self._conn,
        ) as conn:
            # A connection invalidated by an error reconnects: another driver connection, whose
            # count is not comparable.
            driver: Any = conn.connection.driver_connection
            version = int(driver.execute("PRAGMA data_version").fetchone()[0])
            yield conn, committed is not None and committed[0] is driver and committed[1] == version
        self._committed = (driver, version)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._committed = None


@contextmanager
def _sqlite_commits_not_flushed(conn: Connection) -> Iterator[None]:
    """The connection's commits in WAL mode written to the log, not flushed (`synchronous=NORMAL`),
    for the block; then back to flushed. SQLite refuses the change inside a transaction, so it is
    made on the driver's connection around the transaction, and a connection that cannot be set
    back is never pooled again: it would make later commits quietly not durable."""
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        try:
            driver.execute("PRAGMA synchronous=FULL")
        except Exception:
            conn.invalidate()
            raise


@contextmanager
def _driver_connection(engine: Engine) -> Iterator[Any]:
    pooled = engine.raw_connection()
    driver: Any = pooled.driver_connection
    try:
        if engine.dialect.name != "postgresql":
            yield driver  # SQLite's connections begin no transaction unless told (`_sqlite_on_begin`)
            return
        # Each statement a transaction of its own: no BEGIN, no COMMIT, no ROLLBACK (which would
        # also make psycopg forget the statements it prepared, planned again on every read).
        driver.autocommit = True
        try:
            yield driver
        finally:
            try:
                driver.autocommit = False
            except Exception:
                pooled.invalidate()  # never back to the pool in autocommit
                raise
    finally:
        pooled.close()


@contextmanager
def _savepoint(conn: Connection) -> Iterator[Connection]:
    with conn.begin_nested():
        yield conn


# The held transaction that reads and writes in this context join (contexts are copied into the
# worker threads that run request handlers, so a handler sees its request's).
_joined_transaction: ContextVar[HeldWrite | None] = ContextVar("meterline_joined_transaction", default=None)


class HeldWrite:
    """One write transaction kept open across calls: opened on one thread, used on others, ended
    on another still. One call at a time uses it (a request's handler runs one thread at a time)."""

    def __init__(
        self, engine: Engine, lock_path: str | None, on_open: Callable[[Connection], None] | None
    ) -> None:
        self.engine = engine
        self._lock_path = lock_path
        self._on_open = on_open
        self._stack = ExitStack()
        self._conn: Connection | None = None
        self._transaction: Any = None
        self._ended = False
        self.after_commit: list[Callable[[], None]] = []

    @property
    def opened(self) -> bool:
        return self._conn is not None and not self._ended

    def connection(self) -> Connection:
        """The transaction's connection, opening it (and running `on_open`) on first use."""
        if self._ended:
            raise RuntimeError("the held transaction has ended")
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    @contextmanager
    def joined(self) -> Iterator[None]:
        """Inside the block, this context's reads and writes on the database join this transaction."""
        token = _joined_transaction.set(self)
        try:
            yield
        finally:
            _joined_transaction.reset(token)

    def commit(self) -> None:
        """Commit, release the connection and lock, then run what waited for the commit."""
        if self._ended:
            raise RuntimeError("the held transaction has ended")
        self._ended = True
        if self._conn is None:
            return
        try:
            self._transaction.commit()
        finally:
            self._stack.close()
        for callback in self.after_commit:
            callback()

    def rollback(self) -> None:
        """Roll back and release the connection and lock; nothing if never opened or already ended."""
        if self._ended:
            return
        self._ended = True
        if self._conn is None:
            return
        try:
            self._transaction.rollback()
        finally:
            self._stack.close()

    def _open(self) -> None:
        try:
            if self._lock_path is not None:
                # Not `_exclusive`: that guard is per thread, and this transaction outlives the
                # thread that opened it (which may well open another while this one is held).
                self._stack.enter_context(_flock(self._lock_path))
            conn = self._stack.enter_context(self.engine.connect()).execution_options(meterline_write=True)
            self._transaction = conn.begin()
            if self._on_open is not None:
                self._on_open(conn)
        except BaseException:
            self._ended = True
            self._stack.close()
            raise
        self._conn = conn


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
    with _flock(path):
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)


@contextmanager
def _flock(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _create(url: str, pool_size: int, durable_commits: bool = True) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            json_deserializer=_decode_json,
        )
        if not durable_commits:
            event.listen(engine, "connect", _postgres_commits_not_awaited)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        poolclass=NullPool if parsed.database in (None, "", ":memory:") else None,
        json_deserializer=_decode_json,
    )
    event.listen(engine, "connect", _sqlite_on_connect if durable_commits else _sqlite_on_connect_relaxed)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


# JSON columns are read on the evaluator's hot path (contracts, commits, alerts of every customer
# of a batch): msgspec decodes the same JSON to the same values several times faster.
_decode_json = msgspec.json.Decoder().decode


def _sqlite_on_connect(dbapi_conn: Any, _record: Any, synchronous: str = "FULL") -> None:
    # Let SQLAlchemy's "begin" event decide how a transaction starts.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged commit survives power loss, not just a process crash. NORMAL (the
    # engine's, see `Database`): in WAL mode it survives a process crash; the next FULL commit of
    # any connection flushes it too, since the log is one file.
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()
    register_sqlite_functions(dbapi_conn)


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Exact decimal arithmetic for the usage aggregates' upserts (`store.usage`, and migrations
    that move usage rows): SQLite has no decimal type, and meterline stores decimals as text."""
    dbapi_conn.create_function("meterline_decimal_sum", 2, _decimal_sum, deterministic=True)
    dbapi_conn.create_function("meterline_decimal_max", 2, _decimal_max, deterministic=True)


def _checkpointed(engine: Engine) -> WalCheckpointer | None:
    """For a SQLite file: its log checkpointed by a thread of its own (`store.wal_checkpoints`),
    never by a committing writer."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or path in (None, "", ":memory:"):
        return None
    checkpointer = WalCheckpointer(str(Path(path).expanduser().resolve()))
    event.listen(engine, "connect", _no_checkpoint_on_commit)
    event.listen(engine, "commit", lambda _conn: checkpointer.committed())
    return checkpointer


def _no_checkpoint_on_commit(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


def _sqlite_on_connect_relaxed(dbapi_conn: Any, record: Any) -> None:
    _sqlite_on_connect(dbapi_conn, record, synchronous="NORMAL")


def _postgres_commits_not_awaited(dbapi_conn: Any, _record: Any) -> None:
    # Asynchronous commit: never inconsistent, and a server crash loses at most the last
    # moments of this session's commits (see `Database`); the next synchronous commit of any
    # session flushes them too.
    with dbapi_conn.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    dbapi_conn.commit()


# Called by SQLite for every usage row an upsert merges (two per customer a batch touches). Most
# stored values are whole numbers (counts, integer sums): those take a shortcut through int, whose
# result is the same text, digit for digit. Sums of fewer than 99 digits are exact either way.
_SHORT_DIGITS = 98


def _decimal_sum(a: str, b: str) -> str:
    if (
        a.isdigit()
        and b.isdigit()
        and a.isascii()
        and b.isascii()
        and len(a) <= _SHORT_DIGITS
        and len(b) <= _SHORT_DIGITS
    ):
        return str(int(a) + int(b))
    return format(exact_sum(Decimal(a), Decimal(b)), "f")


def _decimal_max(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return b if a is None else a
    if a == b:
        return a
    return b if Decimal(b) > Decimal(a) else a


def _sqlite_on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if not options.get("meterline_write"):
        conn.exec_driver_sql("BEGIN DEFERRED")
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    if options.get("meterline_counted", True):
        state_writes.move(conn)
