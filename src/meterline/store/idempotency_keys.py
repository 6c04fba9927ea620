"""Idempotency keys: each keyed request's answer, kept until the key expires.

The caller's transaction is the one that applies the request: `claim` inserts the key's row
first, `record` completes it with the answer, and both commit with the request's own writes or
roll back with them. So a committed key always holds the answer of a request that was applied,
and a request that failed leaves no trace of its key.

Two requests with the same key serialize on the key's row: the second one's insert waits until
the first transaction ends (PostgreSQL's unique index; on SQLite, the write lock both take
first), then finds the answer committed, or the key free again if the first one rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from meterline.store.tables import idempotency_keys

# Expired keys purged by each claim: enough to keep up with the rate keys are made, bounded so a
# request never pays for a long backlog at once.
PURGE_PER_CLAIM = 100
# A key freed between our insert and our read (it expired and was purged) is claimed again.
_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class KeyedAnswer:
    """What a key holds: the request that first used it, and the answer it got."""

    request_sha256: str
    request_line: str
    status_code: int
    response_body: bytes


def claim(
    conn: Connection,
    *,
    client: str,
    key: str,
    request_sha256: str,
    request_line: str,
    now_us: int,
    expires_at_us: int,
) -> KeyedAnswer | None:
    """Take `key` for this request, in the caller's transaction: None when taken (apply the
    request, then `record` its answer), else the answer the key already holds."""
    purge_expired(conn, now_us)
    table = idempotency_keys
    for _attempt in range(_CLAIM_ATTEMPTS):
        conn.execute(
            delete(table).where(table.c.client == client, table.c.key == key, table.c.expires_at_us <= now_us)
        )
        insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
        inserted = conn.execute(
            insert.values(
                client=client,
                key=key,
                request_sha256=request_sha256,
                request_line=request_line,
                created_at_us=now_us,
                expires_at_us=expires_at_us,
            )
            .on_conflict_do_nothing()
            .returning(table.c.id)
        ).first()
        if inserted is not None:
            return None
        held = conn.execute(
            select(
                table.c.request_sha256, table.c.request_line, table.c.status_code, table.c.response_body
            ).where(table.c.client == client, table.c.key == key)
        ).first()
        if held is not None and held.status_code is not None:
            return KeyedAnswer(
                held.request_sha256, held.request_line, held.status_code, bytes(held.response_body)
            )
    raise RuntimeError(f"idempotency key {key!r} could be neither claimed nor read")


def record(conn: Connection, *, client: str, key: str, status_code: int, response_body: bytes) -> None:
    """Complete a claimed key with the answer its request got."""
    table = idempotency_keys
    conn.execute(
        update(table)
        .where(table.c.client == client, table.c.key == key)
        .values(status_code=status_code, response_body=response_body)
    )


def purge_expired(conn: Connection, now_us: int, limit: int = PURGE_PER_CLAIM) -> int:
    """Delete up to `limit` expired keys (skipping rows another transaction has locked)."""
    table = idempotency_keys
    expired = (
        select(table.c.id)
        .where(table.c.expires_at_us <= now_us)
        .order_by(table.c.expires_at_us)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return conn.execute(delete(table).where(table.c.id.in_(expired))).rowcount
