"""The spend reservations are decided on (`services.reservations`), as the engine last measured it.

The engine writes a customer's current period spend, in the credit type of its hard spend limit,
whenever it measures the customer in full; nothing is written when its usage is absorbed
(`engine.headroom`). So a row holds only while what it was derived from holds, checked in the
same statement that reads it: no usage folded for the customer since (every period usage row's
and open hour row's `folded_seq` at most the row's `as_of_seq`, and none in the usage journal past it), the catalog's version unchanged, no recompute asked
for (a contract or commit change), and the clock before the row's `valid_until_us` (a period's
end, a contract's start or end). Otherwise the caller derives the spend itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, exists, or_, select

from meterline.store import usage_journal
from meterline.store.sql import IN_CHUNK, among_bound, bound_list, chunks, upsert
from meterline.store.tables import billing_requests, catalog_version, customer_spend
from meterline.store.usage_position import last_folded_of

SpendRow = tuple[str, str, Decimal, int | None]  # customer, credit type, spend, valid until
HARD = "hard"  # the spend limit whose credit type is kept (`alerts.spend_limit`)


def save(conn: Connection, rows: Iterable[SpendRow], as_of_seq: int, version: int) -> None:
    """Store these spends, measured with every event up to `as_of_seq` under catalog `version`."""
    found = [
        {
            "customer_id": customer_id,
            "credit_type_id": credit_type_id,
            "spend": spend,
            "as_of_seq": as_of_seq,
            "catalog_version": version,
            "valid_until_us": valid_until_us,
        }
        for customer_id, credit_type_id, spend, valid_until_us in sorted(rows, key=lambda r: r[:2])
    ]
    upsert(conn, customer_spend, found, ["customer_id", "credit_type_id"])


def still_holding(
    conn: Connection, keys: Sequence[tuple[str, str]], now_us: int
) -> dict[tuple[str, str], Decimal]:
    """Each (customer, credit type)'s spend as the engine measured it, where that still holds
    (absent where it does not), in one statement per chunk of customers (built once: it runs in
    every reservation batch)."""
    return {key: spend for key, (spend, _until) in stored_holding(conn, keys, now_us).items()}


def stored_holding(
    conn: Connection, keys: Sequence[tuple[str, str]], now_us: int
) -> dict[tuple[str, str], tuple[Decimal, int | None]]:
    """`still_holding`, each spend with the instant it stops holding whatever else happens (its
    `valid_until_us`, None: never), so that a caller that knows nothing was written since may
    keep it until then."""
    wanted = set(keys)
    found: dict[tuple[str, str], tuple[Decimal, int | None]] = {}
    as_of: dict[str, int] = {}
    query = _holding_of(conn.dialect.name)
    for chunk in chunks(sorted({customer_id for customer_id, _credit_type in wanted}), IN_CHUNK):
        rows = conn.execute(query, {"ids": bound_list(conn, chunk), "now_us": now_us})
        for row in rows:
            if (row[0], row[1]) in wanted:
                found[row[0], row[1]] = (row[2], row[4])
                as_of[row[0]] = min(row[3], as_of.get(row[0], row[3]))
    if found:
        # Usage journaled but not yet merged (`store.usage_journal`) moved the spend too.
        pending = usage_journal.folded_through(conn, sorted(as_of))
        moved = {c for c, seq in pending.items() if seq > as_of[c]}
        found = {key: held for key, held in found.items() if key[0] not in moved}
    return found


@lru_cache(maxsize=2)
def _holding_of(dialect: str) -> Select[Any]:
    return _holding_spend().where(
        among_bound(dialect, customer_spend.c.customer_id, "ids"),
        or_(customer_spend.c.valid_until_us.is_(None), customer_spend.c.valid_until_us > bindparam("now_us")),
    )


def _holding_spend() -> Select[Any]:
    table = customer_spend
    folded = last_folded_of(table.c.customer_id)
    return select(
        table.c.customer_id, table.c.credit_type_id, table.c.spend, table.c.as_of_seq, table.c.valid_until_us
    ).where(
        table.c.catalog_version == select(catalog_version.c.version).scalar_subquery(),
        folded <= table.c.as_of_seq,
        ~exists().where(and_(billing_requests.c.customer_id == table.c.customer_id)),
    )
