"""custom field keys (/v1/customFields), custom fields on alerts, and what integrations send that
changes no amount: a customer's billing_config, a contract's integration fields

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-20 01:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custom_field_keys",
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("enforce_uniqueness", sa.Boolean(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "key"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("custom_fields", sa.JSON(), nullable=True))
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_config", sa.JSON(), nullable=True))
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("integration_fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_column("integration_fields")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("billing_config")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("custom_fields")
    op.drop_table("custom_field_keys")
