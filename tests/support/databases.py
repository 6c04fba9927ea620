"""Fresh databases for tests that must own their event log (no other server or evaluator on it), and
connections with temporary tables of their own, for tests of store helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, MetaData, create_engine, text
from sqlalchemy.engine import make_url

from meterline.store.db import Database, normalize_url


@contextmanager
def fresh_postgres_database(any_database_url: str) -> Iterator[str]:
    """A new, empty database on the same PostgreSQL server as `any_database_url`; dropped after."""
    name = f"meterline_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(any_database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(any_database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
