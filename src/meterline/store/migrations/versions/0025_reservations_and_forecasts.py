"""reservations against hard spend limits, their settlements by usage, and the spend they are
decided on; the pace window of spend_forecast_reached alerts (meterline's extensions)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meterline.store.types

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_OPEN = "closed_at_us IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("forecast_window_hours", sa.Integer(), nullable=True))
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("credit_type_id", sa.String(length=36), nullable=False),
        sa.Column("amount", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_us", sa.BigInteger(), nullable=False),
        sa.Column("closed_as", sa.String(length=16), nullable=True),
        sa.Column("closed_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_reservations_open",
        "reservations",
        ["customer_id", "credit_type_id"],
        unique=False,
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_table(
        "reservation_settlements",
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("settled_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id"),
    )
    op.create_table(
        "customer_spend",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("credit_type_id", sa.String(length=36), nullable=False),
        sa.Column("spend", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("as_of_seq", sa.BigInteger(), nullable=False),
        sa.Column("catalog_version", sa.BigInteger(), nullable=False),
        sa.Column("valid_until_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "credit_type_id"),
    )


def downgrade() -> None:
    op.drop_table("customer_spend")
    op.drop_table("reservation_settlements")
    op.drop_index("ix_reservations_open", table_name="reservations")
    op.drop_table("reservations")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("forecast_window_hours")
