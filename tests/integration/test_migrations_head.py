"""A server starting on a database at the head checks one row and applies nothing; the head it
compares with, read from the migration files' names, is Alembic's own."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from meterline.store.db import Database
from meterline.store.migrate import (
    VERSION_TABLE,
    alembic_config,
    head_revision,
    is_at_newest_revision,
    newest_revision,
    upgrade_to_head,
)


def test_the_newest_file_is_alembics_single_head_and_each_revision_follows_the_one_before(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path}/empty.db")
    try:
        script = ScriptDirectory.from_config(alembic_config(db))
        assert script.get_heads() == [newest_revision()] == [head_revision(db)]
        for revision in script.walk_revisions():
            number = int(revision.revision)
            assert revision.down_revision == (f"{number - 1:04d}" if number > 1 else None)
    finally:
        db.dispose()


def test_only_a_database_at_the_head_is_taken_as_current(own_database_url: str, tmp_path: Path) -> None:
    """A fresh database is at the head; one a revision behind, or with no schema at all, is not,
    and `upgrade_to_head` migrates an empty one."""
    db = Database(own_database_url)
    try:
        assert is_at_newest_revision(db)
        previous = f"{int(newest_revision()) - 1:04d}"
        with db.engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = :previous"), {"previous": previous})
        assert not is_at_newest_revision(db)
    finally:
        db.dispose()
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert not is_at_newest_revision(empty)
        upgrade_to_head(empty)
        assert is_at_newest_revision(empty)
    finally:
        empty.dispose()
