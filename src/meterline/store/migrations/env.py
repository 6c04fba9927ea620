"""Alembic environment: runs against the connection meterline hands it (see store/migrate.py)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, event

from meterline.store.db import normalize_url, register_sqlite_functions
from meterline.store.tables import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(normalize_url(config.get_main_option("sqlalchemy.url") or ""))
    if engine.dialect.name == "sqlite":
        # The functions meterline's own connections have, which migrations moving usage rows use.
        event.listen(engine, "connect", _with_functions)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


def _with_functions(dbapi_conn: Any, _record: Any) -> None:
    register_sqlite_functions(dbapi_conn)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        on_version_apply=config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("meterline migrations run online only: use `meterline migrate`")
run_migrations_online()
