"""A count of the write transactions that may have changed customer state, on SQLite.

The engine keeps its customers' snapshots from one batch to the next for as long as nobody else
changed what they hold (`engine/snapshots.py`). Every write transaction on a SQLite state database
moves this count as it begins, unless its writer declared that it writes no customer state
(`Database.write(customer_state=False)`: webhook delivery's records, the engine's leases). So a
new writer moves it by default and can never be forgotten; only the ones that say so, and whose
tables no snapshot reads, leave the snapshots alone. Webhook delivery commits up to four times a
second while webhooks flow: counted as any writer (SQLite's `PRAGMA data_version` tells only that
some other connection committed), its commits dropped every snapshot about every batch, and each
customer a batch measured was read again.

The count is the database header's `user_version` (meterline uses it for nothing else): written
in the transaction, so a rolled-back one leaves it, and read in a transaction's own snapshot. It
wraps at 2**31. Writes made outside meterline's transactions (a migration's, a `sqlite3` shell's)
are not counted: an engine running meanwhile keeps the snapshots it had until it restarts.
PostgreSQL keeps no count: its snapshots live for one batch.
"""

from __future__ import annotations

from sqlalchemy import Connection

WRAP = 2**31


def count(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())


def move(conn: Connection) -> None:
    """Count this write transaction (SQLite, at its BEGIN)."""
    conn.exec_driver_sql(f"PRAGMA user_version = {(count(conn) + 1) % WRAP}")


def only_one_since(earlier: int, now: int) -> bool:
    """Whether exactly one write transaction was counted between the two counts (a caller's own)."""
    return now == (earlier + 1) % WRAP
