"""The databases tests run on: which PostgreSQL server to use, fresh databases on either backend, and
connections with temporary tables of their own, for tests of store helpers.

PostgreSQL: METERLINE_TEST_POSTGRES_URL names the server (any database on it; each test database is
created beside it and dropped after). Unset, a server answering on 127.0.0.1:5432 as `postgres`
is used; `off` runs without PostgreSQL. Every PostgreSQL test database is made by
`fresh_postgres_database`, with a random name, so parallel test processes never share one.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, MetaData
from sqlalchemy.engine import make_url

from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head

POSTGRES_ENV = "METERLINE_TEST_POSTGRES_URL"
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
OFF = "off"
BACKENDS = ("sqlite", "postgres")
PROBE_TIMEOUT_S = 2


@cache
def postgres_server_url() -> str | None:
    """The PostgreSQL server tests use, or None (then PostgreSQL variants are skipped)."""
    configured = os.environ.get(POSTGRES_ENV, "").strip()
    if configured.lower() == OFF:
        return None
    if configured:
        return configured
    return LOCAL_POSTGRES_URL if _answers(LOCAL_POSTGRES_URL) else None


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=PROBE_TIMEOUT_S):
            return True
    except psycopg.Error:
        return False


def postgres_skip_reason() -> str:
    configured = os.environ.get(POSTGRES_ENV, "").strip()
    if configured.lower() == OFF:
        return (
            f"turned off by {POSTGRES_ENV}={configured} (unset it, or set it to a server's URL, to run them)"
        )
    return (
        "no PostgreSQL answered on 127.0.0.1:5432 as user postgres; start one there, or set "
        f"{POSTGRES_ENV} to a server's URL (postgresql://user:password@host:5432/postgres), to run them"
    )


def require_postgres() -> None:
    """Skip the test when there is no PostgreSQL server (one place, so the skip is counted once)."""
    if postgres_server_url() is None:
        pytest.skip(postgres_skip_reason())


@contextmanager
def fresh_postgres_database(server_url: str | None = None, template: str | None = None) -> Iterator[str]:
    """A new database on the PostgreSQL server of `server_url` (default: the tests' server), empty
    or a copy of the database named `template`; dropped after, whoever is still connected, in the
    background (a drop waits for a checkpoint: about a second the test need not spend)."""
    server_url = server_url or postgres_server_url()
    assert server_url is not None, "PostgreSQL tests run only when a server is configured or found"
    name = f"meterline_test_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    _admin_execute(server_url, f'CREATE DATABASE "{name}"{copy_of}')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drops.submit(_admin_execute, server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_execute(server_url: str, statement: str) -> None:
    libpq_url = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute(statement.encode())


# One thread: drops queue behind one another rather than behind the tests; all done before exit.
_drops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-database")
atexit.register(_drops.shutdown, wait=True)


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new database on `backend` ("sqlite": a file in `directory`), with meterline's
    schema at its head: a copy of a template migrated once per test process, because running
    every migration again cost each test about a second on SQLite and several on PostgreSQL."""
    if backend == "sqlite":
        path = directory / f"meterline-{uuid.uuid4().hex[:8]}.db"
        with sqlite3.connect(_sqlite_template()) as source, sqlite3.connect(path) as target:
            source.backup(target)
        yield f"sqlite:///{path}"
        return
    require_postgres()
    with fresh_postgres_database(template=_postgres_template()) as url:
        yield url


@cache
def _sqlite_template() -> Path:
    directory = tempfile.TemporaryDirectory(prefix="meterline-template-")
    atexit.register(directory.cleanup)
    path = Path(directory.name) / "template.db"
    with migrated(f"sqlite:///{path}"):
        pass
    return path


@cache
def _postgres_template() -> str:
    """A database migrated to the head, copied by each test's (nobody may be connected to it)."""
    server_url = postgres_server_url()
    assert server_url is not None
    name = f"meterline_template_{uuid.uuid4().hex[:12]}"
    _admin_execute(server_url, f'CREATE DATABASE "{name}"')
    atexit.register(_admin_execute, server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with migrated(make_url(server_url).set(database=name).render_as_string(hide_password=False)):
        pass
    return name


@contextmanager
def migrated(url: str) -> Iterator[Database]:
    """A Database on `url` with meterline's schema, disposed after."""
    database = Database(url)
    try:
        upgrade_to_head(database)
        yield database
    finally:
        database.dispose()


@contextmanager
def connection_with_tables(database_url: str, metadata: MetaData) -> Iterator[Connection]:
    """A connection on which `metadata`'s (temporary) tables exist, in a transaction rolled back after."""
    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            metadata.create_all(connection)
            yield connection
            connection.rollback()
    finally:
        db.dispose()
