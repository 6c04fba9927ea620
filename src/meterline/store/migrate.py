"""Run Alembic migrations programmatically, on SQLite or PostgreSQL.

Alembic is imported only when a migration runs or its history is read: a server starting on a
database already at the head (every start but the first) checks the version table with one query
and never imports it (with Mako and Pygments, about a third of a CPU-second a start).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from meterline.store.db import Database, normalize_url
from meterline.store.sql import chunks, insert_ignoring_duplicates
from meterline.store.tables import event_dedup, events, metadata

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default name, which env.py keeps
# Each revision's file is named by its id, four digits, and revises the one numbered before it
# (tests/integration/test_migrations_head.py checks this against Alembic's own history).
REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade_to_head(db: Database, on_revision: Callable[[str], None] | None = None) -> None:
    """Apply every pending revision, in one transaction; `on_revision` hears of each one applied."""
    if not is_at_newest_revision(db):
        _upgrade(db, on_revision)
    if db.separate_event_log:
        prepare_event_log(db)


def _upgrade(db: Database, on_revision: Callable[[str], None] | None) -> None:
    from alembic import command

    config = alembic_config(db)
    if on_revision is not None:
        config.attributes["on_version_apply"] = lambda **step: on_revision(_applied(step))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@cache
def newest_revision() -> str:
    """The head revision, read from the migration files' names (no Alembic import)."""
    found = (REVISION_FILE.match(path.name) for path in (MIGRATIONS_DIR / "versions").iterdir())
    return max(match.group(1) for match in found if match)


def is_at_newest_revision(db: Database) -> bool:
    """True when the database's version table holds the head revision, and only it."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        stored = [row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    return stored == [newest_revision()]


def prepare_event_log(db: Database) -> None:
    """Create the SQLite event log file's tables, and move there any events that a version of
    meterline which kept the log in the main file accepted (a one-time move)."""
    metadata.create_all(db.log_engine, tables=[events, event_dedup])
    with db.log_write() as log:
        columns = {row[1] for row in log.exec_driver_sql("PRAGMA table_info(events)")}
        if "partition" not in columns:  # a log file from before partitions
            log.exec_driver_sql("ALTER TABLE events ADD COLUMN partition INTEGER")
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


def _applied(step: dict[str, Any]) -> str:
    return str(step["step"].up_revision_id)


def pending_revisions(db: Database) -> int:
    """How many revisions `upgrade_to_head` would apply."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(db))
    return sum(1 for _ in script.iterate_revisions("heads", current_revision(db) or "base"))


def create_postgres_database_if_missing(url: str) -> bool:
    """Create the database a PostgreSQL URL names, when it is missing and the user may create it
    (through the server's `postgres` database); True if it was created. Anything else is left for
    the connection to the database itself to report."""
    parsed = make_url(normalize_url(url))
    name = parsed.database
    if parsed.get_backend_name() != "postgresql" or not name or name == "postgres":
        return False
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
            if exists.first() is not None:
                return False
            conn.execute(text(f"CREATE DATABASE {admin.dialect.identifier_preparer.quote(name)}"))
            return True
    except DBAPIError:
        return False  # no server, or no right to create: connecting to the database says why
    finally:
        admin.dispose()


def head_revision(db: Database) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_up_to_date(db: Database) -> bool:
    return is_at_newest_revision(db)
