"""alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:24:37.664299
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meterline.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("triggered_by", sa.String(length=32), nullable=True),
        sa.Column("measure", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("period_start_us", sa.BigInteger(), nullable=True),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "customer_id", "scope"),
    )
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.create_index("ix_alert_states_customer", ["customer_id"], unique=False)

    op.create_table(
        "alert_sweeps",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("after_customer_id", sa.String(length=36), nullable=True),
        sa.Column("triggered_by", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alert_type", sa.String(length=80), nullable=False),
        sa.Column("threshold", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("credit_type_id", sa.String(length=36), nullable=True),
        sa.Column("customer_id", sa.String(length=36), nullable=True),
        sa.Column("billable_metric_id", sa.String(length=36), nullable=True),
        sa.Column("invoice_types_filter", sa.JSON(), nullable=True),
        sa.Column("group_values", sa.JSON(), nullable=True),
        sa.Column("custom_field_filters", sa.JSON(), nullable=True),
        sa.Column("credit_grant_type_filters", sa.JSON(), nullable=True),
        sa.Column("evaluate_on_create", sa.Boolean(), nullable=False),
        sa.Column("uniqueness_key", sa.String(length=128), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            "ux_alerts_uniqueness_key",
            ["uniqueness_key"],
            unique=True,
            sqlite_where=sa.text("uniqueness_key IS NOT NULL"),
            postgresql_where=sa.text("uniqueness_key IS NOT NULL"),
        )

    op.create_table(
        "notifications",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=True),
        sa.Column("customer_id", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_alerts_uniqueness_key",
            sqlite_where=sa.text("uniqueness_key IS NOT NULL"),
            postgresql_where=sa.text("uniqueness_key IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_alerts_customer_id"))

    op.drop_table("alerts")
    op.drop_table("alert_sweeps")
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_states_customer")

    op.drop_table("alert_states")
