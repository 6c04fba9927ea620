"""The databases tests run on: which PostgreSQL server to use, fresh databases on either backend, and
connections with temporary tables of their own, for tests of store helpers.

PostgreSQL: METERLINE_TEST_POSTGRES_URL names the server (any database on it; each test database is
created beside it and dropped after). Unset, a server answering on 127.0.0.1:5432 as `postgres`
is used; `off` runs without PostgreSQL. Every PostgreSQL test database is made by
`fresh_postgres_database`, with a random name, so parallel test processes never share one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, MetaData, create_engine, text
from sqlalchemy.engine import make_url

from meterline.store.db import Database, normalize_url
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
def fresh_postgres_database(server_url: str | None = None) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of `server_url` (default: the tests' server);
    dropped after, whoever is still connected."""
    server_url = server_url or postgres_server_url()
    assert server_url is not None, "PostgreSQL tests run only when a server is configured or found"
    name = f"meterline_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database on `backend` ("sqlite": a file in `directory`)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'meterline-{uuid.uuid4().hex[:8]}.db'}"
        return
    require_postgres()
    with fresh_postgres_database() as url:
        yield url


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
