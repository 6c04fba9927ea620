"""usage_hourly keyed by hour first: (hour_us, customer_id, metric_id, group_values)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 21:00:00.000000

Keyed by customer first, a batch spread over many customers inserted each of its hour rows on a
leaf page of its own among all the table's pages (one per customer and hour stored: gigabytes at
a million customers), none of which the page cache could hold. Keyed by hour first, a batch's
rows go to the pages of the hours it holds, which stay in memory. Readers by customer name each
hour of their window (`store.usage.hourly_rows`). The rows are the same; only their order moves.
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

TABLE = "usage_hourly"
BY_CUSTOMER = "customer_id, metric_id, hour_us, group_values"
BY_HOUR = "hour_us, customer_id, metric_id, group_values"


def upgrade() -> None:
    _rekey(BY_CUSTOMER, BY_HOUR)


def downgrade() -> None:
    _rekey(BY_HOUR, BY_CUSTOMER)


def _rekey(old: str, new: str) -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        op.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {TABLE}_pkey, ADD PRIMARY KEY ({new})")
        return
    # SQLite cannot change a primary key: the table is copied into one declared the same way
    # (its own DDL, so every column keeps its declared type) but for the key, and put in its place.
    # It has no index beside its primary key, nor a trigger.
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).scalar_one()
    if f"PRIMARY KEY ({old})" not in ddl:
        raise RuntimeError(f"{TABLE} is not keyed ({old}) as this revision expects: {ddl}")
    copy = f"{TABLE}_rekeyed"
    body = ddl.replace(f"PRIMARY KEY ({old})", f"PRIMARY KEY ({new})", 1)
    body = body.replace(f'CREATE TABLE "{TABLE}"', f'CREATE TABLE "{copy}"', 1).replace(
        f"CREATE TABLE {TABLE}", f"CREATE TABLE {copy}", 1
    )
    op.execute(body)
    # In the new key's order: each page is filled once, in order.
    op.execute(f"INSERT INTO {copy} SELECT * FROM {TABLE} ORDER BY {new}")
    op.execute(f"DROP TABLE {TABLE}")
    op.execute(f"ALTER TABLE {copy} RENAME TO {TABLE}")
