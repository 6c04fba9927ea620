"""Run Alembic migrations programmatically, on SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from meterline.store.db import Database
from meterline.store.sql import chunks, insert_ignoring_duplicates
from meterline.store.tables import event_dedup, events, metadata

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade_to_head(db: Database) -> None:
    config = alembic_config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    if db.separate_event_log:
        prepare_event_log(db)


def prepare_event_log(db: Database) -> None:
    """Create the SQLite event log file's tables, and move there any events that a version of
    meterline which kept the log in the main file accepted (a one-time move)."""
    metadata.create_all(db.log_engine, tables=[events, event_dedup])
    with db.engine.connect() as main:
        moved = main.execute(select(events.c.seq).limit(1)).first() is not None
    if not moved:
        return
    # The log commits before the main file forgets: a crash in between leaves copies that the
    # next start skips, never a lost event.
    with db.write() as conn, db.log_write() as log:
        for table in (events, event_dedup):
            rows = [dict(r) for r in conn.execute(select(table)).mappings()]
            for chunk in chunks(rows, 5000):
                insert_ignoring_duplicates(log, table, list(chunk))
            conn.execute(table.delete())


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_up_to_date(db: Database) -> bool:
    return current_revision(db) == head_revision(db)
