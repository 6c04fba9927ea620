"""The catalog's version: a number that moves with every change to credit types, metrics,
products, rate cards and rates (database triggers move it: migration 0014), read by the engine
once per batch to know whether what it derived from the catalog still holds."""

from __future__ import annotations

from sqlalchemy import Connection, select

from meterline.store.tables import catalog_version


def current(conn: Connection) -> int:
    return int(conn.execute(select(catalog_version.c.version)).scalar_one())
