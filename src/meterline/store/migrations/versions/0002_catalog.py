"""catalog: products (with their version history), rate cards, conversions, aliases, rates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 23:50:54.478624
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meterline.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("custom_fields", sa.JSON(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "product_versions",
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("starting_at_us", sa.BigInteger(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.PrimaryKeyConstraint("product_id", "position"),
    )
    op.create_table(
        "rate_cards",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("fiat_credit_type_id", sa.String(length=36), nullable=False),
        sa.Column("custom_fields", sa.JSON(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fiat_credit_type_id"],
            ["credit_types.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rate_card_aliases",
        sa.Column("rate_card_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("starting_at_us", sa.BigInteger(), nullable=True),
        sa.Column("ending_before_us", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rate_card_id"],
            ["rate_cards.id"],
        ),
        sa.PrimaryKeyConstraint("rate_card_id", "position"),
    )
    with op.batch_alter_table("rate_card_aliases", schema=None) as batch_op:
        batch_op.create_index("ix_rate_card_aliases_name", ["name"], unique=False)

    op.create_table(
        "rate_card_conversions",
        sa.Column("rate_card_id", sa.String(length=36), nullable=False),
        sa.Column("custom_credit_type_id", sa.String(length=36), nullable=False),
        sa.Column("fiat_per_custom_credit", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["custom_credit_type_id"],
            ["credit_types.id"],
        ),
        sa.ForeignKeyConstraint(
            ["rate_card_id"],
            ["rate_cards.id"],
        ),
        sa.PrimaryKeyConstraint("rate_card_id", "custom_credit_type_id"),
    )
    op.create_table(
        "rates",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("rate_card_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("pricing_group_values", sa.String(length=1024), nullable=False),
        sa.Column("entitled", sa.Boolean(), nullable=False),
        sa.Column("rate_type", sa.String(length=16), nullable=False),
        sa.Column("credit_type_id", sa.String(length=36), nullable=False),
        sa.Column("price", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("tiers", sa.JSON(), nullable=True),
        sa.Column("starting_at_us", sa.BigInteger(), nullable=False),
        sa.Column("ending_before_us", sa.BigInteger(), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_type_id"],
            ["credit_types.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.ForeignKeyConstraint(
            ["rate_card_id"],
            ["rate_cards.id"],
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("rates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rates_card_product",
            ["rate_card_id", "product_id", "pricing_group_values", "starting_at_us"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("rates", schema=None) as batch_op:
        batch_op.drop_index("ix_rates_card_product")

    op.drop_table("rates")
    op.drop_table("rate_card_conversions")
    with op.batch_alter_table("rate_card_aliases", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_card_aliases_name")

    op.drop_table("rate_card_aliases")
    op.drop_table("rate_cards")
    op.drop_table("product_versions")
    op.drop_table("products")
