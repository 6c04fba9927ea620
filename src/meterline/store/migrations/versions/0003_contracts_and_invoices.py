"""contracts and invoices

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 00:11:44.160482
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meterline.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_requests",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("requested_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "commit_deductions",
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("commit_id", sa.String(length=36), nullable=False),
        sa.Column("amount", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "segment_id"),
    )
    with op.batch_alter_table("commit_deductions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commit_deductions_commit_id"), ["commit_id"], unique=False)

    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("credit_type_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("subtotal", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("total", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("spend_by_credit_type", sa.Text(), nullable=False),
        sa.Column("line_items", sa.Text(), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.Column("finalized_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_customer_start", ["customer_id", "start_us"], unique=False)
        batch_op.create_index("ix_invoices_status_end", ["status", "end_us"], unique=False)

    op.create_table(
        "contracts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("rate_card_id", sa.String(length=36), nullable=False),
        sa.Column("starting_at_us", sa.BigInteger(), nullable=False),
        sa.Column("ending_before_us", sa.BigInteger(), nullable=True),
        sa.Column("schedule_frequency", sa.String(length=16), nullable=False),
        sa.Column("schedule_day", sa.String(length=16), nullable=False),
        sa.Column("billing_anchor_us", sa.BigInteger(), nullable=True),
        sa.Column("multiplier_override_prioritization", sa.String(length=24), nullable=False),
        sa.Column("overrides", sa.Text(), nullable=False),
        sa.Column("custom_fields", sa.JSON(), nullable=False),
        sa.Column("uniqueness_key", sa.String(length=128), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["rate_card_id"],
            ["rate_cards.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uniqueness_key"),
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "commits",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("rate_type", sa.String(length=16), nullable=False),
        sa.Column("applicable_product_ids", sa.JSON(), nullable=False),
        sa.Column("applicable_product_tags", sa.JSON(), nullable=False),
        sa.Column("specifiers", sa.JSON(), nullable=False),
        sa.Column("credit_type_id", sa.String(length=36), nullable=False),
        sa.Column("access_segments", sa.JSON(), nullable=False),
        sa.Column("invoice_schedule", sa.JSON(), nullable=True),
        sa.Column("custom_fields", sa.JSON(), nullable=False),
        sa.Column("uniqueness_key", sa.String(length=128), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_at_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["credit_type_id"],
            ["credit_types.id"],
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uniqueness_key"),
    )
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commits_customer_id"), ["customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commits_customer_id"))

    op.drop_table("commits")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_customer_id"))

    op.drop_table("contracts")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_status_end")
        batch_op.drop_index("ix_invoices_customer_start")

    op.drop_table("invoices")
    with op.batch_alter_table("commit_deductions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commit_deductions_commit_id"))

    op.drop_table("commit_deductions")
    op.drop_table("billing_requests")
