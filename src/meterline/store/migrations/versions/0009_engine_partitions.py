"""engine partitions: leases and per-partition log positions, customers' home partitions, sweeps per partition

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meterline.domain.partitions import PARTITION_COUNT, home_partition

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BACKFILL_CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "engine_partitions",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_us", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partition"),
    )
    op.create_table(
        "engine_members",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("alive_until_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    conn = op.get_bind()
    # Every partition starts where the single evaluator's cursor was: nothing is counted twice.
    position = conn.execute(sa.text("SELECT position FROM evaluator_cursors WHERE name = 'usage'")).scalar()
    op.bulk_insert(
        sa.table(
            "engine_partitions",
            sa.column("partition", sa.Integer()),
            sa.column("owner", sa.String()),
            sa.column("lease_until_us", sa.BigInteger()),
            sa.column("position", sa.BigInteger()),
        ),
        [
            {"partition": p, "owner": None, "lease_until_us": 0, "position": int(position or 0)}
            for p in range(PARTITION_COUNT)
        ],
    )
    conn.execute(sa.text("DELETE FROM evaluator_cursors WHERE name = 'usage'"))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partition", sa.Integer(), nullable=True))
    _add_customer_partitions(conn)
    _sweeps_per_partition(conn)


def _add_customer_partitions(conn: sa.Connection) -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partition", sa.Integer(), nullable=True))
    customers = sa.table("customers", sa.column("id", sa.String()), sa.column("partition", sa.Integer()))
    ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM customers ORDER BY id"))]
    first_alias: dict[str, str] = dict(
        conn.execute(
            sa.text("SELECT customer_id, min(alias) FROM customer_aliases GROUP BY customer_id")
        ).all()
    )
    update = (
        sa.update(customers)
        .where(customers.c.id == sa.bindparam("customer_id"))
        .values(partition=sa.bindparam("home"))
    )
    for start in range(0, len(ids), BACKFILL_CHUNK):
        rows = [
            {
                "customer_id": cid,
                "home": home_partition(cid, [first_alias[cid]] if cid in first_alias else []),
            }
            for cid in ids[start : start + BACKFILL_CHUNK]
        ]
        conn.execute(update, rows)
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.alter_column("partition", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index("ix_customers_partition_id", ["partition", "id"], unique=False)


def _sweeps_per_partition(conn: sa.Connection) -> None:
    pending = conn.execute(
        sa.text("SELECT alert_id, after_customer_id, triggered_by FROM alert_sweeps")
    ).all()
    op.drop_table("alert_sweeps")
    sweeps = op.create_table(
        "alert_sweeps",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("after_customer_id", sa.String(length=36), nullable=True),
        sa.Column("triggered_by", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "partition"),
    )
    # A sweep in progress went through customer ids in order: each partition resumes after the
    # same id, since every customer up to it, in any partition, was measured.
    op.bulk_insert(
        sweeps,
        [
            {"alert_id": a, "partition": p, "after_customer_id": after, "triggered_by": cause}
            for a, after, cause in pending
            for p in range(PARTITION_COUNT)
        ],
    )


def downgrade() -> None:
    conn = op.get_bind()
    # The single cursor may resume only where every partition had got to.
    position = conn.execute(sa.text("SELECT min(position) FROM engine_partitions")).scalar()
    conn.execute(
        sa.text("INSERT INTO evaluator_cursors (name, position, updated_at_us) VALUES ('usage', :p, 0)"),
        {"p": int(position or 0)},
    )
    pending = conn.execute(
        sa.text(
            "SELECT alert_id, min(after_customer_id), min(triggered_by) FROM alert_sweeps GROUP BY alert_id"
        )
    ).all()
    op.drop_table("alert_sweeps")
    sweeps = op.create_table(
        "alert_sweeps",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("after_customer_id", sa.String(length=36), nullable=True),
        sa.Column("triggered_by", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.bulk_insert(
        sweeps, [{"alert_id": a, "after_customer_id": after, "triggered_by": c} for a, after, c in pending]
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_partition_id")
        batch_op.drop_column("partition")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("partition")
    op.drop_table("engine_members")
    op.drop_table("engine_partitions")
