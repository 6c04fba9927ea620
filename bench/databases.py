"""Where each run's data lives: SQLite files in a work directory (the default; a database is its
file and the event log's file beside it), or databases created on a PostgreSQL server for this
bench and dropped after it.

A seeded database is copied for every run (a file copy; `CREATE DATABASE ... TEMPLATE` on
PostgreSQL), so each run starts from the same state without seeding again.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from meterline.store.db import event_log_url, normalize_url

SQLITE_SUFFIXES = ("", "-wal", "-shm", "-writelock")


class BenchDatabases:
    """Creates, copies and drops the bench's databases; `close()` drops whatever is left."""

    def __init__(self, workdir: Path, postgres_url: str | None = None):
        self.workdir = workdir
        self.postgres_url = postgres_url
        self.prefix = f"meterline_bench_{uuid.uuid4().hex[:8]}"
        self._created: list[str] = []
        self._admin: Engine | None = None
        # PostgreSQL has no key file: the server needs the key to create webhook endpoints.
        self.server_env = (
            {} if postgres_url is None else {"METERLINE_SECRET_KEY": Fernet.generate_key().decode()}
        )

    @property
    def kind(self) -> str:
        return "sqlite" if self.postgres_url is None else "postgresql"

    def new(self, name: str) -> str:
        """The URL of a new, empty database."""
        if self.postgres_url is None:
            url = f"sqlite:///{self.workdir / f'{name}.db'}"
            self._remove_files(url)
        else:
            url = self._postgres(f'CREATE DATABASE "{self.prefix}_{name}"', f"{self.prefix}_{name}")
        self._created.append(url)
        return url

    def copy(self, source_url: str, name: str) -> str:
        """A copy of a database no server is using."""
        if self.postgres_url is None:
            url = f"sqlite:///{self.workdir / f'{name}.db'}"
            self._remove_files(url)
            for source, copied in zip(_sqlite_files(source_url), _sqlite_files(url), strict=True):
                for suffix in SQLITE_SUFFIXES[:2]:
                    if Path(f"{source}{suffix}").exists():
                        shutil.copyfile(f"{source}{suffix}", f"{copied}{suffix}")
        else:
            source_name = make_url(source_url).database
            target = f"{self.prefix}_{name}"
            url = self._postgres(f'CREATE DATABASE "{target}" TEMPLATE "{source_name}"', target)
        self._created.append(url)
        return url

    def drop(self, url: str) -> None:
        if url in self._created:
            self._created.remove(url)
        if self.postgres_url is None:
            self._remove_files(url)
        else:
            self._execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def server_version(self) -> str | None:
        if self.postgres_url is None:
            return None
        with self._engine().connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())

    @property
    def created(self) -> list[str]:
        return list(self._created)

    def close(self, keep: Sequence[str] = ()) -> None:
        """Drop every database created and not dropped yet, except those in `keep`."""
        for url in self.created:
            if url not in keep:
                self.drop(url)
        if self._admin is not None:
            self._admin.dispose()

    def _postgres(self, statement: str, database: str) -> str:
        self._execute(statement)
        assert self.postgres_url is not None
        return make_url(self.postgres_url).set(database=database).render_as_string(hide_password=False)

    def _engine(self) -> Engine:
        if self._admin is None:
            assert self.postgres_url is not None
            self._admin = create_engine(normalize_url(self.postgres_url), isolation_level="AUTOCOMMIT")
        return self._admin

    def _execute(self, statement: str) -> None:
        with self._engine().connect() as conn:
            conn.execute(text(statement))

    @staticmethod
    def _remove_files(url: str) -> None:
        for path in _sqlite_files(url):
            for suffix in SQLITE_SUFFIXES:
                Path(f"{path}{suffix}").unlink(missing_ok=True)


def _sqlite_files(url: str) -> list[Path]:
    """The files of an SQLite database: the main one, and the event log's file beside it."""
    files = [Path(make_url(url).database or "")]
    log_url = event_log_url(url)
    if log_url is not None:
        files.append(Path(make_url(log_url).database or ""))
    return files
