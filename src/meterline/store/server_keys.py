"""Keys the server generates for itself, stored so that every process on the database shares them."""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, select

from meterline.store.sql import insert_ignoring_duplicates
from meterline.store.tables import server_keys

KEY_BYTES = 32


def server_key(conn: Connection, name: str) -> bytes:
    """The key called `name`, created at random on first use; whoever inserts it first wins a race."""
    insert_ignoring_duplicates(conn, server_keys, [{"name": name, "key": secrets.token_bytes(KEY_BYTES)}])
    return bytes(conn.execute(select(server_keys.c.key).where(server_keys.c.name == name)).scalar_one())
