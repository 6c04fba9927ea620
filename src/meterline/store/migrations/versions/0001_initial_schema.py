"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 23:39:46.179896
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meterline.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


USD_CENTS_ID = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "billable_metrics",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("aggregation_type", sa.String(length=16), nullable=False),
        sa.Column("aggregation_key", sa.String(length=256), nullable=True),
        sa.Column("event_type_filter", sa.JSON(), nullable=True),
        sa.Column("property_filters", sa.JSON(), nullable=False),
        sa.Column("group_keys", sa.JSON(), nullable=False),
        sa.Column("custom_fields", sa.JSON(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "credit_types",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_currency", sa.Boolean(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("custom_fields", sa.JSON(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "evaluator_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "event_dedup",
        sa.Column("transaction_digest", sa.LargeBinary(length=16), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("transaction_digest"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("event_dedup", schema=None) as batch_op:
        batch_op.create_index("ix_event_dedup_received_at_us", ["received_at_us"], unique=False)

    op.create_table(
        "events",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("transaction_id", sa.String(length=128), nullable=False),
        sa.Column("customer_ref", sa.String(length=256), nullable=False),
        sa.Column("event_type", sa.String(length=256), nullable=False),
        sa.Column("timestamp_us", sa.BigInteger(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("received_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "unmatched_events",
        sa.Column("event_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("event_seq"),
    )
    op.create_table(
        "usage_hourly",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("metric_id", sa.String(length=36), nullable=False),
        sa.Column("hour_us", sa.BigInteger(), nullable=False),
        sa.Column("group_values", sa.String(length=1024), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("total", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("maximum", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("latest", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("latest_ts_us", sa.BigInteger(), nullable=False),
        sa.Column("latest_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "metric_id", "hour_us", "group_values"),
    )
    op.create_table(
        "usage_period",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("metric_id", sa.String(length=36), nullable=False),
        sa.Column("period_start_us", sa.BigInteger(), nullable=False),
        sa.Column("group_values", sa.String(length=1024), nullable=False),
        sa.Column("period_end_us", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("total", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("maximum", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("latest", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("latest_ts_us", sa.BigInteger(), nullable=False),
        sa.Column("latest_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "metric_id", "period_start_us", "group_values"),
    )
    op.create_table(
        "usage_unique_values",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("metric_id", sa.String(length=36), nullable=False),
        sa.Column("hour_us", sa.BigInteger(), nullable=False),
        sa.Column("group_values", sa.String(length=1024), nullable=False),
        sa.Column("value", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "metric_id", "hour_us", "group_values", "value"),
    )
    op.create_table(
        "customer_aliases",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("alias", sa.String(length=256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id", "alias"),
    )
    with op.batch_alter_table("customer_aliases", schema=None) as batch_op:
        batch_op.create_index(
            "ux_customer_aliases_active_alias",
            ["alias"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )
    # Metronome's fiat pricing unit, present in every account under this fixed id.
    op.bulk_insert(
        sa.table(
            "credit_types",
            sa.column("id", sa.String),
            sa.column("name", sa.String),
            sa.column("is_currency", sa.Boolean),
            sa.column("created_at_us", sa.BigInteger),
            sa.column("archived_at_us", sa.BigInteger),
        ),
        [
            {
                "id": USD_CENTS_ID,
                "name": "USD (cents)",
                "is_currency": True,
                "created_at_us": 0,
                "archived_at_us": None,
            }
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("customer_aliases", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_customer_aliases_active_alias",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.drop_table("customer_aliases")
    op.drop_table("usage_unique_values")
    op.drop_table("usage_period")
    op.drop_table("usage_hourly")
    op.drop_table("unmatched_events")
    op.drop_table("events")
    with op.batch_alter_table("event_dedup", schema=None) as batch_op:
        batch_op.drop_index("ix_event_dedup_received_at_us")

    op.drop_table("event_dedup")
    op.drop_table("evaluator_cursors")
    op.drop_table("customers")
    op.drop_table("credit_types")
    op.drop_table("billable_metrics")
    op.drop_table("api_tokens")
